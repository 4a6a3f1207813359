package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/fakenet"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// answerOf is what two resolvers' answers to one question compare by:
// rcode, answer RRsets (RRSIGs aside), AD.
type answerOf struct {
	Rcode  int
	Answer []string
	AD     bool
}

func (a answerOf) String() string {
	return fmt.Sprintf("%s AD=%v %q", dns.RcodeToString[a.Rcode], a.AD, a.Answer)
}

func summary(r *dns.Msg) answerOf {
	return answerOf{Rcode: r.Rcode, Answer: fakenet.AnswerSet(r), AD: r.AuthenticatedData}
}

// TestDNSSECDifferential asks every question of the fake Internet's table
// of the all-in-one dnsd (its in-process resolver, cache in L1), of
// resolverd behind dnsd over gRPC (cache in Redis only, -l1 0) and of
// Unbound, all three iterating from the same root hints and validating
// with the same trust anchor: the same rcode, answer RRsets and AD from
// each, the table's expectations (with the EDE of a bogus answer), and
// for bogus rows with CD=1 the unvalidated data. Each question is asked
// twice: the second answer comes from the cache (or, for a bogus one,
// from the failure cache) and must be the first again, EDE included.
func TestDNSSECDifferential(t *testing.T) {
	n := fakenet.Start(t, fakenet.Options{Unbound: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	allInOne, fleet := startValidating(t, n)

	servers := []struct{ name, addr string }{{"unbound", n.Unbound.Addr}, {"dnsd", allInOne}, {"dnsd+resolverd", fleet}}
	// Unbound gets the question the other two were waited for with, so
	// that each starts the cold pass with the same cache.
	if r, err := exchange(n.Unbound.Addr, "udp", "secure.fake.", dns.TypeSOA); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("unbound: secure.fake. SOA: %v %v", r, err)
	}
	before, err := n.Queries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sent []fakenet.Counts
	for _, s := range servers {
		for pass := range 2 {
			for _, q := range fakenet.Questions() {
				if s.name == "unbound" && pass == 1 && q.Security == fakenet.Bogus {
					// Unbound answers a bogus name from its cache with
					// EDE 6 alone, whatever the first answer said.
					q.EDE = dns.ExtendedErrorCodeDNSBogus
				}
				r, err := q.Ask(ctx, s.addr, false)
				if err != nil {
					t.Errorf("%s pass %d: %v", s.name, pass+1, err)
					continue
				}
				if err := q.Check(r); err != nil {
					t.Errorf("%s pass %d: %v", s.name, pass+1, err)
				}
				if q.Security == fakenet.Bogus {
					rcd, err := q.Ask(ctx, s.addr, true)
					if err != nil {
						t.Errorf("%s pass %d: %v", s.name, pass+1, err)
						continue
					}
					if err := q.CheckCD(rcd); err != nil {
						t.Errorf("%s pass %d: %v", s.name, pass+1, err)
					}
				}
			}
			if pass == 0 {
				after, err := n.Queries(ctx)
				if err != nil {
					t.Fatal(err)
				}
				sent = append(sent, after.Sub(before))
				before = after
			}
		}
	}
	for i, s := range servers {
		t.Logf("%s: %d queries to the authoritative servers for the cold pass of %d questions (%d with CD): %v", s.name, sent[i].Total(), len(fakenet.Questions()), bogusRows(), sent[i])
	}

	// Row by row, the three agree (beyond the table: the table leaves
	// nothing of the comparison out, but a row that fails both ways
	// shows here as a difference).
	for _, q := range fakenet.Questions() {
		var got []answerOf
		for _, s := range servers {
			r, err := q.Ask(ctx, s.addr, false)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			got = append(got, summary(r))
		}
		for i := 1; i < len(got); i++ {
			if got[i].String() != got[0].String() {
				t.Errorf("%s (%s %s): %s answers %s, unbound %s", q.Name, q.QName, dns.TypeToString[q.QType], servers[i].name, got[i], got[0])
			}
		}
	}
}

func bogusRows() int {
	c := 0
	for _, q := range fakenet.Questions() {
		if q.Security == fakenet.Bogus {
			c++
		}
	}
	return c
}

// startValidating starts, on n, the all-in-one dnsd and resolverd behind a
// dnsd with Redis alone as its cache (-l1 0), both resolving from n's root
// and validating with n's trust anchor, and returns their DNS addresses.
func startValidating(t *testing.T, n *fakenet.Net) (allInOne, fleet string) {
	t.Helper()
	resolving := []string{"-recurse", "-root-hints", n.RootHints, "-trust-anchor", n.TrustAnchor}
	allInOne = netip.AddrPortFrom(n.Spare(t), 53).String()
	d := start(t, "dnsd", nil, append([]string{"-listen", allInOne, "-http", ""}, resolving...)...)
	waitDNS(t, d, allInOne, "secure.fake.")
	rdb := redistest.Start(t)
	grpc := port(t)
	res := start(t, "resolverd", nil, append([]string{"-listen", grpc}, resolving...)...)
	waitTCP(t, res, grpc)
	fleet = netip.AddrPortFrom(n.Spare(t), 53).String()
	fd := start(t, "dnsd", nil, "-listen", fleet, "-resolver", grpc, "-redis", rdb.Addr, "-l1", "0", "-http", "")
	waitDNS(t, fd, fleet, "secure.fake.")
	return allInOne, fleet
}

// TestDNSSECFlags checks, on the all-in-one dnsd validating from the fake
// root and on resolverd behind dnsd with Redis alone as its cache, what a
// client's flags change: AD only for a client that set DO or AD (a hit
// from L1 or Redis as well as the miss that filled it), no RRSIG without
// DO, the EDE of a bogus answer given again from the failure cache, and
// -dnssec off: no validation, no AD, the bogus data served.
func TestDNSSECFlags(t *testing.T) {
	n := fakenet.Start(t, fakenet.Options{})
	on, fleet := startValidating(t, n)

	ask := func(addr, name string, do, ad bool) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.AuthenticatedData = ad
		m.SetEdns0(1232, do)
		c := &dns.Client{Timeout: 5 * time.Second}
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sigs := func(r *dns.Msg) int {
		c := 0
		for _, rr := range r.Answer {
			if rr.Header().Rrtype == dns.TypeRRSIG {
				c++
			}
		}
		return c
	}
	for i, on := range []string{on, on, fleet, fleet} { // a miss, then a hit from L1; the same through Redis
		for _, tc := range []struct {
			do, ad, wantAD bool
		}{{false, false, false}, {true, false, true}, {false, true, true}, {true, true, true}} {
			r := ask(on, "www.secure.fake.", tc.do, tc.ad)
			if r.Rcode != dns.RcodeSuccess || r.AuthenticatedData != tc.wantAD {
				t.Errorf("pass %d DO=%v AD=%v: %s AD=%v, want NOERROR AD=%v", i+1, tc.do, tc.ad, dns.RcodeToString[r.Rcode], r.AuthenticatedData, tc.wantAD)
			}
			if n := sigs(r); (n > 0) != tc.do {
				t.Errorf("pass %d DO=%v: %d RRSIGs in the answer", i+1, tc.do, n)
			}
		}
		r := ask(on, "www.insecure.fake.", true, true)
		if r.Rcode != dns.RcodeSuccess || r.AuthenticatedData {
			t.Errorf("pass %d insecure: %s AD=%v, want NOERROR AD=false", i+1, dns.RcodeToString[r.Rcode], r.AuthenticatedData)
		}
		for _, do := range []bool{false, true} {
			r = ask(on, "www.expired.fake.", do, false)
			codes := fakenet.EDECodes(r)
			if r.Rcode != dns.RcodeServerFailure || !slices.Equal(codes, []uint16{dns.ExtendedErrorCodeSignatureExpired}) {
				t.Errorf("pass %d expired DO=%v: %s EDE %v, want SERVFAIL EDE [7]", i+1, do, dns.RcodeToString[r.Rcode], codes)
			}
			if opt := r.IsEdns0(); opt != nil {
				for _, o := range opt.Option {
					if e, ok := o.(*dns.EDNS0_EDE); ok && !strings.Contains(e.ExtraText, "expired") {
						t.Errorf("pass %d expired: EDE text %q does not say why", i+1, e.ExtraText)
					}
				}
			}
		}
	}

	off := netip.AddrPortFrom(n.Spare(t), 53).String()
	d2 := start(t, "dnsd", nil, "-listen", off, "-http", "", "-dnssec", "off", "-root-hints", n.RootHints, "-recurse")
	waitDNS(t, d2, off, "secure.fake.")
	for i := range 2 {
		if r := ask(off, "www.secure.fake.", true, true); r.Rcode != dns.RcodeSuccess || r.AuthenticatedData {
			t.Errorf("-dnssec off, pass %d: secure zone %s AD=%v, want NOERROR AD=false", i+1, dns.RcodeToString[r.Rcode], r.AuthenticatedData)
		}
		if r := ask(off, "www.bogus.fake.", true, false); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Errorf("-dnssec off, pass %d: bogus zone %s %v, want its data", i+1, dns.RcodeToString[r.Rcode], r.Answer)
		}
	}
}

