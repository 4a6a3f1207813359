package cachelab

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// kind is the shape of a cached answer.
type kind uint8

const (
	kindA        kind = iota // A records
	kindAAAA                 // AAAA records
	kindCNAME                // a CNAME and the target's A records
	kindMX                   // MX records
	kindTXT                  // TXT records: SPF, site verification, DKIM
	kindNXDOMAIN             // NXDOMAIN with the zone's SOA
	kindNODATA               // NOERROR, no answer, the zone's SOA
)

func (k kind) String() string {
	switch k {
	case kindA:
		return "A"
	case kindAAAA:
		return "AAAA"
	case kindCNAME:
		return "CNAME+A"
	case kindMX:
		return "MX"
	case kindTXT:
		return "TXT"
	case kindNXDOMAIN:
		return "NXDOMAIN"
	case kindNODATA:
		return "NODATA"
	}
	return "kind" + fmt.Sprint(uint8(k))
}

// answerSpec describes one answer to build.
type answerSpec struct {
	Name    string // question name, FQDN
	Qtype   uint16
	Kind    kind
	Records int    // answer records (TXT: the SPF record and site-verification tokens)
	TTL     uint32 // TTL of every record (negative answers: SOA TTL and MINIMUM)
	BigTXT  bool   // add a 2048-bit DKIM-like key to a TXT answer
}

// item is one key of the key space with the answer cached under it.
type item struct {
	Key     string
	Kind    kind
	TTL     uint32   // seconds fresh, as the TTL policy computed it
	Msg     []byte   // the stored message (dnsmsg.Prepare)
	Offsets []uint16 // its TTL offsets
}

// staleWindow is dnsd's default -stale: a stored entry's Redis expiry is
// its TTL plus this, as on the query path.
const staleWindow = 24 * time.Hour

// ttlPolicy is dnsd's default TTL policy (-min-ttl 0, -max-ttl 24h).
var ttlPolicy = dnsmsg.Policy{MaxTTL: 24 * time.Hour}

// buildMsg returns the answer an upstream would give for spec.
func buildMsg(spec answerSpec, rng *rand.Rand) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(spec.Name, spec.Qtype)
	m.Response = true
	m.RecursionDesired = true
	m.RecursionAvailable = true
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: spec.TTL}
	}
	n := max(spec.Records, 1)
	switch spec.Kind {
	case kindA:
		for range n {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(spec.Name, dns.TypeA), A: randV4(rng).AsSlice()})
		}
	case kindAAAA:
		for range n {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(spec.Name, dns.TypeAAAA), AAAA: randV6(rng).AsSlice()})
		}
	case kindCNAME:
		target := fmt.Sprintf("edge%d.cdn%d.example.net.", rng.IntN(4000), rng.IntN(40))
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(spec.Name, dns.TypeCNAME), Target: target})
		for range n {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(target, dns.TypeA), A: randV4(rng).AsSlice()})
		}
	case kindMX:
		zone := parent(spec.Name)
		for i := range n {
			m.Answer = append(m.Answer, &dns.MX{Hdr: hdr(spec.Name, dns.TypeMX), Preference: uint16(10 * (i + 1)),
				Mx: fmt.Sprintf("mx%d.%s", i+1, zone)})
		}
	case kindTXT:
		m.Answer = append(m.Answer,
			&dns.TXT{Hdr: hdr(spec.Name, dns.TypeTXT), Txt: []string{"v=spf1 ip4:192.0.2.0/24 include:_spf.mail.example.net include:spf.protection.example.com ~all"}})
		for i := 1; i < n; i++ {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(spec.Name, dns.TypeTXT),
				Txt: []string{"site-verification=" + randToken(rng, 43)}})
		}
		if spec.BigTXT {
			key := "v=DKIM1; k=rsa; p=" + randToken(rng, 392)
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(spec.Name, dns.TypeTXT), Txt: splitTXT(key)})
		}
	case kindNXDOMAIN, kindNODATA:
		if spec.Kind == kindNXDOMAIN {
			m.Rcode = dns.RcodeNameError
		}
		zone := parent(spec.Name)
		m.Ns = append(m.Ns, &dns.SOA{Hdr: hdr(zone, dns.TypeSOA), Ns: "ns1." + zone, Mbox: "hostmaster." + zone,
			Serial: 2026010100 + uint32(rng.IntN(100)), Refresh: 7200, Retry: 900, Expire: 1209600, Minttl: spec.TTL})
	}
	return m
}

// buildItem builds spec's answer and lays it out as the query path stores
// it: TTL from dnsmsg's policy, packed by dnsmsg.Prepare.
func buildItem(spec answerSpec, rng *rand.Rand) (item, error) {
	m := buildMsg(spec, rng)
	ttl, cacheable := ttlPolicy.CacheTTL(m)
	if !cacheable || ttl == 0 {
		return item{}, fmt.Errorf("cachelab: answer for %s %s is not cacheable", spec.Name, spec.Kind)
	}
	st, err := dnsmsg.Prepare(m, ttl, 0, true)
	if err != nil {
		return item{}, fmt.Errorf("cachelab: %w", err)
	}
	return item{
		Key:     dnsmsg.Key(spec.Name, spec.Qtype, dns.ClassINET, false, false),
		Kind:    spec.Kind,
		TTL:     ttl,
		Msg:     st.Msg,
		Offsets: st.Offsets,
	}, nil
}

// parent returns the name without its first label ("." for a TLD).
func parent(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 && i+1 < len(name) {
		return name[i+1:]
	}
	return "."
}

func randV4(rng *rand.Rand) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(rng.IntN(223) + 1), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(254) + 1)})
}

func randV6(rng *rand.Rand) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0x20, 0x01
	for i := 2; i < 16; i++ {
		b[i] = byte(rng.IntN(256))
	}
	return netip.AddrFrom16(b)
}

const tokenChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func randToken(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = tokenChars[rng.IntN(len(tokenChars))]
	}
	return string(b)
}

// splitTXT cuts s into character-strings of at most 255 bytes.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
