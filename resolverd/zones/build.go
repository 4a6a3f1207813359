package zones

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/miekg/dns"
)

// build checks the records of one file and indexes them as a zone.
func build(recs []record, dir, name string) (*zone, error) {
	errAt := func(r record, format string, args ...any) error {
		return &Error{File: filepath.Join(dir, r.file), Line: r.line, Err: fmt.Errorf(format, args...)}
	}
	var soa *record
	for i := range recs {
		if recs[i].rr.Header().Rrtype != dns.TypeSOA {
			continue
		}
		if soa != nil {
			return nil, errAt(recs[i], "second SOA record, at %s (the first is at %s, line %d; a file holds exactly one zone)",
				recs[i].rr.Header().Name, soa.rr.Header().Name, soa.line)
		}
		soa = &recs[i]
	}
	if soa == nil {
		line := 1
		if len(recs) > 0 {
			line = recs[0].line
		}
		return nil, &Error{File: filepath.Join(dir, name), Line: line, Err: errors.New("no SOA record: a zone needs exactly one, at its apex")}
	}
	h := soa.rr.Header()
	z := &zone{
		origin: canonical(h.Name),
		apex:   h.Name,
		class:  h.Class,
		soa:    soa.rr.(*dns.SOA),
		file:   filepath.Join(dir, name),
		nodes:  map[string]*node{},
		ents:   map[string]struct{}{},
	}
	for _, r := range recs {
		h := r.rr.Header()
		key := canonical(h.Name)
		if !dns.IsSubDomain(z.origin, key) {
			return nil, errAt(r, "%s is outside the zone %s", h.Name, z.apex)
		}
		if h.Class != z.class {
			return nil, errAt(r, "class %s of %s differs from the SOA's class %s",
				dns.ClassToString[h.Class], h.Name, dns.ClassToString[z.class])
		}
		nd := z.nodes[key]
		if nd == nil {
			nd = &node{sets: map[uint16][]dns.RR{}}
			z.nodes[key] = nd
		}
		if err := nd.add(r.rr); err != nil {
			return nil, errAt(r, "%w", err)
		}
	}
	for key := range z.nodes {
		for _, p := range ancestors(key, z.origin) {
			if z.exists(p) {
				break
			}
			z.ents[p] = struct{}{}
		}
	}
	return z, nil
}

// add puts rr into nd, dropping exact duplicates, and enforces that a
// CNAME stands alone at its name (RFC 1034 §3.6.2, RFC 2181 §10.1;
// DNSSEC records may sit beside it).
func (nd *node) add(rr dns.RR) error {
	t := rr.Header().Rrtype
	for _, have := range nd.sets[t] {
		if dns.IsDuplicate(have, rr) {
			return nil
		}
	}
	if t == dns.TypeCNAME && len(nd.sets[t]) > 0 {
		return fmt.Errorf("second CNAME at %s", rr.Header().Name)
	}
	if !dnssecType(t) {
		for _, other := range nd.types {
			if dnssecType(other) || other == t {
				continue
			}
			if t == dns.TypeCNAME || other == dns.TypeCNAME {
				data := t
				if t == dns.TypeCNAME {
					data = other
				}
				return fmt.Errorf("CNAME and other data (%s) at %s: a CNAME must stand alone",
					dns.TypeToString[data], rr.Header().Name)
			}
		}
	}
	if len(nd.sets[t]) == 0 {
		nd.types = append(nd.types, t)
	}
	nd.sets[t] = append(nd.sets[t], rr)
	return nil
}

// dnssecType reports whether t may share a name with a CNAME.
func dnssecType(t uint16) bool {
	return t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3
}
