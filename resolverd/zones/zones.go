// Package zones serves RFC 1035 zone files authoritatively: exact answers,
// CNAME chasing across the loaded zones, wildcards (RFC 4592), negative
// answers with the SOA (RFC 2308) and referrals at delegations.
package zones

import (
	"slices"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// Authority is a set of zones loaded by Load. It is read-only after Load and
// safe for concurrent use.
type Authority struct {
	zones map[string]*zone // key: lower-case apex
}

// Zones returns the apex names of the loaded zones, sorted.
func (a *Authority) Zones() []string {
	out := make([]string, 0, len(a.zones))
	for _, z := range a.zones {
		out = append(out, z.apex)
	}
	slices.Sort(out)
	return out
}

// find returns the zone with the longest apex that contains name (a lower-case
// FQDN), or nil.
func (a *Authority) find(name string) *zone {
	if a == nil || len(a.zones) == 0 {
		return nil
	}
	if z := a.zones[name]; z != nil {
		return z
	}
	for _, p := range ancestors(name, ".") {
		if z := a.zones[p]; z != nil {
			return z
		}
	}
	return nil
}

// ancestors returns name's ancestors, nearest first, from its parent up to
// and including stop (which must be name's ancestor, or "." for all).
func ancestors(name, stop string) []string {
	if name == stop || name == "." {
		return nil
	}
	idx := dns.Split(name)
	out := make([]string, 0, len(idx))
	for _, i := range idx[1:] {
		p := name[i:]
		out = append(out, p)
		if p == stop {
			return out
		}
	}
	return append(out, ".")
}

// canonical returns name as a lower-case FQDN, the key of every map here.
func canonical(name string) string {
	return dnsmsg.LowerName(dns.Fqdn(name))
}
