package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/report"
	"github.com/shardns/shardns/bench/trace"
	"github.com/shardns/shardns/bench/zonegen"
)

func TestParseFlagsQuick(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-duration", "4s"})
	if err != nil {
		t.Fatal(err)
	}
	q := quickScale()
	if o.names != q.names || o.traceLen != q.traceLen || o.latDuration != q.lat || o.rounds != q.rounds || o.duration != 4*time.Second {
		t.Errorf("quick options: %+v", o)
	}
	full, err := parseFlags(nil)
	if err != nil || full.names != fullScale().names || full.duration != fullScale().duration {
		t.Errorf("full options: %+v, %v", full, err)
	}
	for _, bad := range [][]string{{"-names", "5"}, {"-zipf-s", "0"}, {"-duration", "2h"}, {"-nx-share", "1"}, {"-rounds", "0"}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// TestSampleCSV: the committed sample replays against any run's zone: its
// names under the suffix exist in the quick zone (the first 10000 names)
// or are meant not to (NXDOMAIN), and the rest sit under the reserved
// example domains, which a run adds to its zone. It is also what
// -gen-csv writes today.
func TestSampleCSV(t *testing.T) {
	f, err := os.Open("testdata/names.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	qs, err := trace.ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := parseFlags([]string{"-quick"})
	zone, err := zonegen.Generate(zoneConfig(o, nil))
	if err != nil {
		t.Fatal(err)
	}
	found, nx, outside := 0, 0, 0
	for _, q := range qs {
		switch _, ok := zone.Lookup(q.Name); {
		case ok:
			found++
		case strings.HasPrefix(q.Name, "nope-") && dns.IsSubDomain(zone.Suffix, q.Name):
			nx++
		case dns.IsSubDomain("example.com.", q.Name) || dns.IsSubDomain("example.net.", q.Name) || dns.IsSubDomain("example.org.", q.Name):
			outside++
		default:
			t.Errorf("%s: neither in the zone, nor an NX name, nor under an example domain", q.Name)
		}
	}
	if len(qs) < 1000 || nx == 0 || outside == 0 || float64(nx)/float64(len(qs)) > 0.1 {
		t.Errorf("%d rows: %d found, %d NX, %d outside", len(qs), found, nx, outside)
	}
	want, err := sampleCSV(o, len(qs))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if want[i] != qs[i] {
			t.Fatalf("row %d: %v, -gen-csv now writes %v; regenerate with: cd bench && go run . -gen-csv testdata/names.csv", i+1, qs[i], want[i])
		}
	}
}

func TestSourceShares(t *testing.T) {
	got := sourceShares(map[string]float64{"l1": 100, "redis": 50}, map[string]float64{"l1": 1100, "redis": 50, "resolver": 250, "stale": 0})
	if want := "l1 80.0%, resolver 20.0%"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := sourceShares(nil, nil); got != "" {
		t.Errorf("no counters: %q", got)
	}
	if got := oddRcodes(map[string]int64{"NOERROR": 900, "NXDOMAIN": 50, "SERVFAIL": 49, "REFUSED": 1}, 1000); got != "SERVFAIL 4.9%" {
		t.Errorf("oddRcodes: %q", got)
	}
}

func TestAddReferenceRows(t *testing.T) {
	row := func(s string, q float64) report.Row { return report.Row{Server: s, QPS: q} }
	tables := addReferenceRows([]report.Table{
		{Key: "zipf", Rows: []report.Row{row(nameUnbound, 10), row(nameAIO, 20), row(nameFleet, 15), row(nameRedis, 8)}},
		{Key: "miss", Rows: []report.Row{row(nameUnbound, 5), row(nameFleet, 2)}},
		{Key: "shards", Rows: []report.Row{row(shardName(1), 7), row(shardName(8), 9)}},
	})
	shards, _ := tableOf(tables, "shards")
	if len(shards.Rows) != 3 || shards.Rows[0].Server != nameUnbound {
		t.Errorf("shards rows: %+v", shards.Rows)
	}
	paths, ok := tableOf(tables, "paths")
	if !ok {
		t.Fatal("no paths table")
	}
	var labels []string
	for _, r := range paths.Rows {
		labels = append(labels, r.Server)
	}
	want := "Unbound|L1 hits: all-in-one|L1 hits: L1 + Redis×4 + resolverd|Redis hits: L1 off, Redis×4|misses through resolverd (L1 + Redis×4, cold)|Unbound, misses (cold)"
	if got := strings.Join(labels, "|"); got != want {
		t.Errorf("paths rows\n got %s\nwant %s", got, want)
	}
	// Without any shardns row there is no paths table.
	only := addReferenceRows([]report.Table{{Key: "zipf", Rows: []report.Row{row(nameUnbound, 1)}}})
	if _, ok := tableOf(only, "paths"); ok {
		t.Error("paths table without shardns rows")
	}
}
