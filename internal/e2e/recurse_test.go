package e2e

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/fakenet"
)

// TestRecurseFromRootHints runs the all-in-one dnsd with -recurse and
// -root-hints naming the fake Internet's root, with validation off: dig
// gets answers through the referrals (a miss, then a hit), a CNAME chain
// across zones, NXDOMAIN with the SOA, and for a CNAME loop SERVFAIL,
// counted in shardns_recurse_limit_total. Validation is the DNSSEC tests'.
func TestRecurseFromRootHints(t *testing.T) {
	n := fakenet.Start(t, fakenet.Options{})
	rows := map[string]fakenet.Question{}
	for _, q := range fakenet.Questions() {
		rows[q.Name] = q
	}
	dnsAddr := netip.AddrPortFrom(n.Spare(t), 53).String()
	metrics := port(t)
	d := start(t, "dnsd", nil, "-listen", dnsAddr, "-metrics", metrics, "-http", "", "-recurse", "-root-hints", n.RootHints, "-dnssec", "off")
	waitDNS(t, d, dnsAddr, "secure.fake.")

	ask := func(name string) digResult {
		t.Helper()
		q := rows[name]
		got := dig(t, dnsAddr, q.QName, dns.TypeToString[q.QType])
		if want := dns.RcodeToString[q.Rcode]; got.Status != want {
			t.Errorf("%s (%s): %s, want %s\n%s", name, q.QName, got.Status, want, got.Raw)
		}
		if ans := fakenet.AnswerSet(&dns.Msg{Answer: got.Answer}); !slices.Equal(ans, q.Answer) && len(q.Answer)+len(ans) > 0 {
			t.Errorf("%s (%s): answer %v, want %v", name, q.QName, ans, q.Answer)
		}
		if got.Flags["ad"] || got.Flags["aa"] || !got.Flags["ra"] {
			t.Errorf("%s: flags %v, want ra without ad or aa", name, got.Flags)
		}
		return got
	}
	ask("secure-a") // a miss
	ask("secure-a") // a hit
	ask("cname-cross-zone")
	got := ask("secure-nxdomain")
	if len(got.Authority) == 0 || got.Authority[0].Header().Rrtype != dns.TypeSOA || got.Authority[0].Header().Name != "secure.fake." {
		t.Errorf("NXDOMAIN authority %v, want secure.fake.'s SOA", got.Authority)
	}
	ask("cname-loop")
	if n := metric(t, metrics, `shardns_recurse_limit_total{limit="cname_chain"}`); n != 1 {
		t.Errorf("cname_chain limit counted %v, want 1", n)
	}
}
