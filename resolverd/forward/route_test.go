package forward

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/testutil/nsdtest"
)

func TestParseRoutes(t *testing.T) {
	got, err := ParseRoutes(" Corp.Example=10.0.0.1:53, 10.0.0.2:53 ;lab.example.=tls://127.0.0.1:853#lab.example; .=tcp://[::1]:5300")
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{Zone: "corp.example.", Upstreams: []string{"10.0.0.1:53", "10.0.0.2:53"}},
		{Zone: "lab.example.", Upstreams: []string{"tls://127.0.0.1:853#lab.example"}},
		{Zone: ".", Upstreams: []string{"tcp://[::1]:5300"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if !HasDefault(got) || HasDefault(got[:2]) {
		t.Error("HasDefault wrong")
	}
	for _, empty := range []string{"", "  "} {
		if rs, err := ParseRoutes(empty); err != nil || rs != nil {
			t.Errorf("%q: %v %v, want no routes", empty, rs, err)
		}
	}
}

// TestParseRoutesErrors checks that each kind of mistake is refused with
// an error that names the entry and what is wrong in it.
func TestParseRoutesErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"=10.0.0.1":                              `entry 1 "=10.0.0.1": empty zone`,
		"a.example=10.0.0.1;  =10.0.0.2":         `entry 2 "  =10.0.0.2": empty zone`,
		"a.example=10.0.0.1;;b.example=10.0.0.2": "entry 2 is empty",
		"a.example=10.0.0.1;":                    "entry 2 is empty",
		"a.example 10.0.0.1":                     `entry 1 "a.example 10.0.0.1": no '='`,
		"a..example=10.0.0.1":                    `entry 1: zone "a..example": empty label`,
		"*.example=10.0.0.1":                     `zone "*.example": not a plain domain name`,
		`a\.b=10.0.0.1`:                          "not a plain domain name",
		strings.Repeat("a", 64) + ".x=10.0.0.1":  "longer than 63 octets",
		"a.example=":                             "entry 1: zone a.example. has no upstreams",
		"a.example= , ":                          "entry 1: zone a.example. has no upstreams",
		"a.example=10.0.0.1,,10.0.0.2":           "entry 1: zone a.example.: upstream 2 is empty",
		"a.example=10.0.0.1;A.Example.=10.0.0.2": "entry 2: zone a.example. is already given in entry 1",
		".=10.0.0.1;.=10.0.0.2":                  "entry 2: zone . is already given in entry 1",
		"a.example=10.0.0.1,host.example:53":     `entry 1: zone a.example.: upstream 2: bad upstream "host.example:53": host "host.example" is not an IP address`,
		"a.example=quic://10.0.0.1":              `upstream 1: bad upstream "quic://10.0.0.1": unknown scheme`,
		"a.example=10.0.0.1:53,udp://10.0.0.1":   `upstream "udp://10.0.0.1" (udp://10.0.0.1:53) is listed twice`,
	} {
		_, err := ParseRoutes(spec)
		if err == nil {
			t.Errorf("%q: accepted", spec)
			continue
		}
		if !strings.HasPrefix(err.Error(), "forward: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %q, want it to say %q", spec, err, want)
		}
	}
}

// FuzzParseRoutes checks that any spec parses or is refused with an
// error, never a crash, and that what parses is well formed: distinct
// canonical zones, each with upstreams that build a router.
func FuzzParseRoutes(f *testing.F) {
	for _, s := range []string{
		"corp.example=10.0.0.1:53,10.0.0.2:53;lab.example=tls://127.0.0.1:853#lab.example",
		".=127.0.0.1", "a=1.2.3.4;a.=1.2.3.4", "=", ";", "a=,", "x.=[::1]:53", "a=tcp://1.1.1.1#n",
		`\065.b=1.1.1.1`, "a.b=udp://1.1.1.1:0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		routes, err := ParseRoutes(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "forward: ") {
				t.Fatalf("error without the component prefix: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, r := range routes {
			if r.Zone != dns.CanonicalName(r.Zone) || seen[r.Zone] || len(r.Upstreams) == 0 {
				t.Fatalf("bad route %+v in %+v", r, routes)
			}
			seen[r.Zone] = true
		}
		if len(routes) == 0 {
			return
		}
		rt, err := NewRouter(RouterConfig{Routes: routes, HealthInterval: -1})
		if err != nil {
			t.Fatalf("parsed routes %+v do not build: %v", routes, err)
		}
		rt.Close()
	})
}

