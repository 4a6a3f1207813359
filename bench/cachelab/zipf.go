package cachelab

import (
	"errors"
	"math"
	"math/rand/v2"
	"sort"
)

// zipf draws ranks 0..n-1 with P(k) proportional to 1/(k+1)^s. Unlike
// math/rand's Zipf it accepts any exponent s >= 0, including the s ≈ 1
// that resolver traffic shows. It is not safe for concurrent use.
type zipf struct {
	cdf []float64 // cdf[k] = P(rank <= k); cdf[n-1] = 1
	rng *rand.Rand
}

// newZipf returns a sampler over n ranks with exponent s, seeded so
// that the same arguments give the same sequence.
func newZipf(n int, s float64, seed uint64) (*zipf, error) {
	if n <= 0 {
		return nil, errors.New("cachelab: zipf: n must be positive")
	}
	if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, errors.New("cachelab: zipf: exponent must be finite and >= 0")
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
	return &zipf{cdf: cdf, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}, nil
}

// Next returns the next rank, 0 being the most popular.
func (z *zipf) Next() int {
	u := z.rng.Float64()
	k := sort.SearchFloat64s(z.cdf, u)
	// SearchFloat64s finds the first cdf >= u; u == cdf[k] exactly belongs
	// to rank k+1's interval, which only matters for measure-zero ties.
	return min(k, len(z.cdf)-1)
}

// Prob returns the probability of rank k.
func (z *zipf) Prob(k int) float64 {
	if k < 0 || k >= len(z.cdf) {
		return 0
	}
	if k == 0 {
		return z.cdf[0]
	}
	return z.cdf[k] - z.cdf[k-1]
}

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
