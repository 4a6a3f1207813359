package zones

import (
	"github.com/miekg/dns"
)

// zone is one loaded zone.
type zone struct {
	origin string // lower-case apex, the map key
	apex   string // apex as written in the file
	class  uint16
	soa    *dns.SOA
	file   string
	nodes  map[string]*node    // lower-case owner -> records
	ents   map[string]struct{} // empty non-terminals
}

// node holds the RRsets at one owner name.
type node struct {
	sets  map[uint16][]dns.RR
	types []uint16 // in order of first appearance, for ANY
}

// kind is the outcome of a lookup inside one zone.
type kind uint8

const (
	kindAnswer   kind = iota // rrs answer the question
	kindCNAME                // rrs is the CNAME at the name; chase its target
	kindNoData               // the name exists without that type
	kindNXDomain             // the name does not exist
	kindReferral             // rrs are the NS records of a delegation, glue the addresses
)

// result is what a lookup inside one zone found. Records are copies.
type result struct {
	kind kind
	rrs  []dns.RR
	glue []dns.RR
}

// exists reports whether name (lower case) owns records or is an empty
// non-terminal.
func (z *zone) exists(name string) bool {
	if _, ok := z.nodes[name]; ok {
		return true
	}
	_, ok := z.ents[name]
	return ok
}

// lookup answers qtype at qname (as asked; key is its lower-case form,
// inside z).
func (z *zone) lookup(qname, key string, qtype uint16) result {
	if r, ok := z.referral(key, qtype); ok {
		return r
	}
	if nd := z.nodes[key]; nd != nil {
		return nd.answer(qtype, "")
	}
	if _, ok := z.ents[key]; ok {
		return result{kind: kindNoData}
	}
	// RFC 4592: the closest encloser is the nearest existing ancestor; a
	// wildcard below it answers, with the query name as owner.
	for _, p := range ancestors(key, z.origin) {
		if !z.exists(p) {
			continue
		}
		wild := "*." + p
		if p == "." {
			wild = "*."
		}
		if nd := z.nodes[wild]; nd != nil {
			return nd.answer(qtype, qname)
		}
		if _, ok := z.ents[wild]; ok {
			return result{kind: kindNoData}
		}
		break
	}
	return result{kind: kindNXDomain}
}

// referral finds the topmost delegation (NS records below the apex) at or
// above key. A DS query at the delegation itself is answered by this zone,
// the parent side, as RFC 4035 §3.1.4.1 says.
func (z *zone) referral(key string, qtype uint16) (result, bool) {
	anc := ancestors(key, z.origin)
	cands := make([]string, 0, len(anc)+1)
	for i := len(anc) - 2; i >= 0; i-- { // skip the apex, at the end
		cands = append(cands, anc[i])
	}
	if key != z.origin && qtype != dns.TypeDS {
		cands = append(cands, key)
	}
	for _, c := range cands {
		nd := z.nodes[c]
		if nd == nil || len(nd.sets[dns.TypeNS]) == 0 {
			continue
		}
		r := result{kind: kindReferral, rrs: copyRRs(nd.sets[dns.TypeNS], "")}
		for _, rr := range nd.sets[dns.TypeNS] {
			if g := z.nodes[canonical(rr.(*dns.NS).Ns)]; g != nil {
				r.glue = append(r.glue, copyRRs(g.sets[dns.TypeA], "")...)
				r.glue = append(r.glue, copyRRs(g.sets[dns.TypeAAAA], "")...)
			}
		}
		return r, true
	}
	return result{}, false
}

// answer returns nd's records for qtype. A non-empty owner replaces the
// owner names (wildcard synthesis).
func (nd *node) answer(qtype uint16, owner string) result {
	if qtype == dns.TypeANY {
		var rrs []dns.RR
		for _, t := range nd.types {
			rrs = append(rrs, copyRRs(nd.sets[t], owner)...)
		}
		return result{kind: kindAnswer, rrs: rrs}
	}
	if set := nd.sets[qtype]; len(set) > 0 {
		return result{kind: kindAnswer, rrs: copyRRs(set, owner)}
	}
	if set := nd.sets[dns.TypeCNAME]; len(set) > 0 {
		return result{kind: kindCNAME, rrs: copyRRs(set, owner)}
	}
	return result{kind: kindNoData}
}

// copyRRs deep-copies rrs, so callers may change what they get (TTL
// ageing) without touching the zone, and sets their owner if non-empty.
func copyRRs(rrs []dns.RR, owner string) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
		if owner != "" {
			out[i].Header().Name = owner
		}
	}
	return out
}

// negativeSOA returns a copy of the SOA for a negative answer, its TTL
// min(SOA TTL, SOA MINIMUM) as RFC 2308 §3 says.
func (z *zone) negativeSOA() dns.RR {
	soa := dns.Copy(z.soa).(*dns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return soa
}
