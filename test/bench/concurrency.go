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
		lost, badTrials := 0, 0
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
			missing, err := b.missingSignatures(ref, pubs)
			if err != nil {
				return err
			}
			lost += missing
			if missing > 0 {
				badTrials++
			}
		}
		b.printf("| 8 × %s processes | %d | %d | %d (%.0f%%) | %d | %d |\n", t.name, trials, trials*signers, lost,
			100*float64(lost)/float64(trials*signers), badTrials, failed.Load())
	}
	// 8 requests on one port.
	p, err := th.StartPort(b.ocisign, b.env())
	if err != nil {
		return err
	}
	defer p.Close()
	lost, badTrials, portFailed := 0, 0, 0
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
		missing, err := b.missingSignatures(ref, pubs)
		if err != nil {
			return err
		}
		lost += missing
		if missing > 0 {
			badTrials++
		}
	}
	b.printf("| 8 requests on one ocisign port | %d | %d | %d (%.0f%%) | %d | %d |\n\n", trials, trials*signers, lost,
		100*float64(lost)/float64(trials*signers), badTrials, portFailed)
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
