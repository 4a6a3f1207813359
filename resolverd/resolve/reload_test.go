package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/resolve"
)

// fixedUpstream answers every A query with one address and counts every
// query it receives, health probes included.
type fixedUpstream struct {
	addr string
	ip   string
	n    atomic.Int64
}

func (u *fixedUpstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	u.n.Add(1)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if r.Question[0].Qtype == dns.TypeA {
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A " + u.ip)
		m.Answer = append(m.Answer, rr)
	}
	_ = w.WriteMsg(m)
}

func startFixed(t testing.TB, ip string) *fixedUpstream {
	t.Helper()
	u := &fixedUpstream{ip: ip}
	u.addr = dnstest.StartUDP(t, u)
	return u
}

// reloadZone is example.test with www at addr.
func reloadZone(addr string) string {
	return "$TTL 300\n@ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60\n  IN NS ns1.example.test.\nns1 IN A 127.0.0.53\nwww IN A " + addr + "\n"
}

// serveResolver answers DNS over UDP on a loopback port with r, as a
// daemon would, and returns the address.
func serveResolver(t *testing.T, r *resolve.Resolver) string {
	t.Helper()
	return dnstest.StartUDP(t, dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		a, _, err := r.Exchange(ctx, q)
		if err != nil {
			a = new(dns.Msg)
			a.SetRcode(q, dns.RcodeServerFailure)
		}
		a.Id = q.Id
		_ = w.WriteMsg(a)
	}))
}

// askA asks server for name's A record over UDP and returns the address,
// or an error for anything but a NOERROR answer with one.
func askA(c *dns.Client, server, name string) (string, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	m, _, err := c.Exchange(q, server)
	if err != nil {
		return "", err
	}
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		return "", fmt.Errorf("%s: %s with %d answers", name, dns.RcodeToString[m.Rcode], len(m.Answer))
	}
	a, ok := m.Answer[0].(*dns.A)
	if !ok {
		return "", fmt.Errorf("%s: answer %v", name, m.Answer[0])
	}
	return a.A.String(), nil
}

