package fakenet

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ask sends one non-recursive query with DO to the server at host of n.
func ask(t *testing.T, n *Net, host byte, proto, name string, qtype uint16) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = false
	q.SetEdns0(1232, true)
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(q, hostPort(n.addr(host).String()))
	if err != nil {
		t.Fatalf("%s %s %s at %s: %v", proto, name, dns.TypeToString[qtype], n.addr(host), err)
	}
	return r
}

func rrsOf[T dns.RR](rrs []dns.RR) []T {
	var out []T
	for _, rr := range rrs {
		if x, ok := rr.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

// verified checks every RRSIG over the answer's RRset of qtype with the
// zone's DNSKEYs fetched from the same server, and the validity period.
func verified(t *testing.T, n *Net, host byte, zone string, r *dns.Msg, qtype uint16) (sigOK, inPeriod bool) {
	t.Helper()
	keys := rrsOf[*dns.DNSKEY](ask(t, n, host, "tcp", zone, dns.TypeDNSKEY).Answer)
	var set []dns.RR
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == qtype {
			set = append(set, rr)
		}
	}
	sigs := rrsOf[*dns.RRSIG](r.Answer)
	if len(set) == 0 || len(sigs) == 0 || len(keys) == 0 {
		t.Fatalf("no RRset, RRSIG or DNSKEY to verify: %v", r)
	}
	for _, sig := range sigs {
		for _, k := range keys {
			if k.KeyTag() == sig.KeyTag && sig.Verify(k, set) == nil {
				return true, sig.ValidityPeriod(time.Now())
			}
		}
	}
	return false, sigs[0].ValidityPeriod(time.Now())
}

// TestServers checks each odd server of the fake Internet directly, without
// a resolver: the scenarios are what they claim to be.
func TestServers(t *testing.T) {
	n := Start(t, Options{})

	t.Run("root-and-anchor", func(t *testing.T) {
		r := ask(t, n, hostRoot, "udp", ".", dns.TypeNS)
		if !r.Authoritative || len(rrsOf[*dns.NS](r.Answer)) != 1 || rrsOf[*dns.NS](r.Answer)[0].Ns != "a.root-servers.fake." {
			t.Fatalf("root NS: %v", r)
		}
		keys := rrsOf[*dns.DNSKEY](ask(t, n, hostRoot, "tcp", ".", dns.TypeDNSKEY).Answer)
		found := false
		for _, k := range keys {
			if ds := k.ToDS(dns.SHA256); ds != nil && k.Flags == 257 && ds.Digest == n.RootDS.Digest && ds.KeyTag == n.RootDS.KeyTag {
				found = true
			}
		}
		if !found {
			t.Fatalf("no root DNSKEY matches the trust anchor %v among %v", n.RootDS, keys)
		}
	})

	t.Run("secure-signatures-verify", func(t *testing.T) {
		r := ask(t, n, hostShared, "udp", "www.secure.fake.", dns.TypeA)
		if ok, period := verified(t, n, hostShared, "secure.fake.", r, dns.TypeA); !ok || !period {
			t.Fatalf("www.secure.fake. A: verifies %v, in period %v", ok, period)
		}
	})

	t.Run("bogus-signature-fails", func(t *testing.T) {
		r := ask(t, n, hostBroken, "udp", "www.bogus.fake.", dns.TypeA)
		if ok, _ := verified(t, n, hostBroken, "bogus.fake.", r, dns.TypeA); ok {
			t.Fatalf("www.bogus.fake. A verifies: %v", r)
		}
		r = ask(t, n, hostBroken, "udp", "ok.bogus.fake.", dns.TypeA)
		if ok, period := verified(t, n, hostBroken, "bogus.fake.", r, dns.TypeA); !ok || !period {
			t.Fatalf("ok.bogus.fake. A: verifies %v, in period %v", ok, period)
		}
	})

	t.Run("expired-signature", func(t *testing.T) {
		r := ask(t, n, hostBroken, "udp", "www.expired.fake.", dns.TypeA)
		ok, period := verified(t, n, hostBroken, "expired.fake.", r, dns.TypeA)
		if !ok || period {
			t.Fatalf("www.expired.fake. A: verifies %v (want true), in period %v (want false)", ok, period)
		}
	})

	t.Run("rrsigs-missing", func(t *testing.T) {
		r := ask(t, n, hostBroken, "udp", "www.nosig.fake.", dns.TypeA)
		if len(rrsOf[*dns.A](r.Answer)) != 1 || len(rrsOf[*dns.RRSIG](r.Answer)) != 0 {
			t.Fatalf("www.nosig.fake. A: want the record without RRSIG: %v", r)
		}
	})

	t.Run("dnskey-missing", func(t *testing.T) {
		ds := rrsOf[*dns.DS](ask(t, n, hostFake, "udp", "nokey.fake.", dns.TypeDS).Answer)
		keys := rrsOf[*dns.DNSKEY](ask(t, n, hostBroken, "tcp", "nokey.fake.", dns.TypeDNSKEY).Answer)
		if len(ds) != 1 || len(keys) != 2 {
			t.Fatalf("nokey.fake.: DS %v, DNSKEY %v", ds, keys)
		}
		for _, k := range keys {
			if k.KeyTag() == ds[0].KeyTag {
				t.Fatalf("nokey.fake. publishes the key its DS names (tag %d)", k.KeyTag())
			}
		}
	})

	t.Run("nsec3-denial", func(t *testing.T) {
		r := ask(t, n, hostNSEC3, "udp", "nope.nsec3.fake.", dns.TypeA)
		if r.Rcode != dns.RcodeNameError || len(rrsOf[*dns.NSEC3](r.Ns)) == 0 || len(rrsOf[*dns.NSEC](r.Ns)) != 0 {
			t.Fatalf("nope.nsec3.fake.: want NXDOMAIN with NSEC3 only: %v", r)
		}
	})

	t.Run("ds-in-parents", func(t *testing.T) {
		for zone, digests := range map[string][]uint8{
			"secure.fake.": {dns.SHA256}, "ed.fake.": {dns.SHA256, dns.SHA384},
			"insecure.fake.": nil, "lame.fake.": nil, "tcp.fake.": {dns.SHA256},
		} {
			r := ask(t, n, hostFake, "udp", zone, dns.TypeDS)
			var got []uint8
			for _, ds := range rrsOf[*dns.DS](r.Answer) {
				got = append(got, ds.DigestType)
			}
			slices.Sort(got)
			if !slices.Equal(got, digests) {
				t.Errorf("DS %s: digests %v, want %v", zone, got, digests)
			}
			if digests == nil && (r.Rcode != dns.RcodeSuccess || len(rrsOf[*dns.NSEC](r.Ns)) == 0) {
				t.Errorf("DS %s: want NODATA proven by NSEC: %v", zone, r)
			}
		}
		r := ask(t, n, hostWorld, "udp", "hosting.world.", dns.TypeDS)
		if len(r.Answer) != 0 || len(rrsOf[*dns.NSEC3](r.Ns)) == 0 {
			t.Errorf("DS hosting.world.: want NODATA proven by NSEC3: %v", r)
		}
	})

	t.Run("glueless-referral", func(t *testing.T) {
		r := ask(t, n, hostFake, "udp", "www.glueless.fake.", dns.TypeA)
		ns := rrsOf[*dns.NS](r.Ns)
		if r.Authoritative || len(ns) != 1 || ns[0].Ns != "ns1.hosting.world." || len(rrsOf[*dns.A](r.Extra)) != 0 {
			t.Fatalf("want a referral to ns1.hosting.world. without glue: %v", r)
		}
	})

	t.Run("lame-server-refuses", func(t *testing.T) {
		for _, name := range []string{"www.lame.fake.", "www.refused.fake."} {
			if r := ask(t, n, hostLame, "udp", name, dns.TypeA); r.Rcode != dns.RcodeRefused {
				t.Errorf("%s at the lame server: %s, want REFUSED", name, dns.RcodeToString[r.Rcode])
			}
		}
		if r := ask(t, n, hostLameGood, "udp", "www.lame.fake.", dns.TypeA); !r.Authoritative || len(r.Answer) != 1 {
			t.Errorf("www.lame.fake. at the working server: %v", r)
		}
	})

	t.Run("tcp-only", func(t *testing.T) {
		r := ask(t, n, hostTCPOnly, "udp", "www.tcp.fake.", dns.TypeA)
		if !r.Truncated || len(r.Answer) != 0 || r.IsEdns0() == nil {
			t.Fatalf("over UDP: want TC=1, no answer, EDNS0 echoed: %v", r)
		}
		r = ask(t, n, hostTCPOnly, "tcp", "www.tcp.fake.", dns.TypeA)
		if r.Truncated || !r.Authoritative || len(rrsOf[*dns.A](r.Answer)) != 1 || len(rrsOf[*dns.RRSIG](r.Answer)) == 0 {
			t.Fatalf("over TCP: want the signed answer: %v", r)
		}
	})

	t.Run("no-edns", func(t *testing.T) {
		r := ask(t, n, hostNoEDNS, "udp", "www.edns.fake.", dns.TypeA)
		if r.Rcode != dns.RcodeFormatError || r.IsEdns0() != nil {
			t.Fatalf("with EDNS: want FORMERR without OPT: %v", r)
		}
		q := new(dns.Msg)
		q.SetQuestion("www.edns.fake.", dns.TypeA)
		for _, proto := range []string{"udp", "tcp"} {
			c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
			r, _, err := c.Exchange(q, hostPort(n.addr(hostNoEDNS).String()))
			if err != nil || !r.Authoritative || len(rrsOf[*dns.A](r.Answer)) != 1 {
				t.Fatalf("%s without EDNS: want the answer: %v %v", proto, r, err)
			}
		}
	})

	t.Run("blackhole", func(t *testing.T) {
		for _, proto := range []string{"udp", "tcp"} {
			q := new(dns.Msg)
			q.SetQuestion("www.timeout.fake.", dns.TypeA)
			c := &dns.Client{Net: proto, Timeout: 300 * time.Millisecond}
			if r, _, err := c.Exchange(q, hostPort(n.addr(hostBlackhole).String())); err == nil {
				t.Fatalf("%s: the blackhole answered: %v", proto, r)
			}
		}
		counts, err := n.Queries(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := counts["ns1.timeout.fake."]; got != 2 {
			t.Fatalf("the blackhole counted %d queries, want 2", got)
		}
	})

	t.Run("spare-addresses", func(t *testing.T) {
		a, b := n.Spare(t), n.Spare(t)
		if a == b || a.As4()[3] < firstSpare || b.As4()[3] < firstSpare {
			t.Fatalf("spares %v and %v: want two distinct addresses from .%d on", a, b, firstSpare)
		}
		if err := checkBind(a.String(), 53); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStartsInParallelAndStops: two fake Internets of one process get
// distinct /24s, both answer, and every server is gone once its test ends.
func TestStartsInParallelAndStops(t *testing.T) {
	roots := make(chan string, 2)
	t.Run("group", func(t *testing.T) {
		for i := range 2 {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				n := Start(t, Options{})
				r := ask(t, n, hostShared, "udp", "www.secure.fake.", dns.TypeA)
				if len(rrsOf[*dns.A](r.Answer)) != 2 {
					t.Errorf("www.secure.fake. A: %v", r)
				}
				roots <- n.Prefix
			})
		}
	})
	a, b := <-roots, <-roots
	if a == b {
		t.Fatalf("two fake Internets on %s.0/24", a)
	}
	for _, p := range []string{a, b} {
		if err := checkBinds(p); err != nil {
			t.Errorf("a server of %s.0/24 still runs after its test: %v", p, err)
		}
	}
}

// FuzzAnswerSet: any message a resolver sends back is compared without a
// panic.
func FuzzAnswerSet(f *testing.F) {
	for _, q := range Questions()[:4] {
		m := q.Query(false)
		m.Response = true
		if b, err := m.Pack(); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		AnswerSet(m)
		EDECodes(m)
		for _, q := range Questions() {
			_ = q.Check(m)
			_ = q.CheckCD(m)
		}
	})
}

// TestQuestionsTable: every row has its own name, asks for a name of the
// fake Internet, and a bogus row says which EDE and which data with CD=1.
func TestQuestionsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, q := range Questions() {
		if q.Name == "" || seen[q.Name] {
			t.Errorf("row %q: empty or repeated name", q.Name)
		}
		seen[q.Name] = true
		if _, ok := dns.IsDomainName(q.QName); !ok || !dns.IsFqdn(q.QName) {
			t.Errorf("row %s: %q is not a fully qualified name", q.Name, q.QName)
		}
		if q.Security == Bogus && (q.EDE == 0 || len(q.CDAnswer) == 0 || q.Rcode != dns.RcodeServerFailure) {
			t.Errorf("row %s: bogus without SERVFAIL, EDE or CD answer", q.Name)
		}
		if q.Rcode != dns.RcodeSuccess && len(q.Answer) != 0 {
			t.Errorf("row %s: an answer with rcode %s", q.Name, dns.RcodeToString[q.Rcode])
		}
	}
}
