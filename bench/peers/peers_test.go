package peers

import (
	"strings"
	"testing"
)

func TestParseSources(t *testing.T) {
	in := `# HELP shardns_lookup_answers_total Answers given, by source (l1, redis, stale, resolver).
# TYPE shardns_lookup_answers_total counter
shardns_lookup_answers_total{source="l1"} 1.2345e+06
shardns_lookup_answers_total{source="resolver"} 17
shardns_lookup_duration_seconds_bucket{source="l1",le="5e-05"} 3
shardns_lookup_answers_total_other{source="x"} 9
`
	got, err := ParseSources(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["l1"] != 1234500 || got["resolver"] != 17 {
		t.Errorf("got %v", got)
	}
	if _, err := ParseSources(strings.NewReader(`shardns_lookup_answers_total{source="l1"} x` + "\n")); err == nil {
		t.Error("bad value: no error")
	}
}

func TestParseValues(t *testing.T) {
	text := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 42\n" +
		"go_memstats_heap_inuse_bytes 1.2345e+07\ngo_memstats_heap_inuse_bytes_total 1\n" +
		`shardns_lookup_answers_total{source="l1"} 7` + "\n"
	m, err := ParseValues(strings.NewReader(text), "go_goroutines", "go_memstats_heap_inuse_bytes")
	if err != nil || m["go_goroutines"] != 42 || m["go_memstats_heap_inuse_bytes"] != 12345000 {
		t.Errorf("ParseValues = %v, %v", m, err)
	}
	if _, err := ParseValues(strings.NewReader(text), "go_memstats_next_gc_bytes"); err == nil {
		t.Error("a missing metric: no error")
	}
	if _, err := ParseValues(strings.NewReader("go_goroutines x\n"), "go_goroutines"); err == nil {
		t.Error("a bad value: no error")
	}
}

// TestConfigsLoopbackOnly: every generated configuration listens on and
// forwards to loopback only, and turns off what would skew the figures.
func TestConfigsLoopbackOnly(t *testing.T) {
	ub := UnboundConf(5301, "/tmp/x", "127.0.0.1", 5300)
	for _, want := range []string{"interface: 127.0.0.1@5301", "outgoing-interface: 127.0.0.1", "forward-addr: 127.0.0.1@5300",
		`module-config: "iterator"`, "do-not-query-localhost: no", "num-threads: 1", "control-enable: no"} {
		if !strings.Contains(ub, want) {
			t.Errorf("unbound.conf lacks %q", want)
		}
	}
	nsd := NSDConf(5300, "/tmp/x", "/tmp/x/root.zone")
	for _, want := range []string{"ip-address: 127.0.0.1@5300", "rrl-ratelimit: 0", "server-count: 1", `name: "."`} {
		if !strings.Contains(nsd, want) {
			t.Errorf("nsd.conf lacks %q", want)
		}
	}
	dm := strings.Join(DnsmasqArgs("dnsmasq", 5302, "/tmp/x", "127.0.0.1", 5300, 1000), " ")
	for _, want := range []string{"--server=127.0.0.1#5300", "--listen-address=127.0.0.1", "--no-resolv", "--cache-size=1000", "-k"} {
		if !strings.Contains(dm, want) {
			t.Errorf("dnsmasq args lack %q: %s", want, dm)
		}
	}
	cf := Corefile(5303, "127.0.0.1", 5300, 100100)
	for _, want := range []string{".:5303 {", "bind 127.0.0.1", "success 100100", "denial 100100", "forward . 127.0.0.1:5300"} {
		if !strings.Contains(cf, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, cf)
		}
	}
	if strings.Contains(cf, "log\n") {
		t.Errorf("Corefile logs every query:\n%s", cf)
	}
	for _, bad := range []string{"192.0.2.1:53", "localhost:53", "127.0.0.1:0", "127.0.0.1"} {
		if _, _, err := splitLoopback(bad); err == nil {
			t.Errorf("splitLoopback(%q): no error", bad)
		}
	}
}
