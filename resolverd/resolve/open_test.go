package resolve_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/resolverd/resolve"
)

// TestOpenBuildsEverything builds the resolver from one Config: a local
// zone, the upstreams, and both collectors on the registry.
func TestOpenBuildsEverything(t *testing.T) {
	up := startUpstream(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(testZone), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r, err := resolve.Open(resolve.Config{Upstreams: []string{up.addr}, Zones: dir, HealthInterval: -1, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for name, want := range map[string]string{"www.example.test.": "192.0.2.1", "www.example.net.": "192.0.2.7"} {
		m, _, err := r.Exchange(ctx(t), question(name, dns.TypeA))
		if err != nil || len(m.Answer) != 1 || rdata(m.Answer)[0] != want {
			t.Errorf("%s: %v %v", name, m, err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"shardns_scrubbed_records_total", "shardns_upstream_"} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics %s lack %s", got, want)
		}
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestOpenRefusesBadConfig checks that nothing to answer from, and a zone
// folder that does not load, are errors.
func TestOpenRefusesBadConfig(t *testing.T) {
	if _, err := resolve.Open(resolve.Config{}); err == nil {
		t.Error("no zones and no upstreams: built")
	}
	if _, err := resolve.Open(resolve.Config{Zones: filepath.Join(t.TempDir(), "none")}); err == nil || !strings.HasPrefix(err.Error(), "resolve: ") {
		t.Errorf("missing zone folder: %v", err)
	}
	if _, err := resolve.Open(resolve.Config{Upstreams: []string{"not an address"}}); err == nil {
		t.Error("bad upstream: built")
	}
}

// TestResolveWire checks the wire form: the answer carries the query's ID
// and question and the upstream's records; a query that is not one is
// ErrQuery.
func TestResolveWire(t *testing.T) {
	up := startUpstream(t)
	r, err := resolve.New(loadZones(t), newForwarder(t, up.addr))
	if err != nil {
		t.Fatal(err)
	}
	q := dnsmsg.Query{Name: "www.example.net.", Type: dns.TypeA, Class: dns.ClassINET}
	wire, err := q.AppendUpstream(nil, 0x1234)
	if err != nil {
		t.Fatal(err)
	}
	ans, src, rcode, err := r.ResolveWire(ctx(t), wire)
	if err != nil || src != "udp://"+up.addr || rcode != dns.RcodeSuccess {
		t.Fatalf("source %q rcode %d err %v", src, rcode, err)
	}
	if !dnsmsg.AnswersQuery(wire, ans) {
		t.Fatal("the answer does not answer the query")
	}
	m := new(dns.Msg)
	if err := m.Unpack(ans); err != nil {
		t.Fatal(err)
	}
	if len(m.Answer) != 1 || rdata(m.Answer)[0] != "192.0.2.7" || m.Id != 0x1234 {
		t.Errorf("answer:\n%v", m)
	}
	for name, bad := range map[string][]byte{
		"unparsable": wire[:5],
		"response":   func() []byte { b := append([]byte(nil), wire...); b[2] |= 0x80; return b }(),
		"no question": func() []byte {
			b := new(dns.Msg)
			p, _ := b.Pack()
			return p
		}(),
	} {
		if _, err := r.Resolve(ctx(t), bad); !errors.Is(err, resolve.ErrQuery) {
			t.Errorf("%s: %v, want ErrQuery", name, err)
		}
	}
}