// TestDNSSECReloadTrustAnchor: the all-in-one dnsd re-reads its
// -trust-anchor file on SIGHUP. Started with an anchor that matches no key
// of the fake root, it answers every signed name SERVFAIL with an EDE;
// once the file holds the root's DS and dnsd got SIGHUP, the same name is
// secure (the failure step's few seconds aside, which the wait covers).
func TestDNSSECReloadTrustAnchor(t *testing.T) {
	n := fakenet.Start(t, fakenet.Options{})
	dir := t.TempDir()
	anchor := filepath.Join(dir, "root.ds")
	if err := os.WriteFile(anchor, []byte(". IN DS 4711 13 2 "+strings.Repeat("ab", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(n.Spare(t), 53).String()
	conf := filepath.Join(dir, "shardns.yaml")
	body := fmt.Sprintf("recurse: true\nroot-hints: %s\ntrust-anchor: %s\ndnsd:\n  listen: %s\n  http: \"\"\n", n.RootHints, anchor, addr)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := start(t, "dnsd", nil, "-config", conf)
	waitTCP(t, d, addr)
	q := fakenet.Questions()[2] // secure-a
	if q.Name != "secure-a" {
		t.Fatalf("row 3 is %s, want secure-a", q.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := q.Ask(ctx, addr, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeServerFailure || len(fakenet.EDECodes(r)) != 1 {
		t.Fatalf("with a wrong anchor: %s EDE %v, want SERVFAIL with an EDE", dns.RcodeToString[r.Rcode], fakenet.EDECodes(r))
	}
	ds, err := os.ReadFile(n.TrustAnchor)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(anchor, ds, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err = q.Ask(ctx, addr, false)
		if err == nil && q.Check(r) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the anchor was fixed and SIGHUP: %v %v\n%s", r, err, d.Out.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !strings.Contains(d.Out.String(), "configuration reloaded") {
		t.Errorf("no reload logged:\n%s", d.Out.String())
	}
}
