package cachelab

import (
	"math"
	"testing"
)

func TestZipfFollowsItsLaw(t *testing.T) {
	const n, draws = 1000, 200_000
	for _, s := range []float64{0, 0.9, 1.0, 1.2} {
		z, err := newZipf(n, s, 7)
		if err != nil {
			t.Fatal(err)
		}
		counts := make([]int, n)
		for range draws {
			k := z.Next()
			if k < 0 || k >= n {
				t.Fatalf("s=%v: rank %d out of range", s, k)
			}
			counts[k]++
		}
		// P(rank k) = (k+1)^-s / H(n,s); check the head ranks within 4 sigma.
		h := 0.0
		for k := 1; k <= n; k++ {
			h += math.Pow(float64(k), -s)
		}
		for _, k := range []int{0, 1, 9, 99} {
			want := math.Pow(float64(k+1), -s) / h
			if got := z.Prob(k); math.Abs(got-want) > 1e-12 {
				t.Errorf("s=%v: Prob(%d) = %v, want %v", s, k, got, want)
			}
			got := float64(counts[k]) / draws
			sigma := math.Sqrt(want * (1 - want) / draws)
			if math.Abs(got-want) > 4*sigma {
				t.Errorf("s=%v: rank %d drawn %.5f of the time, want %.5f ± %.5f", s, k, got, want, 4*sigma)
			}
		}
	}
}

func TestZipfIsSeeded(t *testing.T) {
	a, _ := newZipf(500, 1, 1)
	b, _ := newZipf(500, 1, 1)
	c, _ := newZipf(500, 1, 2)
	same, differ := true, false
	for range 1000 {
		x, y, z := a.Next(), b.Next(), c.Next()
		same = same && x == y
		differ = differ || x != z
	}
	if !same {
		t.Error("same seed, different sequences")
	}
	if !differ {
		t.Error("different seeds, same sequence")
	}
}

func TestNewZipfRejects(t *testing.T) {
	for _, tc := range []struct {
		n int
		s float64
	}{{0, 1}, {-1, 1}, {10, -0.5}, {10, math.NaN()}, {10, math.Inf(1)}} {
		if _, err := newZipf(tc.n, tc.s, 1); err == nil {
			t.Errorf("newZipf(%d, %v) accepted", tc.n, tc.s)
		}
	}
}

func TestZipfTraceSpreadsHotKeys(t *testing.T) {
	const n, length = 5000, 100_000
	tr, err := zipfTrace(n, length, 1.0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) != length {
		t.Fatalf("trace has %d requests, want %d", len(tr), length)
	}
	counts := make(map[int32]int)
	for _, k := range tr {
		if k < 0 || k >= n {
			t.Fatalf("key %d out of range", k)
		}
		counts[k]++
	}
	hot, most := int32(-1), 0
	for k, c := range counts {
		if c > most {
			hot, most = k, c
		}
	}
	z, _ := newZipf(n, 1.0, 3)
	if got, want := float64(most)/length, z.Prob(0); math.Abs(got-want) > 0.01 {
		t.Errorf("hottest key has %.4f of the requests, want about %.4f", got, want)
	}
	if hot == 0 {
		t.Error("the hottest key is key 0: ranks are not permuted")
	}
	again, _ := zipfTrace(n, length, 1.0, 3)
	for i := range tr {
		if tr[i] != again[i] {
			t.Fatal("same seed gave another trace")
		}
	}
}

func TestIdealHits(t *testing.T) {
	tr := []int32{1, 2, 1, 3, 2, 4, 1, 5}
	for _, tc := range []struct{ from, want int }{{0, 3}, {3, 2}, {6, 1}, {8, 0}} {
		if got := idealHits(tr, tc.from); got != tc.want {
			t.Errorf("idealHits(from %d) = %d, want %d", tc.from, got, tc.want)
		}
	}
}
