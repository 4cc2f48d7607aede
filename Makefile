# make demo   sign + verify on an embedded loopback registry (no setup, no network)
# make test   install what the tests need and run every test (what CI runs)
# make build  build bin/ocisign
# make bench  ocisign vs cosign on a local registry; writes docs/benchmarks.md
# make release  reproducible builds for every platform into dist/, SHA256SUMS and the plugin's checksum table
GO ?= go
# A fresh machine may have Go in /usr/local/go without it being on PATH.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all build test demo tools vet clean bench release
all: build

build:
	$(GO) build -o bin/ocisign ./cmd/ocisign

test:
	test/run-tests.sh

demo:
	$(GO) run ./cmd/ocisign demo

# Only the pinned cosign binaries (test/tools/build.sh), cached.
tools:
	test/tools/build.sh

vet:
	$(GO) vet ./...

clean:
	rm -rf bin dist

release:
	scripts/release.sh

# Not part of `make test`: timings need a quiet machine (test/bench). The
# transparency-log step runs when test/rekor/install.sh has cached Rekor.
bench: tools
	$(GO) run ./test/bench -out docs/benchmarks.md $(BENCH_FLAGS)
