package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/fakenet"
)

// TestRecurseQuestions checks that a round asks the table's rows and n
// wildcard names, each once, that two rounds' wildcard names differ, and
// that every line is in dnsperf's "name TYPE" form.
func TestRecurseQuestions(t *testing.T) {
	table := tableQuestions()
	if len(table) == 0 || len(table) >= len(fakenet.Questions()) {
		t.Fatalf("table questions: %d of %d rows; want the rows without a silent server", len(table), len(fakenet.Questions()))
	}
	for _, q := range table {
		if strings.Contains(q, "timeout.fake.") || strings.Contains(q, "refused.fake.") {
			t.Errorf("slow row kept: %s", q)
		}
	}
	r0, r1 := recurseQuestions(1, 0, 100), recurseQuestions(1, 1, 100)
	if len(r0) != len(table)+100 {
		t.Fatalf("round 0: %d questions, want %d", len(r0), len(table)+100)
	}
	seen := map[string]bool{}
	wild := 0
	for _, q := range r0 {
		name, typ, ok := strings.Cut(q, " ")
		if !ok || !strings.HasSuffix(name, ".") || typ == "" {
			t.Fatalf("malformed line %q", q)
		}
		if strings.HasPrefix(name, "h") && strings.Contains(name, "-r0.") {
			if seen[q] {
				t.Errorf("wildcard name asked twice: %s", q)
			}
			seen[q] = true
			wild++
		}
	}
	if wild != 100 {
		t.Errorf("round 0: %d wildcard names, want 100", wild)
	}
	for _, q := range r1 {
		if seen[q] {
			t.Errorf("round 1 repeats round 0's %s", q)
		}
	}
	if strings.Join(recurseQuestions(1, 0, 100), ",") != strings.Join(r0, ",") {
		t.Error("the same seed and round give another order")
	}
}

// TestSplitCounts checks that queries are sorted into root, TLDs and the
// rest by the zones each server serves.
func TestSplitCounts(t *testing.T) {
	a := netip.MustParseAddr("127.1.1.1")
	servers := []fakenet.Server{
		{Name: "a.root-servers.fake.", Addr: a, Zones: []string{"."}},
		{Name: "ns.nic.fake.", Addr: a, Zones: []string{"fake."}},
		{Name: "ns.nic.world.", Addr: a, Zones: []string{"world."}},
		{Name: "ns.secure.fake.", Addr: a, Zones: []string{"secure.fake.", "wild.fake."}},
	}
	got := splitCounts(servers, fakenet.Counts{"a.root-servers.fake.": 3, "ns.nic.fake.": 5, "ns.nic.world.": 1, "ns.secure.fake.": 40, "ns.unknown.": 2})
	if want := (authCounts{root: 3, tld: 6, other: 42}); got != want {
		t.Errorf("splitCounts = %+v, want %+v", got, want)
	}
	if got.total() != 51 {
		t.Errorf("total = %d, want 51", got.total())
	}
}

// TestRecurseMarkdown checks the section's rows, the shardns ÷ Unbound
// ratios, a failed row and the cold-start table.
func TestRecurseMarkdown(t *testing.T) {
	lat := func(us ...int) []time.Duration {
		var out []time.Duration
		for _, u := range us {
			out = append(out, time.Duration(u)*time.Microsecond)
		}
		return out
	}
	rows := []recurseRow{
		{server: nameRecShardns, sent: 100, answered: 100, auth: authCounts{root: 2, tld: 10, other: 188}, cpu: 20 * time.Millisecond,
			lat: lat(100, 200, 300, 400), servfail: 5, nxdomain: 3},
		{server: nameRecUnbound, sent: 100, answered: 100, auth: authCounts{root: 1, tld: 5, other: 94}, cpu: 10 * time.Millisecond,
			lat: lat(200, 400, 600, 800)},
	}
	cold := []coldRow{
		{label: coldFirst, asked: 50, answered: 50, auth: authCounts{root: 4, tld: 12, other: 60}},
		{label: coldShared, asked: 50, answered: 50},
		{label: coldEmpty, asked: 50, answered: 49, auth: authCounts{root: 4, tld: 12, other: 60}},
	}
	md := recurseMarkdown(recurseParams{rounds: 2, names: 90, table: 10, qps: 500, coldQuestions: 50, timeout: 5 * time.Second}, rows, cold)
	for _, want := range []string{
		"| " + nameRecShardns + " | 100 | 100 | 5 | 3 | 2.00 | 0.020 | 0.100 | 200 | 200 | 400 |",
		"| " + nameRecUnbound + " | 100 | 100 | 0 | 0 | 1.00 | 0.010 | 0.050 | 100 | 400 | 800 |",
		"| **shardns ÷ Unbound** | | | | | 2.00× | 2.00× | 2.00× | 2.00× | 0.50× | 0.50× |",
		"| " + coldFirst + " | 50 | 50 | 4 | 12 | 76 |",
		"| " + coldShared + " | 50 | 50 | 0 | 0 | 0 |",
		"| " + coldEmpty + " | 50 | 49 | 4 | 12 | 76 |",
		"the same 100 questions once",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("section lacks %q:\n%s", want, md)
		}
	}
	rows[1].err = "unbound exited\nlog"
	md = recurseMarkdown(recurseParams{rounds: 1}, rows, nil)
	if !strings.Contains(md, "| "+nameRecUnbound+" | failed: unbound exited log |") {
		t.Errorf("failed row missing:\n%s", md)
	}
	if strings.Contains(md, "shardns ÷ Unbound") || strings.Contains(md, "Cold start") {
		t.Errorf("ratios without a baseline, or a cold-start table without rows:\n%s", md)
	}
}
