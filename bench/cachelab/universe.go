package cachelab

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// nxShare is the share of the key space that is NXDOMAIN for names that do
// not exist (typos, random subdomains): about a tenth of what a busy
// resolver caches.
const nxShare = 0.12

// ttlChoices is a mix of record TTLs like the ones resolvers see: CDN
// names at tens of seconds, most zones at 5 minutes to an hour, some at
// a day. Weights are in percent.
var ttlChoices = []struct {
	ttl    uint32
	weight int
}{{20, 5}, {60, 15}, {300, 30}, {600, 10}, {3600, 25}, {14400, 5}, {86400, 10}}

// negTTLChoices are SOA MINIMUM values, the negative-caching TTL.
var negTTLChoices = []struct {
	ttl    uint32
	weight int
}{{60, 15}, {300, 35}, {900, 20}, {3600, 30}}

func pickTTL(rng *rand.Rand, choices []struct {
	ttl    uint32
	weight int
}) uint32 {
	total := 0
	for _, c := range choices {
		total += c.weight
	}
	r := rng.IntN(total)
	for _, c := range choices {
		if r < c.weight {
			return c.ttl
		}
		r -= c.weight
	}
	return choices[len(choices)-1].ttl
}

// keyRNG returns a generator seeded by key, so every key always gets the
// same answer whatever the order of construction.
func keyRNG(seed uint64, key string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(key))
	k := h.Sum64()
	return rand.New(rand.NewPCG(seed^k, k*0x9e3779b97f4a7c15+1))
}

// specFor chooses the answer a question gets: names that exist answer A
// (sometimes through a CNAME), AAAA for about half of them, MX and TXT at
// zone apexes; names that do not exist get NXDOMAIN.
func specFor(name string, qtype uint16, exists bool, rng *rand.Rand) answerSpec {
	s := answerSpec{Name: name, Qtype: qtype, TTL: pickTTL(rng, ttlChoices), Records: 1}
	neg := func(k kind) answerSpec {
		s.Kind, s.TTL = k, pickTTL(rng, negTTLChoices)
		return s
	}
	if !exists {
		return neg(kindNXDOMAIN)
	}
	r := rng.IntN(100)
	switch qtype {
	case dns.TypeA:
		switch {
		case r < 18:
			s.Kind, s.Records = kindCNAME, 1+rng.IntN(3)
		case r < 95:
			s.Kind, s.Records = kindA, []int{1, 1, 1, 2, 2, 4, 8}[rng.IntN(7)]
		default:
			return neg(kindNODATA)
		}
	case dns.TypeAAAA:
		if r < 45 {
			return neg(kindNODATA)
		}
		s.Kind, s.Records = kindAAAA, 1+rng.IntN(2)
	case dns.TypeMX:
		if r < 20 {
			return neg(kindNODATA)
		}
		s.Kind, s.Records = kindMX, 1+rng.IntN(4)
	case dns.TypeTXT:
		if r < 20 {
			return neg(kindNODATA)
		}
		s.Kind, s.Records, s.BigTXT = kindTXT, 1+rng.IntN(3), rng.IntN(3) == 0
	default:
		return neg(kindNODATA)
	}
	return s
}

// cleanNames returns names as FQDNs in key form, valid and distinct.
func cleanNames(names []string) []string {
	seen := make(map[string]struct{}, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = dnsmsg.LowerName(dns.Fqdn(n))
		if n == "." {
			continue
		}
		if _, ok := dns.IsDomainName(n); !ok {
			continue
		}
		if _, dup := seen[n]; dup {
			continue
		}
		seen[n] = struct{}{}
		out = append(out, n)
	}
	return out
}

var hostLabels = []string{"www", "api", "mail", "cdn", "img", "static", "login", "app", "m", "shop", "news", "auth", "video", "assets", "edge"}
var tlds = []string{"com", "com", "com", "net", "org", "de", "io", "co.uk", "fr", "nl"}

// generateNames returns n host names spread over n/6 registered domains.
func generateNames(n int, rng *rand.Rand) []string {
	domains := max(n/6, 1)
	out := make([]string, n)
	for i := range out {
		d := i % domains
		out[i] = fmt.Sprintf("%s%d.site%d-%s.%s.", hostLabels[rng.IntN(len(hostLabels))], i/domains,
			d, lowerToken(rng, 3+rng.IntN(6)), tlds[d%len(tlds)])
	}
	return cleanNames(out)
}

// buildUniverse returns n distinct keys with their answers. Names that
// exist come from names (or are generated when names is empty) and are
// asked A and AAAA, one in eight also MX and TXT; nxShare of the keys are
// names that do not exist under their zones. Everything is deterministic
// in seed.
func buildUniverse(n int, names []string, seed uint64) ([]item, error) {
	if n <= 0 {
		return nil, fmt.Errorf("cachelab: universe: %d keys", n)
	}
	rng := rand.New(rand.NewPCG(seed, seed+7))
	names = cleanNames(names)
	if len(names) == 0 {
		names = generateNames(n/2+1, rng)
	}
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	nx := int(float64(n) * nxShare)
	items := make([]item, 0, n)
	seen := make(map[string]struct{}, n)
	add := func(name string, qtype uint16, exists bool) error {
		key := dnsmsg.Key(name, qtype, dns.ClassINET, false, false)
		if _, dup := seen[key]; dup {
			return nil
		}
		r := keyRNG(seed, key)
		it, err := buildItem(specFor(name, qtype, exists, r), r)
		if err != nil {
			return err
		}
		seen[key] = struct{}{}
		items = append(items, it)
		return nil
	}
	for i, name := range names {
		if len(items) >= n-nx {
			break
		}
		qtypes := []uint16{dns.TypeA, dns.TypeAAAA}
		if i%8 == 0 {
			qtypes = append(qtypes, dns.TypeMX, dns.TypeTXT)
		}
		for _, qt := range qtypes {
			if len(items) < n-nx {
				if err := add(name, qt, true); err != nil {
					return nil, err
				}
			}
		}
	}
	// Names that do not exist, under the zones of the names that do; they
	// also fill the key space when names are too few.
	for i := 0; len(items) < n && i < 4*n; i++ {
		zone := parent(names[i%len(names)])
		name := fmt.Sprintf("x%s%d.%s", lowerToken(rng, 5), i, zone)
		if _, ok := dns.IsDomainName(name); !ok || len(name) > 250 {
			continue
		}
		qt := dns.TypeA
		if rng.IntN(5) < 2 {
			qt = dns.TypeAAAA
		}
		if err := add(name, qt, false); err != nil {
			return nil, err
		}
	}
	if len(items) < n {
		return nil, fmt.Errorf("cachelab: universe: only %d of %d keys", len(items), n)
	}
	return slices.Clip(items), nil
}

func lowerToken(rng *rand.Rand, n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[rng.IntN(len(chars))]
	}
	return string(b)
}
