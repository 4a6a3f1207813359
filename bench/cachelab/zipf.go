package cachelab

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/shardns/shardns/bench/trace"
)

// zipf draws ranks 0..n-1 with P(k) proportional to 1/(k+1)^s from its
// own seeded generator. It is not safe for concurrent use.
type zipf struct {
	*trace.Zipf
	rng *rand.Rand
}

// newZipf returns a sampler over n ranks with exponent s >= 0, seeded so
// that the same arguments give the same sequence.
func newZipf(n int, s float64, seed uint64) (*zipf, error) {
	z, err := trace.NewZipf(n, s)
	if err != nil {
		return nil, fmt.Errorf("cachelab: %w", err)
	}
	return &zipf{Zipf: z, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}, nil
}

// Next returns the next rank, 0 being the most popular.
func (z *zipf) Next() int { return z.Zipf.Next(z.rng) }

// zipfTrace returns length draws of key indexes 0..n-1 under a Zipf law of
// exponent s, popularity ranks mapped to keys by a seeded random
// permutation, so that the hot keys are spread over the key space (and
// over every kind of answer) rather than being its first entries.
func zipfTrace(n, length int, s float64, seed uint64) ([]int32, error) {
	if n > math.MaxInt32 {
		return nil, errors.New("cachelab: trace: too many keys")
	}
	z, err := newZipf(n, s, seed)
	if err != nil {
		return nil, err
	}
	perm := rand.New(rand.NewPCG(seed+1, seed^0x5851f42d4c957f2d)).Perm(n)
	out := make([]int32, max(length, 0))
	for i := range out {
		out[i] = int32(perm[z.Next()])
	}
	return out, nil
}

// idealHits counts the requests in trace[from:] whose key was requested
// before (anywhere earlier in trace): the hits of a cache that never
// evicts, the bound no eviction policy can beat.
func idealHits(trace []int32, from int) int {
	seen := make(map[int32]struct{}, len(trace)/2)
	hits := 0
	for i, k := range trace {
		if _, ok := seen[k]; ok {
			if i >= from {
				hits++
			}
			continue
		}
		seen[k] = struct{}{}
	}
	return hits
}
