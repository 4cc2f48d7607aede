package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	th "github.com/ocisign/ocisign/test/internal/harness"
)

// depths gives each request its place on the longest chain of requests
// ending with it (1 = started before any other had ended); the maximum is
// th.RoundTrips. recs are sorted by start.
func depths(recs []th.Record) []int {
	d := make([]int, len(recs))
	for i, r := range recs {
		d[i] = 1
		for j := range recs[:i] {
			if !recs[j].End.After(r.Start) && d[j]+1 > d[i] {
				d[i] = d[j] + 1
			}
		}
	}
	return d
}

// roundsBehind gives each request its round when the signer is rtt away:
// the requests of one round reach the registry within a fraction of rtt of
// each other, the next round a round trip later. (depths would split a
// round whose requests a fast registry answers before the next one of the
// same round arrives.) recs are sorted by start.
func roundsBehind(recs []th.Record, rtt time.Duration) []int {
	d := make([]int, len(recs))
	for i := range recs {
		d[i] = 1
		if i > 0 {
			d[i] = d[i-1]
			if recs[i].Start.Sub(recs[i-1].Start) > rtt/2 {
				d[i]++
			}
		}
	}
	return d
}

// sequence describes recorded requests round by round:
// "2× POST blob upload (open) ‖ GET manifest .sig tag → PUT manifest .sig tag".
func sequence(recs []th.Record) string { return sequenceOf(recs, depths(recs)) }

// sequenceOf is sequence with the rounds given (d[i] is recs[i]'s round).
func sequenceOf(recs []th.Record, d []int) string {
	rounds := map[int][]th.Record{}
	last := 0
	for i, r := range recs {
		rounds[d[i]] = append(rounds[d[i]], r)
		last = max(last, d[i])
	}
	var parts []string
	for k := 1; k <= last; k++ {
		counts := th.CountByClass(rounds[k])
		var classes []string
		for c := range counts {
			classes = append(classes, c)
		}
		sort.Strings(classes)
		var items []string
		for _, c := range classes {
			if counts[c] > 1 {
				items = append(items, fmt.Sprintf("%d× %s", counts[c], c))
			} else {
				items = append(items, c)
			}
		}
		parts = append(parts, strings.Join(items, " ‖ "))
	}
	return strings.Join(parts, " → ")
}

// merge sorts records of several proxies by start.
func merge(sets ...[]th.Record) []th.Record {
	var out []th.Record
	for _, s := range sets {
		out = append(out, s...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// medianInt is the median of ints as a float (x.5 for an even count
// whose middle values differ).
func medianInt(xs []int) float64 {
	s := append([]int(nil), xs...)
	sort.Ints(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}

// histogram renders "4 (7 runs), 5 (3 runs)".
func histogram(xs []int) string {
	counts := map[int]int{}
	for _, x := range xs {
		counts[x]++
	}
	var keys []int
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d (%d×)", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

// closestToMedian is the index of the run whose value is nearest the median.
func closestToMedian(xs []int) int {
	m, best := medianInt(xs), 0
	for i, x := range xs {
		if abs(float64(x)-m) < abs(float64(xs[best])-m) {
			best = i
		}
	}
	return best
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func fmtMedian(f float64) string {
	if f == float64(int(f)) {
		return fmt.Sprint(int(f))
	}
	return fmt.Sprintf("%.1f", f)
}

// runStats is what several runs of one measurement recorded.
type runStats struct {
	times    []time.Duration
	requests []int
	rounds   []int
	recs     [][]th.Record
}

func (r *runStats) add(d time.Duration, recs []th.Record) {
	r.times = append(r.times, d)
	r.requests = append(r.requests, len(recs))
	r.rounds = append(r.rounds, th.RoundTrips(recs))
	r.recs = append(r.recs, recs)
}

// addBehind is add with rounds counted by roundsBehind (the signer rtt away).
func (r *runStats) addBehind(d time.Duration, recs []th.Record, rtt time.Duration) {
	r.add(d, recs)
	if len(recs) > 0 {
		rounds := roundsBehind(recs, rtt)
		r.rounds[len(r.rounds)-1] = rounds[len(rounds)-1]
	}
}
