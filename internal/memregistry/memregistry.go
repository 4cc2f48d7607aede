// Package memregistry is go-containerregistry's in-memory registry: the
// embedded default `ocisign demo` signs in, and the registry of unit tests
// (memtest) and of the bench's monolithic-upload measurements. It stores a
// monolithic `POST …/blobs/uploads/?digest=` at once, as zot and Google's
// registries do.
package memregistry

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	gcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// Handler is a new, empty in-memory registry that logs nothing.
func Handler() http.Handler {
	return gcrregistry.New(gcrregistry.Logger(log.New(io.Discard, "", 0)))
}

// Start serves a new registry on a free 127.0.0.1 port until stop.
func Start() (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("starting the in-memory registry: %w", err)
	}
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "in-memory registry: %v\n", err)
		}
	}()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}
