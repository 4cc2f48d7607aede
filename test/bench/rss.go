// The port's peak memory over many signatures, and the binaries' sizes.

package main

import (
	"fmt"
	"os"
	"strings"

	th "github.com/ocisign/ocisign/test/internal/harness"
)

func (b *bench) peakRSS(n int) error {
	b.logf("peak RSS over %d port signatures", n)
	p, err := th.StartPort(b.ocisign, b.env())
	if err != nil {
		return err
	}
	defer p.Close()
	images := min(100, n)
	refs := make([]string, images)
	for i := range refs {
		if refs[i], err = b.image(); err != nil {
			return err
		}
	}
	before, _ := th.PeakRSSKiB(p.Pid())
	if err := b.portSign(p, refs[0], "first"); err != nil { // the key is decrypted (scrypt) here
		return err
	}
	afterFirst, _ := th.PeakRSSKiB(p.Pid())
	var samples []string
	// 16 requests in flight at a time (the port's default concurrency).
	const window = 16
	sent, done := 0, 0
	for done < n {
		for sent < n && sent-done < window {
			req := map[string]any{"id": sent, "op": "sign", "reference": refs[sent%images], "sign_key": b.key,
				"annotations": map[string]string{"n": fmt.Sprint(sent)}}
			if err := sendJSON(p, req); err != nil {
				return err
			}
			sent++
		}
		r, err := p.Next()
		if err != nil {
			return fmt.Errorf("port: %v\n%s", err, p.Stderr)
		}
		if !r.OK {
			return fmt.Errorf("port sign failed: %s", r.Raw)
		}
		done++
		if done%max(1, n/4) == 0 || done == n {
			rss, _ := th.RSSKiB(p.Pid())
			samples = append(samples, fmt.Sprintf("%d: %.1f MiB", done, float64(rss)/1024))
		}
	}
	peak, err := th.PeakRSSKiB(p.Pid())
	if err != nil {
		return err
	}
	b.printf("## Peak memory of the port\n\n")
	b.printf("`ocisign port`, %d signatures over %d images (distinct annotations, 16 requests in flight): VmHWM %.1f MiB\n", n, images, float64(peak)/1024)
	b.printf("(%.1f MiB after start-up, %.1f MiB after the first signature, which decrypts the key).", float64(before)/1024, float64(afterFirst)/1024)
	if peak-afterFirst <= afterFirst/20 {
		b.printf(" The peak is reached by the first signature: the key decryption, scrypt with the parameters ocisign and\n")
		b.printf("cosign write (N=65536, r=8), needs 64 MiB, as in every cosign run.")
	} else {
		b.printf(" The remaining %d signatures raised the peak by %.1f MiB.", n, float64(peak-afterFirst)/1024)
	}
	b.printf(" Current RSS (VmRSS) after n signatures: %s.\n\n", strings.Join(samples, ", "))
	return nil
}

func sendJSON(p *th.Port, v any) error {
	return p.Send(mustJSON(v))
}

func (b *bench) sizes(plain string) error {
	size := func(p string) float64 {
		st, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return float64(st.Size()) / (1 << 20)
	}
	b.printf("## Binary sizes\n\n| binary | size |\n|---|---|\n")
	b.printf("| ocisign (`go build`) | %.1f MiB |\n", size(plain))
	b.printf("| ocisign (`-trimpath -ldflags \"-s -w\"`) | %.1f MiB |\n", size(b.ocisign))
	for _, v := range []string{"v2", "v3"} {
		b.printf("| cosign %s (test/tools/build.sh) | %.1f MiB |\n", th.CosignPins[v], size(b.tools.Cosign[v]))
	}
	b.printf("\nocisign stripped is %.1f%% of cosign v2.6.5 and %.1f%% of cosign v3.1.3.\n\n",
		100*size(b.ocisign)/size(b.tools.Cosign["v2"]), 100*size(b.ocisign)/size(b.tools.Cosign["v3"]))
	smallest := min(size(b.tools.Cosign["v2"]), size(b.tools.Cosign["v3"]))
	b.target(size(plain) < smallest/4, "the binary is under a quarter of cosign's size: %.1f MiB (plain `go build`; %.1f MiB stripped) vs %.1f MiB",
		size(plain), size(b.ocisign), smallest)
	return nil
}