// TestRouteLongestSuffix checks which group each name goes to: the
// longest zone it lies in, at a label boundary, in any case; else the
// default; else none.
func TestRouteLongestSuffix(t *testing.T) {
	routes, err := ParseRoutes("corp.example=127.0.0.1:1;lab.corp.example=127.0.0.2:1;.=127.0.0.3:1")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRouter(RouterConfig{Routes: routes, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for name, want := range map[string]string{
		"corp.example.":             "corp.example.",
		"www.CORP.example.":         "corp.example.",
		"lab.corp.example.":         "lab.corp.example.",
		"a.b.Lab.Corp.Example.":     "lab.corp.example.",
		"xlab.corp.example.":        "corp.example.",
		"notcorp.example.":          ".",
		"corp.example.org.":         ".",
		"a\\.lab.corp.example.":     "corp.example.", // "a.lab" is one label
		"lab\\.corp.example.":       ".",
		".":                         ".",
		"corp.example":              "corp.example.",
		"www.lab.corp.example.com.": ".",
	} {
		if got := rt.Route(name).Group(); got != want {
			t.Errorf("%s: group %s, want %s", name, got, want)
		}
	}

	noDefault, err := NewRouter(RouterConfig{Routes: routes[:1], HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer noDefault.Close()
	if f := noDefault.Route("www.example.org."); f != nil {
		t.Errorf("a name outside every group went to %s", f.Group())
	}
	if _, _, err := noDefault.Exchange(ctxFor(t, time.Second), query("www.example.org.", dns.TypeA)); !errors.Is(err, ErrNoRoute) {
		t.Errorf("Exchange outside every group: %v, want ErrNoRoute", err)
	}
}

// TestRouterTrustedAcrossGroups checks that a trusted upstream is trusted
// in every group that lists it, and that one no group lists is refused.
func TestRouterTrustedAcrossGroups(t *testing.T) {
	routes := []Route{
		{Zone: "a.example.", Upstreams: []string{"127.0.0.1:5301", "127.0.0.2:5301"}},
		{Zone: ".", Upstreams: []string{"127.0.0.2:5301", "127.0.0.3:5301"}},
	}
	rt, err := NewRouter(RouterConfig{Routes: routes, Trusted: []string{"udp://127.0.0.2:5301", "127.0.0.3:5301"}, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	got := map[string]bool{}
	for _, f := range rt.Forwarders() {
		for _, u := range f.Upstreams() {
			got[f.Group()+" "+u.Address] = u.Trusted
		}
	}
	want := map[string]bool{
		"a.example. udp://127.0.0.1:5301": false,
		"a.example. udp://127.0.0.2:5301": true,
		". udp://127.0.0.2:5301":          true,
		". udp://127.0.0.3:5301":          true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trusted %v, want %v", got, want)
	}
	_, err = NewRouter(RouterConfig{Routes: routes, Trusted: []string{"127.0.0.9:5301"}, HealthInterval: -1})
	if err == nil || !strings.Contains(err.Error(), "not one of the upstreams") {
		t.Errorf("a trusted upstream of no group: %v", err)
	}
	_, err = NewRouter(RouterConfig{Routes: []Route{{Zone: "a.example.", Upstreams: []string{"nowhere"}}}})
	if err == nil || !strings.Contains(err.Error(), "(zone a.example.)") {
		t.Errorf("a bad upstream: %v, want the zone named", err)
	}
}

// TestRouterTwoNSDs forwards to two real servers, NSD, each serving other
// zones: corp.example (and its sub-zone lab.corp.example, delegated to a
// group of its own) on one, example.org on the other, the default. Each
// name is answered by the server of its group, and the metrics carry the
// group of each upstream.
func TestRouterTwoNSDs(t *testing.T) {
	corp := nsdtest.Start(t, map[string]string{
		"corp.example":     "$ORIGIN corp.example.\n$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 127.0.0.1\nwww A 10.1.0.1\n",
		"lab.corp.example": "$ORIGIN lab.corp.example.\n$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 127.0.0.1\nwww A 10.2.0.1\n",
	})
	public := nsdtest.Start(t, map[string]string{
		"example.org": "$ORIGIN example.org.\n$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 127.0.0.1\nwww A 192.0.2.80\n",
		// The same names as on corp's server, with other data: an answer
		// from the wrong group shows.
		"corp.example": "$ORIGIN corp.example.\n$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 127.0.0.1\nwww A 203.0.113.1\n",
	})
	// The sub-zone's group is corp's server over TCP: a group of its own,
	// to the same server by another transport.
	routes, err := ParseRoutes("corp.example=" + corp.Addr + ";lab.corp.example=tcp://" + corp.Addr + ";.=" + public.Addr)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRouter(RouterConfig{Routes: routes, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for name, want := range map[string]struct{ addr, from string }{
		"www.corp.example.":     {"10.1.0.1", "udp://" + corp.Addr},
		"www.lab.corp.example.": {"10.2.0.1", "tcp://" + corp.Addr},
		"www.example.org.":      {"192.0.2.80", "udp://" + public.Addr},
	} {
		resp, from, err := rt.Exchange(ctxFor(t, 5*time.Second), query(name, dns.TypeA))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := firstA(resp); got != want.addr || from != want.from {
			t.Errorf("%s: %s from %s, want %s from %s", name, got, from, want.addr, want.from)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(rt.Forwarders))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]string{}
	for _, mf := range mfs {
		if mf.GetName() != "shardns_upstream_healthy" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			groups[l["upstream"]] = l["group"]
		}
	}
	wantGroups := map[string]string{
		"udp://" + corp.Addr:   "corp.example.",
		"tcp://" + corp.Addr:   "lab.corp.example.",
		"udp://" + public.Addr: ".",
	}
	if !reflect.DeepEqual(groups, wantGroups) {
		t.Errorf("upstream → group %v, want %v", groups, wantGroups)
	}
}
