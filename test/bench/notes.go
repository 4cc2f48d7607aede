package main

// notes is the fixed part of docs/benchmarks.md after the measurements.
const notes = `## Concurrent signers: design and what remains possible

A signature is appended by read-modify-write of one tag (` + "`sha256-<hex>.sig`" + `): read the manifest, add a
layer, push the manifest. Registries have no conditional PUT (no If-Match on manifests), so two writers that read
the same manifest both push "old layers + mine" and the later push drops the earlier layer. cosign does exactly
this and loses signatures under concurrency (table above).

ocisign (registry/sign.go, registry/taglock.go):

1. **One writer per tag on a host.** From the read (round 1) to the read-back, an append holds an exclusive
   flock on one of 256 lock files in ` + "`$TMPDIR/ocisign-locks-<uid>/`" + ` chosen by a hash of the tag. This serialises the
   port's own concurrent requests and parallel ` + "`ocisign sign`" + ` processes on one machine (parallel CI jobs on one
   runner, a build signing several images). A recursive sign takes its tags' locks in a fixed order.
2. **Read back and merge.** After the push, a HEAD of the tag must return our manifest's digest; otherwise the
   manifest is read and, if our layer is gone, the append is planned again on top of what is there now (their
   layers + ours) and retried with jittered exponential backoff, at most 5 times, then a retryable
   ` + "`registry_unavailable`" + ` error says so.

What remains possible: writers on *different hosts* (or different users, whose lock directories differ) can
still lose a layer when writer B reads the manifest before A's push and pushes after A's read-back — A has
already reported success. The window is one append (a few round trips). Without a compare-and-swap in the
registry API this cannot be closed by a client; cosign's OCI 1.1 referrers/bundle mode avoids it by writing one
manifest per signature, which the legacy ` + "`.sig`" + ` layout (what cosign verify reads by default here) cannot.
Re-running a sign is always safe: an identical signature is detected and not pushed twice (` + "`deduplicated`" + `).

`

// reproduce is the closing section; elapsed is how long this run took.
func reproduce(elapsed string) string {
	return "## How to reproduce\n\n```\n" +
		"make bench            # builds everything, writes docs/benchmarks.md (this run: " + elapsed + ")\n" +
		"make bench BENCH_FLAGS='-runs 20 -rekor=false'\n" +
		"go run ./test/bench -h\n```\n" +
		"Needs the pinned cosign builds (`make tools`) and Debian's docker-registry, like `make test`; the transparency-log\n" +
		"step also needs the local Rekor (`test/rekor/install.sh`) and is skipped, saying so, without it. Times on a shared\n" +
		"machine vary from run to run; request counts vary little, and round trips can differ by one between runs (connection\n" +
		"reuse inside a round), which is why targets are judged on medians of several runs.\n"
}