// TestReloadUnderLoad swaps a resolver's zone and upstreams while clients
// query it over UDP: no query fails, the new zone data and the new
// upstream answer after the swap, the old upstream's health checks stop,
// the metrics follow, and a broken zone file leaves everything as it was.
func TestReloadUnderLoad(t *testing.T) {
	oldUp, newUp := startFixed(t, "192.0.2.1"), startFixed(t, "192.0.2.2")
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "example.test.zone")
	if err := os.WriteFile(zoneFile, []byte(reloadZone("192.0.2.10")), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	const probe = 20 * time.Millisecond
	cfg := resolve.Config{Zones: dir, Upstreams: []string{oldUp.addr}, HealthInterval: probe, Registerer: reg}
	r, err := resolve.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	server := serveResolver(t, r)
	c := &dns.Client{Timeout: 2 * time.Second}
	if got, err := askA(c, server, "www.example.test."); err != nil || got != "192.0.2.10" {
		t.Fatalf("before: %s %v", got, err)
	}

	// Clients: each asks a local and a forwarded name in turn, bounded in
	// count and time, and checks every answer is the old or the new one.
	valid := map[string]map[string]bool{
		"www.example.test.": {"192.0.2.10": true, "192.0.2.11": true},
		"fwd.example.net.":  {"192.0.2.1": true, "192.0.2.2": true},
	}
	var (
		stop     atomic.Bool
		asked    atomic.Int64
		failures = make(chan error, 16)
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(15 * time.Second)
	for i := range 4 {
		wg.Go(func() {
			for n := 0; n < 2000 && time.Now().Before(deadline) && !stop.Load(); n++ {
				name := "www.example.test."
				if (n+i)%2 == 1 {
					name = "fwd.example.net."
				}
				got, err := askA(c, server, name)
				asked.Add(1)
				if err == nil && !valid[name][got] {
					err = fmt.Errorf("%s: %s", name, got)
				}
				if err != nil {
					select {
					case failures <- err:
					default:
					}
				}
			}
		})
	}
	waitAsked := func(n int64) {
		for asked.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	waitAsked(100)
	if err := os.WriteFile(zoneFile, []byte(reloadZone("192.0.2.11")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Upstreams = []string{newUp.addr}
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	// Every query from here on is answered from the new state.
	if got, err := askA(c, server, "www.example.test."); err != nil || got != "192.0.2.11" {
		t.Errorf("after reload: www %s %v, want the edited 192.0.2.11", got, err)
	}
	if got, err := askA(c, server, "fwd.example.net."); err != nil || got != "192.0.2.2" {
		t.Errorf("after reload: fwd %s %v, want the new upstream's 192.0.2.2", got, err)
	}
	waitAsked(asked.Load() + 100)

	// A broken zone file: the reload fails, nothing changes.
	if err := os.WriteFile(zoneFile, []byte(reloadZone("192.0.2.12")+"bad IN A not-an-address\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Upstreams = []string{oldUp.addr}
	err = r.Reload(cfg)
	if err == nil || !strings.Contains(err.Error(), "example.test.zone") || !strings.Contains(err.Error(), "nothing changed") {
		t.Errorf("reload of a broken zone file: %v, want an error naming the file", err)
	}
	waitAsked(asked.Load() + 100)
	stop.Store(true)
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Errorf("a query failed or got a wrong answer: %v", err)
	}
	if asked.Load() < 300 {
		t.Errorf("only %d queries asked", asked.Load())
	}
	if got, err := askA(c, server, "www.example.test."); err != nil || got != "192.0.2.11" {
		t.Errorf("after the failed reload: www %s %v, want 192.0.2.11 still", got, err)
	}
	if got, err := askA(c, server, "fwd.example.net."); err != nil || got != "192.0.2.2" {
		t.Errorf("after the failed reload: fwd %s %v, want 192.0.2.2 still", got, err)
	}

	// The old upstream hears nothing more: no query, no health probe.
	before := oldUp.n.Load()
	time.Sleep(10 * probe)
	if got, err := askA(c, server, "fwd.example.net."); err != nil || got != "192.0.2.2" {
		t.Errorf("fwd %s %v", got, err)
	}
	if n := oldUp.n.Load(); n != before {
		t.Errorf("the old upstream got %d messages after the swap: its health checks were not stopped", n-before)
	}
	if newUp.n.Load() == 0 {
		t.Error("the new upstream got nothing")
	}

	// The collector registered at Open reports the new upstream only.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, mf := range mfs {
		if mf.GetName() != "shardns_upstream_healthy" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			series = append(series, strings.Join(ls, ","))
		}
	}
	if want := "group=.,upstream=udp://" + newUp.addr; len(series) != 1 || series[0] != want {
		t.Errorf("shardns_upstream_healthy series %v, want [%s]", series, want)
	}
}

// TestReloadErrorsChangeNothing checks each way a reload can fail: the
// error says why, and the resolver answers as before.
func TestReloadErrorsChangeNothing(t *testing.T) {
	up := startFixed(t, "192.0.2.1")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(reloadZone("192.0.2.10")), 0o644); err != nil {
		t.Fatal(err)
	}
	good := resolve.Config{Zones: dir, Upstreams: []string{up.addr}, HealthInterval: -1}
	r, err := resolve.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for name, tc := range map[string]struct {
		cfg  resolve.Config
		want string
	}{
		"missing zone folder": {resolve.Config{Zones: filepath.Join(dir, "none"), Upstreams: []string{up.addr}}, "none"},
		"bad upstream":        {resolve.Config{Zones: dir, Upstreams: []string{"nowhere"}}, `bad upstream "nowhere"`},
		"default twice": {resolve.Config{Zones: dir, Upstreams: []string{up.addr},
			Forward: []forward.Route{{Zone: ".", Upstreams: []string{up.addr}}}}, "default upstreams are given twice"},
		"nothing": {resolve.Config{}, "neither zones nor upstreams"},
		"trusted stranger": {resolve.Config{Upstreams: []string{up.addr}, Trusted: []string{"127.0.0.9:53"}},
			"not one of the upstreams"},
	} {
		err := r.Reload(tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "resolve: reload: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
		for qname, want := range map[string]string{"www.example.test.": "192.0.2.10", "x.example.net.": "192.0.2.1"} {
			m, _, err := r.Exchange(ctx(t), question(qname, dns.TypeA))
			if err != nil || len(m.Answer) != 1 || rdata(m.Answer)[0] != want {
				t.Errorf("%s: then %s: %v %v, want %s", name, qname, m, err, want)
			}
		}
	}
	r.Close()
	if err := r.Reload(good); !errors.Is(err, resolve.ErrClosed) {
		t.Errorf("reload after Close: %v, want ErrClosed", err)
	}
}

// TestForwardGroups routes through Open's groups: the longest zone wins,
// "." takes the rest, a local zone answers first, and without a default
// group a name outside every group is REFUSED.
func TestForwardGroups(t *testing.T) {
	corp, lab, public := startFixed(t, "10.1.0.1"), startFixed(t, "10.2.0.1"), startFixed(t, "192.0.2.80")
	dir := t.TempDir()
	// A local zone inside corp's group answers before it.
	if err := os.WriteFile(filepath.Join(dir, "local.corp.example.zone"), []byte(strings.ReplaceAll(reloadZone("10.9.0.1"), "example.test.", "local.corp.example.")), 0o644); err != nil {
		t.Fatal(err)
	}
	routes, err := forward.ParseRoutes("corp.example=" + corp.addr + ";lab.corp.example=" + lab.addr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := resolve.Open(resolve.Config{Zones: dir, Upstreams: []string{public.addr}, Forward: routes, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for name, want := range map[string]string{
		"www.corp.example.":       "10.1.0.1",
		"www.lab.corp.example.":   "10.2.0.1",
		"www.local.corp.example.": "10.9.0.1",
		"www.example.org.":        "192.0.2.80",
	} {
		m, _, err := r.Exchange(ctx(t), question(name, dns.TypeA))
		if err != nil || len(m.Answer) != 1 || rdata(m.Answer)[0] != want {
			t.Errorf("%s: %v %v, want %s", name, m, err, want)
		}
	}

	// Without a default group.
	if err := r.Reload(resolve.Config{Forward: routes, HealthInterval: -1}); err != nil {
		t.Fatal(err)
	}
	m, src, err := r.Exchange(ctx(t), question("www.example.org.", dns.TypeA))
	if err != nil || m.Rcode != dns.RcodeRefused || src != "none" {
		t.Errorf("outside every group: %v %q %v, want REFUSED", m, src, err)
	}
	if m, _, err := r.Exchange(ctx(t), question("www.lab.corp.example.", dns.TypeA)); err != nil || rdata(m.Answer)[0] != "10.2.0.1" {
		t.Errorf("lab after reload: %v %v", m, err)
	}
}

// TestAAOnlyOnLocalAnswers checks the AA bit: set on an answer from a
// local zone (also when a CNAME there is completed from upstream, since
// AA is about the question's name), cleared on a forwarded one even when
// the upstream, an authoritative server, set it.
func TestAAOnlyOnLocalAnswers(t *testing.T) {
	up := startUpstream(t) // sets AA on its answers
	r, err := resolve.New(loadZones(t), newForwarder(t, up.addr))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"www.example.test.": true,
		"nx.example.test.":  true,
		"out.example.test.": true, // CNAME to www.example.net, completed upstream
		"www.example.net.":  false,
		"nx.example.net.":   false,
	} {
		m, _, err := r.Exchange(ctx(t), question(name, dns.TypeA))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Authoritative != want {
			t.Errorf("%s: AA %v, want %v", name, m.Authoritative, want)
		}
	}
	// Through the wire form as well.
	q := question("www.example.test.", dns.TypeA)
	wire, _ := q.Pack()
	ans, err := r.Resolve(ctx(t), wire)
	if err != nil {
		t.Fatal(err)
	}
	if ans[2]&0x04 == 0 {
		t.Error("packed local answer lacks AA")
	}
}
