package fakenet

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/miekg/dns"
)

// Host octets of the fake Internet's servers inside the /24 a Start picks.
const (
	hostRoot      = 1  // a.root-servers.fake.: the root
	hostFake      = 2  // ns.nic.fake.: the fake. TLD
	hostWorld     = 3  // ns.nic.world.: the world. TLD
	hostShared    = 10 // secure.fake., ed.fake., wild.fake., cname.fake.
	hostInsecure  = 11 // insecure.fake.
	hostBroken    = 12 // bogus.fake., expired.fake., nokey.fake., nosig.fake.
	hostNSEC3     = 13 // nsec3.fake.
	hostGlueless  = 14 // glueless.fake., named only as ns1.hosting.world.
	hostHosting   = 15 // hosting.world.
	hostLame      = 16 // named for lame.fake. and refused.fake., serves neither
	hostLameGood  = 17 // lame.fake.'s and timeout.fake.'s working server
	hostTCPOnly   = 18 // tcp.fake. over TCP only; UDP answers are truncated
	hostBlackhole = 19 // named for timeout.fake., never answers
	hostNoEDNS    = 20 // edns.fake., FORMERR to queries with EDNS
	// firstSpare is the first host octet handed to resolvers under test
	// (Spare) and to Unbound; every octet below it is a server's.
	firstSpare = 100
)

// zoneSpec is one zone of the fake Internet.
type zoneSpec struct {
	origin string
	host   byte  // the server serving it
	alg    uint8 // 0: unsigned
	// ds lists the digest types of the DS records the parent holds; none
	// makes the delegation insecure (or, for a signed zone, an island).
	ds      []uint8
	nsec3   bool
	expired bool // signatures expired a week ago
	// dsUnpublished puts in the parent the DS of a key the zone neither
	// publishes nor signs with.
	dsUnpublished bool
	// tamper changes the signed text, leaving its signatures stale or
	// missing.
	tamper func(signed string) (string, error)
	// records is the zone's data without SOA, DNSKEY or signatures, with
	// %[1]s standing for the /24's first three octets ("127.a.b").
	records string
}

// zoneSpecs is the fake Internet. Each leaf zone's SOA and NS are its own
// (ns.<zone>), except where the records say otherwise.
var zoneSpecs = []zoneSpec{
	{origin: ".", host: hostRoot, alg: dns.ECDSAP256SHA256, records: `
@ 86400 NS a.root-servers.fake.
a.root-servers.fake. 86400 A %[1]s.1
fake. 86400 NS ns.nic.fake.
ns.nic.fake. 86400 A %[1]s.2
world. 86400 NS ns.nic.world.
ns.nic.world. 86400 A %[1]s.3
`},
	{origin: "fake.", host: hostFake, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256}, records: `
@ NS ns.nic
ns.nic A %[1]s.2
a.root-servers A %[1]s.1
secure NS ns.secure
ns.secure A %[1]s.10
ed NS ns.ed
ns.ed A %[1]s.10
wild NS ns.wild
ns.wild A %[1]s.10
cname NS ns.cname
ns.cname A %[1]s.10
insecure NS ns.insecure
ns.insecure A %[1]s.11
bogus NS ns.bogus
ns.bogus A %[1]s.12
expired NS ns.expired
ns.expired A %[1]s.12
nokey NS ns.nokey
ns.nokey A %[1]s.12
nosig NS ns.nosig
ns.nosig A %[1]s.12
nsec3 NS ns.nsec3
ns.nsec3 A %[1]s.13
glueless NS ns1.hosting.world.
lame NS ns1.lame
lame NS ns2.lame
ns1.lame A %[1]s.16
ns2.lame A %[1]s.17
refused NS ns.refused
ns.refused A %[1]s.16
tcp NS ns.tcp
ns.tcp A %[1]s.18
timeout NS ns1.timeout
timeout NS ns2.timeout
ns1.timeout A %[1]s.19
ns2.timeout A %[1]s.17
edns NS ns.edns
ns.edns A %[1]s.20
`},
	{origin: "world.", host: hostWorld, alg: dns.RSASHA256, ds: []uint8{dns.SHA256}, nsec3: true, records: `
@ NS ns.nic
ns.nic A %[1]s.3
www A 192.0.2.80
hosting NS ns.hosting
ns.hosting A %[1]s.15
`},
	{origin: "hosting.world.", host: hostHosting, records: `
@ NS ns
ns A %[1]s.15
ns1 A %[1]s.14
www A 192.0.2.150
`},
	{origin: "secure.fake.", host: hostShared, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256}, records: `
@ NS ns
ns A %[1]s.10
www A 192.0.2.1
www A 192.0.2.2
mail MX 10 www
txt TXT "a secure zone"
`},
	{origin: "ed.fake.", host: hostShared, alg: dns.ED25519, ds: []uint8{dns.SHA256, dns.SHA384}, records: `
@ NS ns
ns A %[1]s.10
www A 192.0.2.15
`},
	{origin: "wild.fake.", host: hostShared, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256}, records: `
@ NS ns
ns A %[1]s.10
* A 192.0.2.30
exact A 192.0.2.31
`},
	{origin: "cname.fake.", host: hostShared, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256}, records: `
@ NS ns
ns A %[1]s.10
www CNAME www.secure.fake.
insecure CNAME www.insecure.fake.
bogus CNAME www.bogus.fake.
loop1 CNAME loop2
loop2 CNAME loop1
old DNAME secure.fake.
`},
	{origin: "insecure.fake.", host: hostInsecure, records: `
@ NS ns
ns A %[1]s.11
www A 192.0.2.11
`},
	{origin: "bogus.fake.", host: hostBroken, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256},
		tamper: replaceOnce("\tA\t192.0.2.12\n", "\tA\t192.0.2.99\n"), records: `
@ NS ns
ns A %[1]s.12
www A 192.0.2.12
ok A 192.0.2.120
`},
	{origin: "expired.fake.", host: hostBroken, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256}, expired: true, records: `
@ NS ns
ns A %[1]s.12
www A 192.0.2.13
`},
	{origin: "nokey.fake.", host: hostBroken, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256}, dsUnpublished: true, records: `
@ NS ns
ns A %[1]s.12
www A 192.0.2.121
`},
	{origin: "nosig.fake.", host: hostBroken, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256},
		tamper: dropLines(regexp.MustCompile(`^www\.nosig\.fake\.\s+\d+\s+IN\s+RRSIG\s+A\s`)), records: `
@ NS ns
ns A %[1]s.12
www A 192.0.2.122
`},
	{origin: "nsec3.fake.", host: hostNSEC3, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256}, nsec3: true, records: `
@ NS ns
ns A %[1]s.13
www A 192.0.2.14
*.wild A 192.0.2.140
`},
	{origin: "glueless.fake.", host: hostGlueless, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256}, records: `
@ NS ns1.hosting.world.
www A 192.0.2.16
`},
	{origin: "lame.fake.", host: hostLameGood, records: `
@ NS ns1
@ NS ns2
ns1 A %[1]s.16
ns2 A %[1]s.17
www A 192.0.2.17
`},
	{origin: "timeout.fake.", host: hostLameGood, records: `
@ NS ns1
@ NS ns2
ns1 A %[1]s.19
ns2 A %[1]s.17
www A 192.0.2.19
`},
	{origin: "edns.fake.", host: hostNoEDNS, records: `
@ NS ns
ns A %[1]s.20
www A 192.0.2.20
`},
	// elsewhere. is what the lame server serves: no one delegates to it,
	// and it makes the server answer REFUSED for lame.fake. and
	// refused.fake.
	{origin: "elsewhere.", host: hostLame, records: `
@ NS ns
ns A %[1]s.16
`},
	{origin: "tcp.fake.", host: hostTCPOnly, alg: dns.ECDSAP256SHA256, ds: []uint8{dns.SHA256}, records: `
@ NS ns
ns A %[1]s.18
www A 192.0.2.18
`},
}

