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
		nameAIO + ": +150 µs at p50 (2.50× NSD), +700 µs at p99 (2.00× NSD). " +
		"The peers add " + nameUnbound + ": +300 µs at p50 (4.00× NSD), +1300 µs at p99 (2.86× NSD)."
	if got != want {
		t.Errorf("misses section\n got %s\nwant %s", got, want)
	}
	if strings.Contains(got, nameFleet) {
		t.Errorf("a row without figures has no place there: %s", got)
	}

	// The fleet beside the chain of as many hops.
	tables[1].About = "Misses."
	tables[1].Rows[3] = row(nameFleet, 500*time.Microsecond, 3*time.Millisecond)
	tables[1].Rows = append(tables[1].Rows, row(nameChain, 350*time.Microsecond, 1200*time.Microsecond))
	addMissOverhead(tables)
	got = tables[1].About
	for _, want := range []string{
		nameFleet + ": +400 µs at p50 (5.00× NSD), +2300 µs at p99 (4.29× NSD)",
		"The peers add " + nameUnbound + ": +300 µs at p50 (4.00× NSD), +1300 µs at p99 (2.86× NSD); " +
			nameChain + ": +250 µs at p50 (3.50× NSD), +500 µs at p99 (1.71× NSD).",
		"the chain through 3 Unbounds: beside the chain, the fleet takes +150 µs at p50 and +1800 µs at p99.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("misses section lacks %q:\n%s", want, got)
		}
	}

	// Without NSD's figures there is nothing to subtract.
	noNSD := []report.Table{{Key: "miss", About: "Misses.", Rows: []report.Row{row(nameAIO, time.Millisecond, time.Millisecond)}}}
	addMissOverhead(noNSD)
	if noNSD[0].About != "Misses." {
		t.Errorf("without NSD: %q", noNSD[0].About)
	}
}
