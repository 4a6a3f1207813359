// Package trace makes the query streams of the load runs: Zipf-distributed
// and uniform traces over a zone's names, every key once (for cold-cache
// misses), and replays of a CSV of domain names; it writes them in
// dnsperf's input format.
package trace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/miekg/dns"
)

// Query is one question.
type Query struct {
	Name string // fully qualified
	Type uint16
}

// Sampler draws ranks in [0, N).
type Sampler interface {
	Next(r *rand.Rand) int
}

// Zipf draws rank k (0-based) with probability proportional to
// 1/(k+1)^S, by inverting a table of the cumulative distribution. Unlike
// math/rand's Zipf it accepts exponents at or below 1, the range measured
// for resolver traffic; S = 0 draws every rank alike.
type Zipf struct {
	S   float64
	cdf []float64 // cdf[k] = P(rank <= k); cdf[n-1] = 1
}

// NewZipf prepares a Zipf sampler over n ranks with a finite exponent
// s >= 0.
func NewZipf(n int, s float64) (*Zipf, error) {
	if n < 1 || !(s >= 0) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("trace: zipf needs n ≥ 1 and finite s ≥ 0, got n=%d s=%v", n, s)
	}
	cdf := make([]float64, n)
	sum := 0.0
	for k := range n {
		sum += math.Pow(float64(k+1), -s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	cdf[n-1] = 1
	return &Zipf{S: s, cdf: cdf}, nil
}

// Next draws one rank.
func (z *Zipf) Next(r *rand.Rand) int {
	// r.Float64() < 1 = cdf[n-1], so the search stays within the table.
	return sort.SearchFloat64s(z.cdf, r.Float64())
}

// Prob returns the probability of rank k, 0 outside [0, n).
func (z *Zipf) Prob(k int) float64 {
	if k < 0 || k >= len(z.cdf) {
		return 0
	}
	if k == 0 {
		return z.cdf[0]
	}
	return z.cdf[k] - z.cdf[k-1]
}

// Uniform draws every rank in [0, N) alike.
type Uniform struct{ N int }

// Next draws one rank.
func (u Uniform) Next(r *rand.Rand) int { return r.IntN(u.N) }

// TypeShare is a query type and its share of a trace.
type TypeShare struct {
	Type  uint16
	Share float64
}

// DefaultTypes is the mix of query types in generated traces: mostly A,
// a quarter AAAA, a few TXT and MX.
func DefaultTypes() []TypeShare {
	return []TypeShare{{dns.TypeA, .70}, {dns.TypeAAAA, .25}, {dns.TypeTXT, .03}, {dns.TypeMX, .02}}
}

// Mix says what a trace is drawn from.
type Mix struct {
	Names   []string    // existing names; their popularity order is shuffled by the seed
	NX      []string    // names that do not exist
	NXShare float64     // share of queries for NX names
	Types   []TypeShare // DefaultTypes() when empty
}

// Generate draws n queries: with probability NXShare a name of NX, else a
// name of Names, each picked by a sampler made by newSampler for that list's
// length, and a type from Types. Popularity ranks are assigned to names in
// an order shuffled by seed, so the most popular names are spread over the
// zone.
func Generate(m Mix, newSampler func(n int) (Sampler, error), n int, seed uint64) ([]Query, error) {
	if len(m.Names) == 0 {
		return nil, errors.New("trace: no names")
	}
	if m.NXShare < 0 || m.NXShare > 1 || (m.NXShare > 0 && len(m.NX) == 0) {
		return nil, fmt.Errorf("trace: NXShare %v with %d NX names", m.NXShare, len(m.NX))
	}
	types := m.Types
	if len(types) == 0 {
		types = DefaultTypes()
	}
	rng := rand.New(rand.NewPCG(seed, 0x7ace))
	names := shuffled(m.Names, rng)
	nx := shuffled(m.NX, rng)
	sn, err := newSampler(len(names))
	if err != nil {
		return nil, err
	}
	var sx Sampler
	if len(nx) > 0 {
		if sx, err = newSampler(len(nx)); err != nil {
			return nil, err
		}
	}
	out := make([]Query, n)
	for i := range out {
		if sx != nil && rng.Float64() < m.NXShare {
			out[i].Name = nx[sx.Next(rng)]
		} else {
			out[i].Name = names[sn.Next(rng)]
		}
		out[i].Type = pickType(types, rng)
	}
	return out, nil
}

// ZipfSampler returns a sampler maker for Generate with exponent s.
func ZipfSampler(s float64) func(int) (Sampler, error) {
	return func(n int) (Sampler, error) { return NewZipf(n, s) }
}

// UniformSampler is a sampler maker for Generate drawing names alike.
func UniformSampler(n int) (Sampler, error) { return Uniform{N: n}, nil }

func shuffled(in []string, rng *rand.Rand) []string {
	out := append([]string(nil), in...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func pickType(types []TypeShare, rng *rand.Rand) uint16 {
	x, total := rng.Float64(), 0.0
	for _, t := range types {
		total += t.Share
	}
	x *= total
	for _, t := range types {
		if x < t.Share {
			return t.Type
		}
		x -= t.Share
	}
	return types[len(types)-1].Type
}

// Keys returns every (name, type) pair once, shuffled by seed: a stream in
// which no question repeats, so a cache never hits.
func Keys(names []string, types []uint16, seed uint64) []Query {
	out := make([]Query, 0, len(names)*len(types))
	for _, n := range names {
		for _, t := range types {
			out = append(out, Query{Name: n, Type: t})
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0xc01d))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Unique returns the distinct questions of qs in first-seen order.
func Unique(qs []Query) []Query {
	seen := make(map[Query]struct{}, len(qs)/4)
	var out []Query
	for _, q := range qs {
		if _, ok := seen[q]; !ok {
			seen[q] = struct{}{}
			out = append(out, q)
		}
	}
	return out
}

// WriteDnsperf writes qs in dnsperf's input format: "name TYPE" per line.
func WriteDnsperf(w io.Writer, qs []Query) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	for _, q := range qs {
		bw.WriteString(q.Name)
		bw.WriteByte(' ')
		bw.WriteString(typeString(q.Type))
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("trace: write: %w", err)
	}
	return nil
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}