// parentOf is the origin of the zone holding origin's delegation.
func parentOf(origin string) string {
	if origin == "." {
		return ""
	}
	i := strings.IndexByte(origin, '.')
	if i == len(origin)-1 {
		return "."
	}
	return origin[i+1:]
}

// zoneText is z's unsigned zone file for the /24 prefix ("127.a.b"), with
// the DS records of its signed children (ds: origin → DS records).
func zoneText(z zoneSpec, prefix string, ds map[string][]*dns.DS) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 300\n", z.origin)
	soaNS := "ns." + z.origin
	switch z.origin {
	case ".":
		soaNS = "a.root-servers.fake."
	case "fake.", "world.":
		soaNS = "ns.nic." + z.origin
	case "glueless.fake.":
		soaNS = "ns1.hosting.world."
	case "lame.fake.":
		soaNS = "ns2.lame.fake."
	case "timeout.fake.":
		soaNS = "ns2.timeout.fake."
	}
	fmt.Fprintf(&b, "@ 86400 SOA %s hostmaster.%s 1 1800 900 604800 300\n", soaNS, strings.TrimPrefix(z.origin, "."))
	b.WriteString(strings.ReplaceAll(z.records, "%[1]s", prefix))
	for _, child := range zoneSpecs {
		if parentOf(child.origin) != z.origin {
			continue
		}
		for _, rr := range ds[child.origin] {
			b.WriteString(rr.String())
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// replaceOnce is a tamper that replaces the one occurrence of old.
func replaceOnce(old, replacement string) func(string) (string, error) {
	return func(text string) (string, error) {
		if strings.Count(text, old) != 1 {
			return "", fmt.Errorf("tamper: %q is not in the signed zone exactly once", old)
		}
		return strings.Replace(text, old, replacement, 1), nil
	}
}

// dropLines is a tamper that removes the lines matching re, at least one.
func dropLines(re *regexp.Regexp) func(string) (string, error) {
	return func(text string) (string, error) {
		lines := strings.SplitAfter(text, "\n")
		kept := lines[:0]
		for _, l := range lines {
			if !re.MatchString(l) {
				kept = append(kept, l)
			}
		}
		if len(kept) == len(lines) {
			return "", fmt.Errorf("tamper: no line matches %s", re)
		}
		return strings.Join(kept, ""), nil
	}
}
