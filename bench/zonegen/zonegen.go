// Package zonegen generates the authoritative data the load runs are served
// from: a root zone holding many owner names under one suffix, with TTLs
// spread from 30 s to a day, a share of CNAMEs to other names of the zone,
// some AAAA, MX and TXT records, and a rule for names that do not exist.
//
// The zone's origin is the root, so names read from a CSV (real domains
// such as www.example.org) can be served from the same zone as the
// generated ones.
package zonegen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/miekg/dns"
)

// DefaultSuffix is the parent of every generated name.
const DefaultSuffix = "bench.example."

// NegativeTTL is the SOA MINIMUM of the zone: how long NXDOMAIN and NODATA
// answers may be cached (RFC 2308).
const NegativeTTL = 300

// Config says what to generate.
type Config struct {
	Suffix     string   // parent of the generated names; DefaultSuffix when empty
	Names      int      // generated owner names
	CNAMEShare float64  // share of names that are aliases of another name (0.10)
	AAAAShare  float64  // share of address names that also have AAAA (0.30)
	MXShare    float64  // share of names with an MX record
	TXTShare   float64  // share of names with a TXT record
	Seed       uint64   // TTLs, aliases and record mix; names depend on their index only
	Extra      []string // further names given A records (names under Suffix are ignored)
}

// Name is one owner name of the zone.
type Name struct {
	Name  string // fully qualified, lower case
	TTL   uint32 // of every record at the name
	CNAME string // alias target when the name is a CNAME, else ""
	AAAA  bool   // has an AAAA record (never with CNAME)
	MX    bool   // has an MX record (never with CNAME)
	TXT   bool   // has a TXT record (never with CNAME)
}

// Zone is a generated root zone.
type Zone struct {
	Suffix string
	Names  []Name // generated names first (index order), then the extra ones
	index  map[string]int
}

// ttlShare is a TTL and its share of the names.
type ttlShare struct {
	ttl   uint32
	share float64
}

// ttlShares is the TTL mix: common values of real zones, 300 s and 1 h most
// often, from 30 s to a day.
func ttlShares() [11]ttlShare {
	return [...]ttlShare{
		{30, .05}, {60, .10}, {300, .25}, {600, .05}, {900, .05}, {1800, .05},
		{3600, .25}, {7200, .05}, {14400, .05}, {43200, .05}, {86400, .05},
	}
}

// Generate builds the zone cfg describes.
func Generate(cfg Config) (*Zone, error) {
	if cfg.Suffix == "" {
		cfg.Suffix = DefaultSuffix
	}
	cfg.Suffix = dns.CanonicalName(cfg.Suffix)
	if cfg.Names < 1 {
		return nil, errors.New("zonegen: Names must be at least 1")
	}
	for _, s := range []float64{cfg.CNAMEShare, cfg.AAAAShare, cfg.MXShare, cfg.TXTShare} {
		if s < 0 || s > 1 {
			return nil, fmt.Errorf("zonegen: share %v outside [0,1]", s)
		}
	}
	if cfg.CNAMEShare >= 1 {
		return nil, errors.New("zonegen: CNAMEShare must leave some address names")
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	z := &Zone{Suffix: cfg.Suffix, index: make(map[string]int, cfg.Names+len(cfg.Extra))}
	alias := make([]bool, cfg.Names)
	var targets []int
	for i := range cfg.Names {
		alias[i] = rng.Float64() < cfg.CNAMEShare
		if !alias[i] {
			targets = append(targets, i)
		}
	}
	if len(targets) == 0 { // every name drew alias: keep the first as an address
		alias[0], targets = false, []int{0}
	}
	for i := range cfg.Names {
		n := Name{Name: NameAt(cfg.Suffix, i), TTL: pickTTL(rng)}
		if alias[i] {
			n.CNAME = NameAt(cfg.Suffix, targets[rng.IntN(len(targets))])
		} else {
			n.AAAA = rng.Float64() < cfg.AAAAShare
			n.MX = rng.Float64() < cfg.MXShare
			n.TXT = rng.Float64() < cfg.TXTShare
		}
		z.add(n)
	}
	for _, e := range cfg.Extra {
		name := dns.CanonicalName(e)
		if _, ok := dns.IsDomainName(name); !ok || name == "." || dns.IsSubDomain(cfg.Suffix, name) {
			continue
		}
		if _, dup := z.index[name]; dup {
			continue
		}
		z.add(Name{Name: name, TTL: pickTTL(rng), AAAA: rng.Float64() < cfg.AAAAShare})
	}
	return z, nil
}

func (z *Zone) add(n Name) {
	z.index[n.Name] = len(z.Names)
	z.Names = append(z.Names, n)
}

func pickTTL(rng *rand.Rand) uint32 {
	x := rng.Float64()
	shares := ttlShares()
	for _, t := range shares {
		if x < t.share {
			return t.ttl
		}
		x -= t.share
	}
	return shares[len(shares)-1].ttl
}

// Lookup returns the zone's entry for name (any case, with or without the
// final dot).
func (z *Zone) Lookup(name string) (Name, bool) {
	i, ok := z.index[dns.CanonicalName(name)]
	if !ok {
		return Name{}, false
	}
	return z.Names[i], true
}

// Owners lists every owner name of the zone, in zone order.
func (z *Zone) Owners() []string {
	out := make([]string, len(z.Names))
	for i, n := range z.Names {
		out[i] = n.Name
	}
	return out
}

// NXNames returns n names under the suffix that the zone does not hold:
// queries for them are answered NXDOMAIN.
func (z *Zone) NXNames(n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = NXName(z.Suffix, i)
	}
	return out
}

// words label the hosts of a site.
func words() [12]string {
	return [...]string{"api", "mail", "cdn", "img", "static", "m", "app", "shop", "blog", "login", "news", "video"}
}

// syllables make site labels that look like words.
func syllables() [16]string {
	return [...]string{"ka", "lo", "mi", "ne", "to", "ra", "zu", "pe", "vi", "so", "da", "gri", "fen", "bar", "mon", "tel"}
}

// siteLabel is a word-like label unique to site k.
func siteLabel(k int) string {
	h := uint64(k)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	syl := syllables()
	var b strings.Builder
	for range 2 + int(h%3) {
		h ^= h >> 29
		h *= 0xbf58476d1ce4e5b9
		b.WriteString(syl[h%uint64(len(syl))])
	}
	b.WriteString(fmt.Sprintf("%x", k))
	return b.String()
}

// NameAt is the generated name of index i: site i/4 holds its apex, www,
// one host and one host under "edge". It depends on suffix and i only, so
// a smaller zone holds the first names of a larger one.
func NameAt(suffix string, i int) string {
	site := siteLabel(i/4) + "." + suffix
	ws := words()
	w := ws[(i*7+i/4)%len(ws)]
	switch i % 4 {
	case 0:
		return site
	case 1:
		return "www." + site
	case 2:
		return w + "." + site
	default:
		return w + ".edge." + site
	}
}

// NXName is a name under suffix that no zone of this package holds.
func NXName(suffix string, i int) string {
	return fmt.Sprintf("nope-%x.%s", i, NameAt(suffix, (i*13)%(1<<20)))
}
