package forward

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/nsdtest"
)

// TestExchanger asks NSD through the Exchanger: with EDNS the query
// carries an OPT record (NSD's reply has one), without EDNS none does;
// either way the answer is shaped to the question as asked, in its case.
func TestExchanger(t *testing.T) {
	srv := nsdtest.Start(t, map[string]string{
		"ex.test": "$ORIGIN ex.test.\n$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 127.0.0.1\nwww A 192.0.2.20\n",
	})
	e := NewExchanger(ExchangerConfig{})
	addr := netip.MustParseAddrPort(srv.Addr)
	for _, edns := range []bool{true, false} {
		q := new(dns.Msg)
		q.SetQuestion("WwW.Ex.TEST.", dns.TypeA)
		q.RecursionDesired = false
		resp, err := e.Exchange(ctxFor(t, 5*time.Second), addr, q, edns, 2*time.Second)
		if err != nil {
			t.Fatalf("edns %v: %v", edns, err)
		}
		if len(resp.Answer) != 1 || resp.Answer[0].Header().Name != "WwW.Ex.TEST." || !resp.Authoritative || resp.Id != q.Id {
			t.Fatalf("edns %v: %v", edns, resp)
		}
		if q.IsEdns0() != nil {
			t.Fatal("the caller's query was changed")
		}
		// The OPT the exchange added is stripped from the reply (q had
		// none); the server saw it, which the upstream state shows.
		u := e.server(serverKey{addr, !edns})
		if u.noEDNS == edns {
			t.Errorf("edns %v: server state noEDNS %v", edns, u.noEDNS)
		}
		if edns && len(u.cookie.Load().Cookie) != 16 {
			t.Errorf("cookie %q", u.cookie.Load().Cookie)
		}
	}
	if _, err := e.Exchange(ctxFor(t, time.Second), netip.AddrPortFrom(netip.IPv4Unspecified(), 53), query("x.test.", dns.TypeA), true, time.Second); err == nil {
		t.Error("an unspecified server address was taken")
	}
}

// TestExchangerNoEDNSOnTheWire: without EDNS the packed query has no OPT.
func TestExchangerNoEDNSOnTheWire(t *testing.T) {
	f := NewExchanger(ExchangerConfig{}).f
	for _, noEDNS := range []bool{false, true} {
		o, _ := f.prepare(query("a.test.", dns.TypeA), noEDNS)
		if got := o.msg.IsEdns0() != nil; got == noEDNS {
			t.Errorf("noEDNS %v: OPT present %v", noEDNS, got)
		}
		f.release(o)
	}
}
