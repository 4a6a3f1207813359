package trace

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// slope fits log(count) against log(rank+1) by least squares over ranks
// [0, top).
func slope(counts []int, top int) float64 {
	var sx, sy, sxx, sxy, n float64
	for k := range top {
		if counts[k] == 0 {
			continue
		}
		x, y := math.Log(float64(k+1)), math.Log(float64(counts[k]))
		sx, sy, sxx, sxy, n = sx+x, sy+y, sxx+x*x, sxy+x*y, n+1
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// TestZipfShape: the rank-frequency line of the samples has slope -s on a
// log-log scale, and rank 1 is drawn 2^s times as often as rank 2.
func TestZipfShape(t *testing.T) {
	for _, s := range []float64{0.9, 1.0, 1.2} {
		z, err := NewZipf(10000, s)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		counts := make([]int, 10000)
		for range 400_000 {
			counts[z.Next(r)]++
		}
		if got := slope(counts, 100); math.Abs(got+s) > 0.08 {
			t.Errorf("s=%v: log-log slope %.3f, want %.2f", s, got, -s)
		}
		if ratio := float64(counts[0]) / float64(counts[1]); math.Abs(ratio-math.Pow(2, s))/math.Pow(2, s) > 0.05 {
			t.Errorf("s=%v: rank 1 / rank 2 = %.3f, want %.3f", s, ratio, math.Pow(2, s))
		}
		// The head of the distribution: its share of queries follows the harmonic sums.
		h := func(n int) float64 {
			sum := 0.0
			for k := 1; k <= n; k++ {
				sum += math.Pow(float64(k), -s)
			}
			return sum
		}
		top := 0
		for k := range 100 {
			top += counts[k]
		}
		if got, want := float64(top)/400_000, h(100)/h(10000); math.Abs(got-want) > 0.01 {
			t.Errorf("s=%v: top 100 share %.3f, want %.3f", s, got, want)
		}
	}
}

func TestUniformShape(t *testing.T) {
	u := Uniform{N: 100}
	r := rand.New(rand.NewPCG(3, 4))
	counts := make([]int, 100)
	for range 100_000 {
		counts[u.Next(r)]++
	}
	for k, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("rank %d drawn %d times of 100000, want about 1000", k, c)
		}
	}
}

func TestNewZipfRejects(t *testing.T) {
	for _, c := range []struct {
		n int
		s float64
	}{{0, 1}, {10, -1}, {10, math.NaN()}, {10, math.Inf(1)}} {
		if _, err := NewZipf(c.n, c.s); err == nil {
			t.Errorf("NewZipf(%d, %v): no error", c.n, c.s)
		}
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d.example.", prefix, i)
	}
	return out
}

func TestGenerateMix(t *testing.T) {
	m := Mix{Names: names("n", 5000), NX: names("nx", 250), NXShare: 0.05}
	qs, err := Generate(m, ZipfSampler(1.0), 100_000, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 100_000 {
		t.Fatalf("%d queries", len(qs))
	}
	nx, types := 0, map[uint16]int{}
	perName := map[string]int{}
	for _, q := range qs {
		if strings.HasPrefix(q.Name, "nx") {
			nx++
		}
		types[q.Type]++
		perName[q.Name]++
	}
	if share := float64(nx) / 1e5; math.Abs(share-0.05) > 0.005 {
		t.Errorf("NX share %.4f, want 0.05", share)
	}
	if share := float64(types[dns.TypeA]) / 1e5; math.Abs(share-0.70) > 0.01 {
		t.Errorf("A share %.3f, want 0.70", share)
	}
	if share := float64(types[dns.TypeAAAA]) / 1e5; math.Abs(share-0.25) > 0.01 {
		t.Errorf("AAAA share %.3f, want 0.25", share)
	}
	// The most popular name is not the first of the list: ranks are shuffled.
	top, topN := "", 0
	for n, c := range perName {
		if c > topN && !strings.HasPrefix(n, "nx") {
			top, topN = n, c
		}
	}
	if top == "n0.example." {
		t.Error("popularity follows list order; want it shuffled")
	}
	again, _ := Generate(m, ZipfSampler(1.0), 100_000, 9)
	for i := range qs {
		if qs[i] != again[i] {
			t.Fatal("same seed, different trace")
		}
	}
	if _, err := Generate(Mix{Names: names("n", 5), NXShare: 0.1}, UniformSampler, 10, 1); err == nil {
		t.Error("NXShare with no NX names: no error")
	}
	if _, err := Generate(Mix{}, UniformSampler, 10, 1); err == nil {
		t.Error("no names: no error")
	}
}

func TestKeysAndUnique(t *testing.T) {
	ks := Keys(names("k", 100), []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX}, 1)
	if len(ks) != 300 || len(Unique(ks)) != 300 {
		t.Fatalf("%d keys, %d unique; want 300 each", len(ks), len(Unique(ks)))
	}
	qs := []Query{{"a.", 1}, {"b.", 1}, {"a.", 1}, {"a.", 28}, {"b.", 1}}
	u := Unique(qs)
	if len(u) != 3 || u[0] != qs[0] || u[1] != qs[1] || u[2] != qs[3] {
		t.Errorf("Unique = %v", u)
	}
}

func TestWriteDnsperf(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDnsperf(&b, []Query{{"www.example.", dns.TypeA}, {"x.example.", dns.TypeHTTPS}, {"y.", 65280}}); err != nil {
		t.Fatal(err)
	}
	if want := "www.example. A\nx.example. HTTPS\ny. TYPE65280\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
