package report

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleTables() []Table {
	return []Table{
		{Key: "zipf", Title: "Zipf", Baseline: "Unbound", Rows: []Row{
			{Server: "Unbound", QPS: 50000, P50: 100 * time.Microsecond, P99: 400 * time.Microsecond, CPUPerQuery: 10 * time.Microsecond},
			{Server: "shardns", QPS: 100000, QPSMin: 90000, QPSMax: 120000, Rounds: 3, P50: 50 * time.Microsecond, P99: 800 * time.Microsecond, CPUPerQuery: 5 * time.Microsecond, Sources: "l1 100.0%"},
			{Server: "broken", Err: "nsd exited\nbadly | really"},
		}},
		{Key: "miss", Title: "Misses", Baseline: "Unbound", Rows: []Row{
			{Server: "Unbound", QPS: 10000, P99: time.Millisecond, CPUPerQuery: 40 * time.Microsecond},
			{Server: "shardns", QPS: 5000, P99: 2 * time.Millisecond, CPUPerQuery: 80 * time.Microsecond},
		}},
	}
}

func TestWriteMarkdownRatios(t *testing.T) {
	var b strings.Builder
	ts := sampleTables()
	err := WriteMarkdown(&b, Results{
		Title: "t", Command: "go run ./bench", Started: time.Unix(0, 0), Machine: Machine{CPUs: 2, MemBytes: 4 << 30},
		Tables: ts, Headline: Summary("Headline", ts, "Unbound"), Plots: []string{"plots/qps.png"},
	})
	if err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| shardns | 100k | 2.00× | 90k–120k | 50.0 | 0.50× | 800 | 2.00× | 5.0 | 0.50× |",
		"| Unbound | 50k | 1.00× | – |",
		"| broken | failed: nsd exited badly / really |",
		"| 2 × – |",
		"![plots/qps.png](plots/qps.png)",
		"| server | zipf qps | miss qps | zipf p99 µs | zipf CPU µs/query |",
		"| shardns | 100k (2.00×) | 5.0k (0.50×) | 800 (2.00×) | 5.0 (0.50×) |",
		"| broken | – | – | – | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Index(md, "## Headline") < strings.Index(md, "## Misses") {
		t.Error("the headline table is not the closing section")
	}
}

func TestRatioWithoutBaseline(t *testing.T) {
	ts := sampleTables()
	ts[0].Rows = ts[0].Rows[1:] // no Unbound
	var b strings.Builder
	writeTable(&b, ts[0])
	if !strings.Contains(b.String(), "| shardns | 100k | – |") {
		t.Errorf("ratios without a baseline row:\n%s", b.String())
	}
}

func TestFormats(t *testing.T) {
	for q, want := range map[float64]string{0: "–", 950: "950", 1234: "1.2k", 56789: "57k", 2.5e6: "2.50M"} {
		if got := QPSString(q); got != want {
			t.Errorf("QPSString(%v) = %q, want %q", q, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "–", 1500: "1.5", 250 * time.Microsecond: "250"} {
		if got := Micros(d); got != want {
			t.Errorf("Micros(%v) = %q, want %q", d, got, want)
		}
	}
}

func checkPNG(t *testing.T, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 100 {
		t.Errorf("%s: %v, too small", file, b)
	}
}

func TestPlots(t *testing.T) {
	dir := t.TempDir()
	bars := filepath.Join(dir, "bars.png")
	err := Bars(bars, "qps", "k/s", []string{"Unbound", "shardns", "missing"},
		[]Series{{Name: "zipf", Values: []float64{50, 100, 0}}, {Name: "miss", Values: []float64{10, 5, -1}}})
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, bars)
	lines := filepath.Join(dir, "lines.png")
	if err := Lines(lines, "shards", "shards", "k/s", []float64{1, 2, 4, 8}, []Series{{Name: "qps", Values: []float64{10, 12, 0, 13}}}); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, lines)
	if err := Bars(bars, "x", "y", []string{"a"}, []Series{{Name: "s", Values: []float64{1, 2}}}); err == nil {
		t.Error("mismatched series: no error")
	}
	if err := Lines(lines, "x", "y", "z", []float64{1}, []Series{{Name: "s", Values: []float64{0}}}); err == nil {
		t.Error("nothing to draw: no error")
	}
}
