// Command pushimage is test plumbing for test/erlang/run.sh: it pushes
// random images the way `rebar3 ocibuild --push` would, plays ocibuild's own
// signer (which overwrites the .sig tag) when asked, and reports what .sig
// manifests a registry holds.
//
//	pushimage push [-platforms N] [-bogus-sig] REF [EXTRA_TAG...]
//	    N >= 2 pushes an index of N platform images (ocibuild --platform);
//	    N = 1 a single image. Prints the pushed digest.
//	pushimage sigs REF
//	    For REF's digest and, for an index, every child: "<digest> <layers> <bogus>"
//	    where layers counts .sig layers (0 = no .sig tag) and bogus the
//	    layers pushimage -bogus-sig wrote.
//	pushimage wait HOST:PORT
//	    Waits (up to 20 s) until the registry answers GET /v2/.
//	pushimage exists REF
//	    Exit 0 if REF exists, 3 if the registry says it does not.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/ocisign/ocisign/internal/memregistry"
)

// bogusMarker marks the layer the fake ocibuild signer writes.
const bogusMarker = "org.ocisign.test/bogus"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "push":
		err = push(os.Args[2:])
	case "sigs":
		err = sigs(os.Args[2:])
	case "wait":
		err = waitRegistry(os.Args[2:])
	case "exists":
		err = exists(os.Args[2:])
	case "parse":
		err = parse(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushimage:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: pushimage push [-platforms N] [-bogus-sig] REF [EXTRA_TAG...] | sigs REF | wait HOST:PORT | exists REF | parse REF")
	os.Exit(2)
}

var arches = []string{"amd64", "arm64", "riscv64", "s390x", "ppc64le"}

func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	platforms := fs.Int("platforms", 2, "number of platform images (1 = single image)")
	bogus := fs.Bool("bogus-sig", false, "then overwrite the .sig tag like ocibuild's own signer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || *platforms < 1 || *platforms > len(arches) {
		return errors.New("need REF and 1 <= -platforms <= 5")
	}
	ref, err := name.NewTag(fs.Arg(0))
	if err != nil {
		return err
	}
	var pushed string
	if *platforms == 1 {
		pushed, err = memregistry.PushImage(ref.String())
	} else {
		var index []v1.Platform
		for _, arch := range arches[:*platforms] {
			index = append(index, v1.Platform{OS: "linux", Architecture: arch})
		}
		pushed, _, err = memregistry.PushIndex(ref.String(), index)
	}
	if err != nil {
		return err
	}
	digest, err := v1.NewHash(pushed)
	if err != nil {
		return err
	}
	// Extra tags point at the same manifest, as ocibuild's tag_from_digest does.
	desc, err := remote.Get(ref.Context().Digest(digest.String()))
	if err != nil {
		return err
	}
	for _, t := range fs.Args()[1:] {
		if err := remote.Tag(ref.Context().Tag(t), desc); err != nil {
			return err
		}
	}
	if *bogus {
		if err := writeBogusSig(ref.Context(), digest); err != nil {
			return err
		}
	}
	fmt.Println(digest.String())
	return nil
}

// writeBogusSig PUTs a fresh one-layer manifest at sha256-<hex>.sig, replacing
// whatever is there, like ocibuild 0.10's push_signature/8.
func writeBogusSig(repo name.Repository, digest v1.Hash) error {
	layer := static.NewLayer([]byte(`{"bogus":"not a simplesigning payload"}`), "application/vnd.dev.cosign.simplesigning.v1+json")
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		Annotations: map[string]string{
			"dev.cosignproject.cosign/signature": "Ym9ndXM=",
			bogusMarker:                          "written by the ocibuild stand-in's signer",
		},
	})
	if err != nil {
		return err
	}
	return remote.Write(sigTag(repo, digest), img)
}

func sigTag(repo name.Repository, digest v1.Hash) name.Tag {
	return repo.Tag(fmt.Sprintf("%s-%s.sig", digest.Algorithm, digest.Hex))
}

func sigs(args []string) error {
	if len(args) != 1 {
		usage()
	}
	ref, err := name.ParseReference(args[0])
	if err != nil {
		return err
	}
	desc, err := remote.Get(ref)
	if err != nil {
		return err
	}
	digests := []v1.Hash{desc.Digest}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, child := range m.Manifests {
			digests = append(digests, child.Digest)
		}
	}
	var out strings.Builder
	for _, d := range digests {
		layers, bogus, err := sigLayers(ref.Context(), d)
		if err != nil {
			return err
		}
		fmt.Fprintf(&out, "%s %d %d\n", d, layers, bogus)
	}
	fmt.Print(out.String())
	return nil
}

func sigLayers(repo name.Repository, digest v1.Hash) (layers, bogus int, err error) {
	img, err := remote.Image(sigTag(repo, digest))
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, 0, err
	}
	for _, l := range m.Layers {
		if _, ok := l.Annotations[bogusMarker]; ok {
			bogus++
		}
	}
	return len(m.Layers), bogus, nil
}

func waitRegistry(args []string) error {
	if len(args) != 1 {
		usage()
	}
	url := "http://" + args[0] + "/v2/"
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("registry not ready: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func exists(args []string) error {
	if len(args) != 1 {
		usage()
	}
	ref, err := name.ParseReference(args[0])
	if err != nil {
		return err
	}
	_, err = remote.Head(ref)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		fmt.Println("not found")
		os.Exit(3)
	}
	return err
}

// parse prints how go-containerregistry (ocisign's and cosign's parser)
// reads REF: the registry host and the repository name that ocisign writes
// as the payload's docker-reference and pushes the .sig tag to.
func parse(args []string) error {
	if len(args) != 1 {
		usage()
	}
	ref, err := name.ParseReference(args[0])
	if err != nil {
		return err
	}
	fmt.Println(ref.Context().RegistryStr(), ref.Context().Name())
	return nil
}
