package server_test

import (
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/dnsd/server"
)

// clientFrom returns a Go client for network whose socket is bound to ip.
func clientFrom(network string, ip net.IP) *dns.Client {
	var local net.Addr = &net.UDPAddr{IP: ip}
	if network == "tcp" {
		local = &net.TCPAddr{IP: ip}
	}
	return &dns.Client{Net: network, Timeout: clientTimeout, Dialer: &net.Dialer{LocalAddr: local, Timeout: clientTimeout}}
}

// A client outside the ACL is refused with EDE 18 over UDP, and over TCP
// its connection is closed at accept, unanswered (nothing is looked up
// either way); a client inside it is answered, over UDP and TCP alike.
func TestACL(t *testing.T) {
	a, err := acl.Parse("127.0.0.2/32")
	if err != nil {
		t.Fatal(err)
	}
	s := newEdgeSetup(t, options{}, server.Config{ACL: a})
	for _, network := range networks {
		t.Run(network+"/outside", func(t *testing.T) {
			q := ednsQuery("denied.example.com.", dns.TypeA, 0x8001, 1232, true)
			if network == "tcp" {
				c := &dns.Client{Net: network, Timeout: clientTimeout}
				if r, _, err := c.Exchange(q, s.addr(network)); err == nil {
					t.Fatalf("TCP from outside the ACL answered: rcode %s", dns.RcodeToString[r.Rcode])
				} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("TCP from outside the ACL: %v, want the connection closed at once", err)
				}
				return
			}
			r := exchange(t, network, s.addr(network), q)
			if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
				t.Fatalf("rcode %s with %d answers, want REFUSED and none", dns.RcodeToString[r.Rcode], len(r.Answer))
			}
			if len(r.Question) != 1 || r.Question[0].Name != "denied.example.com." {
				t.Errorf("question %v", r.Question)
			}
			checkOPT(t, r, pack(t, r), int(dns.ExtendedErrorCodeProhibited))

			r = exchange(t, network, s.addr(network), query("denied.example.com.", dns.TypeA, 0x8002))
			if r.Rcode != dns.RcodeRefused || r.IsEdns0() != nil {
				t.Errorf("no EDNS: rcode %s OPT %v, want REFUSED without OPT", dns.RcodeToString[r.Rcode], r.IsEdns0())
			}
			// Refusal comes first: even a query dnsd would reject otherwise.
			r = exchange(t, network, s.addr(network), withEDNS(query(zone, dns.TypeAXFR, 0x8003)))
			if e := ede(r); r.Rcode != dns.RcodeRefused || e == nil || e.InfoCode != dns.ExtendedErrorCodeProhibited {
				t.Errorf("AXFR from outside: rcode %s EDE %v, want REFUSED with EDE 18", dns.RcodeToString[r.Rcode], e)
			}
		})
		t.Run(network+"/inside", func(t *testing.T) {
			c := clientFrom(network, net.IPv4(127, 0, 0, 2))
			q := ednsQuery("allowed.example.com.", dns.TypeA, 0x8004, 1232, false)
			r, _, err := c.Exchange(q, s.addr(network))
			if err != nil {
				t.Fatalf("from 127.0.0.2: %v", err)
			}
			if r.Id != q.Id || r.Rcode != dns.RcodeSuccess || firstA(r) == "" || ede(r) != nil {
				t.Errorf("from 127.0.0.2: ID %#x rcode %s answer %v EDE %v", r.Id, dns.RcodeToString[r.Rcode], r.Answer, ede(r))
			}
		})
	}
	if n := s.auth.Count("denied.example.com.", dns.TypeA); n != 0 {
		t.Errorf("refused queries reached the upstream %d times", n)
	}
	if n := s.auth.Count("allowed.example.com.", dns.TypeA); n < 1 {
		t.Error("allowed queries never reached the upstream")
	}
}
