// Concurrent signers on one digest: how many signatures survive.

package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	th "github.com/ocisign/ocisign/test/internal/harness"
)

// concurrency: 8 signers with 8 keys sign one digest at the same moment.
func (b *bench) concurrency(trials int) error {
	b.logf("concurrent signers")
	const signers = 8
	var keys, pubs []string
	for i := 0; i < signers; i++ {
		k, p, err := b.newKey(fmt.Sprintf("conc%d", i))
		if err != nil {
			return err
		}
		keys, pubs = append(keys, k), append(pubs, p)
	}
	b.printf("## Concurrent signers (8 keys, one digest, all at once)\n\n")
	b.printf("Each trial pushes a fresh image and starts 8 signers with 8 different keys at the same moment; afterwards\n")
	b.printf("each key's signature is looked for in the `.sig` manifest with `ocisign verify --key` (it checks what cosign verify\n")
	b.printf("checks and starts faster; test/concurrency, the test of the same scenario, verifies with real `cosign verify`).\n")
	b.printf("Lost = signatures missing at the end.\n\n")
	b.printf("| signers | trials | signatures expected | signatures lost | trials with a loss | signer runs that failed |\n|---|---|---|---|---|---|\n")
	for _, t := range b.cliTools() {
		var tally lossTally
		var failed atomic.Int32
		for trial := 0; trial < trials; trial++ {
			ref, err := b.image()
			if err != nil {
				return err
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < signers; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					// A signer that fails outright under the race loses its signature too.
					r, err := th.Run(b.env(), 3*time.Minute, t.bin, append(t.args(keys[i]), ref)...)
					if err != nil || r.Code != 0 {
						failed.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if err := tally.trial(b, ref, pubs); err != nil {
				return err
			}
		}
		b.printf("| 8 × %s processes | %s | %d |\n", t.name, tally.row(trials, signers), failed.Load())
	}
	// 8 requests on one port.
	p, err := th.StartPort(b.ocisign, b.env())
	if err != nil {
		return err
	}
	defer p.Close()
	var tally lossTally
	portFailed := 0
	for trial := 0; trial < trials; trial++ {
		ref, err := b.image()
		if err != nil {
			return err
		}
		for i := 0; i < signers; i++ {
			b.counter++
			if err := sendJSON(p, map[string]any{"id": b.counter, "op": "sign", "reference": ref, "sign_key": keys[i]}); err != nil {
				return err
			}
		}
		for i := 0; i < signers; i++ {
			r, err := p.Next()
			if err != nil {
				return err
			}
			if !r.OK {
				portFailed++
			}
		}
		if err := tally.trial(b, ref, pubs); err != nil {
			return err
		}
	}
	b.printf("| 8 requests on one ocisign port | %s | %d |\n\n", tally.row(trials, signers), portFailed)
	return nil
}

// missingSignatures counts the public keys whose signature ref lacks.
func (b *bench) missingSignatures(ref string, pubs []string) (int, error) {
	missing := 0
	for _, pub := range pubs {
		r, err := th.Run(b.env(), time.Minute, b.ocisign, "verify", "--key", pub, ref)
		if err != nil {
			return 0, err
		}
		if r.Code != 0 {
			missing++
		}
	}
	return missing, nil
}

// lossTally counts the signatures lost over the trials of one row.
type lossTally struct{ lost, badTrials int }

// trial adds the signatures ref lacks after one trial.
func (l *lossTally) trial(b *bench, ref string, pubs []string) error {
	missing, err := b.missingSignatures(ref, pubs)
	l.lost += missing
	if missing > 0 {
		l.badTrials++
	}
	return err
}

// row is the table's trials, expected, lost and trials-with-a-loss cells
// for trials of `per` signatures each.
func (l *lossTally) row(trials, per int) string {
	return fmt.Sprintf("%d | %d | %d (%.0f%%) | %d", trials, trials*per, l.lost,
		100*float64(l.lost)/float64(trials*per), l.badTrials)
}
