package report

import (
	"fmt"
	"strings"
)

// Grid is a free-form table.
type Grid struct {
	Title  string
	About  string
	Header []string
	Rows   [][]string
}

// Summary builds the closing table: for every server of the first table,
// its queries per second in every table, then p99 latency and CPU per query
// in the first table, each cell with its ratio to baseline.
func Summary(title string, tables []Table, baseline string) Grid {
	g := Grid{Title: title, Header: []string{"server"}}
	if len(tables) == 0 {
		return g
	}
	g.About = fmt.Sprintf("Each cell: the figure, then in parentheses its ratio to %s in the same workload "+
		"(for qps higher is better; for latency and CPU lower is better).", baseline)
	for _, t := range tables {
		g.Header = append(g.Header, t.Key+" qps")
	}
	first := tables[0]
	g.Header = append(g.Header, first.Key+" p99 µs", first.Key+" CPU µs/query")
	for _, r := range first.Rows {
		row := []string{r.Server}
		for _, t := range tables {
			x, ok := find(t, r.Server)
			b, hasB := find(t, baseline)
			row = append(row, cell(ok, hasB, QPSString(x.QPS), x.QPS, b.QPS))
		}
		b, hasB := find(first, baseline)
		row = append(row,
			cell(r.Err == "", hasB, Micros(r.P99), float64(r.P99), float64(b.P99)),
			cell(r.Err == "", hasB, Micros(r.CPUPerQuery), float64(r.CPUPerQuery), float64(b.CPUPerQuery)))
		g.Rows = append(g.Rows, row)
	}
	return g
}

func find(t Table, server string) (Row, bool) {
	for _, r := range t.Rows {
		if r.Server == server && r.Err == "" {
			return r, true
		}
	}
	return Row{}, false
}

func cell(ok, hasBase bool, v string, x, base float64) string {
	if !ok {
		return "–"
	}
	if !hasBase {
		return v
	}
	return fmt.Sprintf("%s (%s)", v, ratio(x, base))
}

func writeGrid(b *strings.Builder, g Grid) {
	fmt.Fprintf(b, "## %s\n\n", g.Title)
	if g.About != "" {
		b.WriteString(g.About + "\n\n")
	}
	b.WriteString("| " + strings.Join(g.Header, " | ") + " |\n|")
	for i := range g.Header {
		if i == 0 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, r := range g.Rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	b.WriteString("\n")
}

// Markdown renders g alone, for a report printed to the terminal.
func (g Grid) Markdown() string {
	var b strings.Builder
	writeGrid(&b, g)
	return b.String()
}
