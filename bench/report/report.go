// Package report writes a load run's results: RESULTS.md, with the machine,
// the settings, one table per workload (each figure also as a ratio to a
// baseline server measured in the same run) and a closing headline table,
// and PNG plots made with gonum/plot.
package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Row is one server's figures in one workload.
type Row struct {
	Server      string
	QPS         float64       // answered queries per second at full load (median of the rounds)
	QPSMin      float64       // the slowest round
	QPSMax      float64       // the fastest round
	Rounds      int           // full-load rounds measured
	Lost        float64       // share of sent queries unanswered at full load
	AvgLoad     time.Duration // mean latency at full load
	P50, P99    time.Duration // latency percentiles at the moderate fixed rate
	CPUPerQuery time.Duration // the server's CPU time per answered query at full load (median of the rounds)
	Sources     string        // where shardns's answers came from, e.g. "l1 97%, resolver 3%"
	Err         string        // why the row has no figures
}

// Table is one workload, or one arrangement swept.
type Table struct {
	Key      string // short id used in file names: zipf, uniform, csv, miss, paths, shards
	Title    string
	About    string // one paragraph: what was run
	Baseline string // Server whose figures the ratios divide by; "" for none
	Rows     []Row
}

// Results is everything RESULTS.md reports.
type Results struct {
	Title    string
	Command  string
	Started  time.Time
	Elapsed  time.Duration
	Machine  Machine
	Settings [][2]string // name, value
	Tables   []Table
	Notes    []string // paragraphs after the tables
	Extra    string   // further markdown sections (the cache experiments)
	Headline Grid     // the closing table
	Plots    []string // PNG paths relative to RESULTS.md
}

// baseline returns the baseline row of t, if it has figures.
func (t Table) baseline() (Row, bool) {
	for _, r := range t.Rows {
		if r.Server == t.Baseline && r.Err == "" {
			return r, true
		}
	}
	return Row{}, false
}

// ratio formats a/b as "1.23×", or "–" when either is missing.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 || math.IsNaN(a/b) || math.IsInf(a/b, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// QPSString formats queries per second with three significant figures.
func QPSString(q float64) string {
	switch {
	case q <= 0:
		return "–"
	case q >= 1e6:
		return fmt.Sprintf("%.2fM", q/1e6)
	case q >= 1e4:
		return fmt.Sprintf("%.0fk", q/1e3)
	case q >= 1e3:
		return fmt.Sprintf("%.1fk", q/1e3)
	default:
		return fmt.Sprintf("%.0f", q)
	}
}

// Micros formats a duration in microseconds.
func Micros(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	us := float64(d) / float64(time.Microsecond)
	if us >= 100 {
		return fmt.Sprintf("%.0f", us)
	}
	return fmt.Sprintf("%.1f", us)
}

// WriteMarkdown writes r as RESULTS.md.
func WriteMarkdown(w io.Writer, r Results) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	fmt.Fprintf(&b, "Measured %s in one run of `%s` (%s). Every figure is from this run; "+
		"ratios divide by the baseline server measured in the same run, on the same machine, zone and trace.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Command, r.Elapsed.Round(time.Second))
	writeMachine(&b, r.Machine)
	if len(r.Settings) > 0 {
		b.WriteString("## Settings\n\n| setting | value |\n|---|---|\n")
		for _, s := range r.Settings {
			fmt.Fprintf(&b, "| %s | %s |\n", s[0], s[1])
		}
		b.WriteString("\n")
	}
	for _, t := range r.Tables {
		writeTable(&b, t)
	}
	for _, n := range r.Notes {
		b.WriteString(n + "\n\n")
	}
	if r.Extra != "" {
		b.WriteString(strings.TrimSpace(r.Extra) + "\n\n")
	}
	if len(r.Plots) > 0 {
		b.WriteString("## Load plots\n\n")
		for _, p := range r.Plots {
			fmt.Fprintf(&b, "![%s](%s)\n\n", p, p)
		}
	}
	if len(r.Headline.Rows) > 0 {
		writeGrid(&b, r.Headline)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func writeTable(b *strings.Builder, t Table) {
	fmt.Fprintf(b, "## %s\n\n", t.Title)
	if t.About != "" {
		b.WriteString(t.About + "\n\n")
	}
	base, hasBase := t.baseline()
	vs := ""
	if t.Baseline != "" {
		vs = " ×" + t.Baseline
	}
	fmt.Fprintf(b, "| server | qps | qps%s | qps range | p50 µs | p50%s | p99 µs | p99%s | CPU µs/query | CPU%s | mean µs at full load | lost | answered from |\n",
		vs, vs, vs, vs)
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range t.Rows {
		if r.Err != "" {
			fmt.Fprintf(b, "| %s | failed: %s |||||||||||\n", r.Server, oneLine(r.Err))
			continue
		}
		rq, r50, r99, rc := "–", "–", "–", "–"
		if hasBase {
			rq = ratio(r.QPS, base.QPS)
			r50 = ratio(float64(r.P50), float64(base.P50))
			r99 = ratio(float64(r.P99), float64(base.P99))
			rc = ratio(float64(r.CPUPerQuery), float64(base.CPUPerQuery))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f%% | %s |\n",
			r.Server, QPSString(r.QPS), rq, qpsRange(r), Micros(r.P50), r50, Micros(r.P99), r99,
			Micros(r.CPUPerQuery), rc, Micros(r.AvgLoad), 100*r.Lost, r.Sources)
	}
	b.WriteString("\n")
}

// qpsRange is the slowest and fastest round, or "–" for one round.
func qpsRange(r Row) string {
	if r.Rounds < 2 {
		return "–"
	}
	return QPSString(r.QPSMin) + "–" + QPSString(r.QPSMax)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
