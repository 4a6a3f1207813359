package main

import (
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/bench/report"
)

func TestAddMissOverhead(t *testing.T) {
	row := func(s string, p50, p99 time.Duration) report.Row {
		return report.Row{Server: s, P50: p50, P99: p99}
	}
	tables := []report.Table{
		{Key: "zipf", About: "zipf.", Rows: []report.Row{row(nameNSD, 100*time.Microsecond, time.Millisecond), row(nameAIO, time.Millisecond, time.Millisecond)}},
		{Key: "miss", About: "Misses.", Rows: []report.Row{
			row(nameNSD, 100*time.Microsecond, 700*time.Microsecond),
			row(nameUnbound, 400*time.Microsecond, 2*time.Millisecond),
			row(nameAIO, 250*time.Microsecond, 1400*time.Microsecond),
			{Server: nameFleet, Err: "did not start"},
		}},
	}
	addMissOverhead(tables)
	if tables[0].About != "zipf." {
		t.Errorf("zipf section changed: %q", tables[0].About)
	}
	got := tables[1].About
	want := "Misses. Added to a direct upstream query (each latency minus that of the same questions sent straight to nsd in this run): " +
		nameAIO + ": +150 µs at p50 (2.50× NSD), +700 µs at p99 (2.00× NSD)."
	if got != want {
		t.Errorf("misses section\n got %s\nwant %s", got, want)
	}
	if strings.Contains(got, "Unbound") || strings.Contains(got, nameFleet) {
		t.Errorf("only shardns rows with figures belong there: %s", got)
	}

	// Without NSD's figures there is nothing to subtract.
	noNSD := []report.Table{{Key: "miss", About: "Misses.", Rows: []report.Row{row(nameAIO, time.Millisecond, time.Millisecond)}}}
	addMissOverhead(noNSD)
	if noNSD[0].About != "Misses." {
		t.Errorf("without NSD: %q", noNSD[0].About)
	}
}
