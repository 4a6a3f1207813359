package validate

import (
	"context"
	"crypto"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// This file builds signed zones in-process for the tests: a small signer
// (keys, RRSIGs, NSEC or NSEC3 chains, DS records for the parent) and a
// small authoritative that answers from a signed zone with the proofs a
// real server sends, and a KeySource over a set of such zones.

// key is a DNSKEY with its private half.
type key struct {
	pub  *dns.DNSKEY
	priv crypto.Signer
}

// newKey generates a key of algorithm alg for zone (a KSK when ksk).
func newKey(t testing.TB, zone string, alg uint8, ksk bool) key {
	t.Helper()
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600}, Flags: dns.ZONE, Protocol: 3, Algorithm: alg}
	if ksk {
		k.Flags |= dns.SEP
	}
	bits := 256
	switch alg {
	case dns.RSASHA256, dns.RSASHA512, dns.RSASHA1:
		bits = 1024
	case dns.ECDSAP384SHA384:
		bits = 384
	}
	p, err := k.Generate(bits)
	if err != nil {
		t.Fatalf("generating a key of algorithm %d: %v", alg, err)
	}
	return key{pub: k, priv: p.(crypto.Signer)}
}

// zoneSpec says how to sign a zone.
type zoneSpec struct {
	origin  string
	alg     uint8
	records string // zone-file text, $ORIGIN origin
	nsec3   bool
	iter    uint16
	salt    string
	optOut  bool
	// hash is the hash algorithm the NSEC3 records name; 0: SHA-1. The
	// hashes are SHA-1's whatever it says.
	hash uint8
	// inception and expiration of every signature; zero: an hour ago and
	// a week ahead of testNow.
	inception, expiration time.Time
}

// testNow is the time every test validates at.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// signed is a zone signed by sign: its records (RRSIGs and the NSEC or
// NSEC3 chain included) and keys.
type signed struct {
	origin string
	ksk    key
	zsk    key
	rrs    []dns.RR
}

// ds returns the DS of the zone's KSK.
func (s *signed) ds() *dns.DS {
	d := s.ksk.pub.ToDS(dns.SHA256)
	d.Hdr.Ttl = 3600
	return d
}

func parseRecords(t testing.TB, origin, text string) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "test")
	zp.SetDefaultTTL(3600)
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("zone %s: %v", origin, err)
	}
	return out
}

type setKey struct {
	name  string
	rtype uint16
}

// sign signs spec's zone with a fresh KSK and ZSK of spec.alg.
func sign(t testing.TB, spec zoneSpec) *signed {
	t.Helper()
	z := &signed{origin: spec.origin, ksk: newKey(t, spec.origin, spec.alg, true), zsk: newKey(t, spec.origin, spec.alg, false)}
	if spec.inception.IsZero() {
		spec.inception = testNow.Add(-time.Hour)
	}
	if spec.expiration.IsZero() {
		spec.expiration = testNow.Add(7 * 24 * time.Hour)
	}
	recs := parseRecords(t, spec.origin, spec.records)
	recs = append(recs, z.ksk.pub, z.zsk.pub)
	if spec.nsec3 {
		recs = append(recs, &dns.NSEC3PARAM{Hdr: dns.RR_Header{Name: spec.origin, Rrtype: dns.TypeNSEC3PARAM, Class: dns.ClassINET}, Hash: dns.SHA1, Iterations: spec.iter, Salt: spec.salt, SaltLength: uint8(len(spec.salt) / 2)})
	}
	sets := map[setKey][]dns.RR{}
	var order []setKey
	for _, rr := range recs {
		h := rr.Header()
		h.Name = canonical(h.Name)
		k := setKey{h.Name, h.Rrtype}
		if _, ok := sets[k]; !ok {
			order = append(order, k)
		}
		sets[k] = append(sets[k], rr)
	}
	// Zone cuts: NS owners below the apex; names below a cut are glue.
	cuts := map[string]bool{}
	for k := range sets {
		if k.rtype == dns.TypeNS && k.name != spec.origin {
			cuts[k.name] = true
		}
	}
	below := func(name string) bool {
		for c := range cuts {
			if name != c && dns.IsSubDomain(c, name) {
				return true
			}
		}
		return false
	}
	types := map[string][]uint16{}
	for _, k := range order {
		if below(k.name) {
			continue
		}
		types[k.name] = append(types[k.name], k.rtype)
	}
	// The authoritative names, with the empty non-terminals between them
	// and the apex.
	names := map[string]bool{}
	for n := range types {
		names[n] = true
		for p := n; p != spec.origin && p != "."; {
			p = parentName(p)
			if !names[p] {
				names[p] = false
			}
		}
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Slice(sorted, func(i, j int) bool { return canonicalCompare(sorted[i], sorted[j]) < 0 })

	var chain []dns.RR
	if !spec.nsec3 {
		var owners []string
		for _, n := range sorted {
			if len(types[n]) > 0 {
				owners = append(owners, n)
			}
		}
		for i, n := range owners {
			bm := append([]uint16{}, types[n]...)
			bm = append(bm, dns.TypeNSEC, dns.TypeRRSIG)
			if cuts[n] && !hasType(types[n], dns.TypeDS) {
				bm = bm[:len(bm)-1] // an unsigned delegation has no RRSIG
			}
			sort.Slice(bm, func(a, b int) bool { return bm[a] < bm[b] })
			chain = append(chain, &dns.NSEC{Hdr: dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 3600}, NextDomain: owners[(i+1)%len(owners)], TypeBitMap: bm})
		}
	} else {
		type h3 struct {
			hash string
			name string
		}
		var hashes []h3
		for _, n := range sorted {
			if spec.optOut && cuts[n] && !hasType(types[n], dns.TypeDS) {
				continue
			}
			hashes = append(hashes, h3{dns.HashName(n, dns.SHA1, spec.iter, spec.salt), n})
		}
		sort.Slice(hashes, func(a, b int) bool { return hashes[a].hash < hashes[b].hash })
		var flags uint8
		if spec.optOut {
			flags = 1
		}
		for i, h := range hashes {
			var bm []uint16
			if len(types[h.name]) > 0 {
				bm = append(bm, types[h.name]...)
				if !(cuts[h.name] && !hasType(types[h.name], dns.TypeDS)) {
					bm = append(bm, dns.TypeRRSIG)
				}
			}
			sort.Slice(bm, func(a, b int) bool { return bm[a] < bm[b] })
			hash := spec.hash
			if hash == 0 {
				hash = dns.SHA1
			}
			chain = append(chain, &dns.NSEC3{Hdr: dns.RR_Header{Name: strings.ToLower(h.hash) + "." + spec.origin, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 3600}, Hash: hash, Flags: flags, Iterations: spec.iter, SaltLength: uint8(len(spec.salt) / 2), Salt: spec.salt, HashLength: 20, NextDomain: hashes[(i+1)%len(hashes)].hash, TypeBitMap: bm})
		}
	}
	for _, rr := range chain {
		k := setKey{rr.Header().Name, rr.Header().Rrtype}
		order = append(order, k)
		sets[k] = []dns.RR{rr}
	}
	for _, k := range order {
		set := sets[k]
		z.rrs = append(z.rrs, set...)
		if below(k.name) || (cuts[k.name] && k.rtype != dns.TypeDS && k.rtype != dns.TypeNSEC) {
			continue // glue and delegation NS are not signed
		}
		signer := z.zsk
		if k.rtype == dns.TypeDNSKEY {
			signer = z.ksk
		}
		z.rrs = append(z.rrs, signSet(t, set, spec.origin, signer, spec.inception, spec.expiration))
	}
	return z
}

// signSet signs set with k as zone's key.
func signSet(t testing.TB, set []dns.RR, zone string, k key, inception, expiration time.Time) *dns.RRSIG {
	t.Helper()
	h := set[0].Header()
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl}, TypeCovered: h.Rrtype, Algorithm: k.pub.Algorithm, OrigTtl: h.Ttl, Expiration: uint32(expiration.Unix()), Inception: uint32(inception.Unix()), KeyTag: k.pub.KeyTag(), SignerName: zone}
	if err := sig.Sign(k.priv, set); err != nil {
		t.Fatalf("signing %s/%s: %v", h.Name, dns.TypeToString[h.Rrtype], err)
	}
	return sig
}

// auth answers from one signed zone as an authoritative server does.
type auth struct {
	origin string
	sets   map[setKey][]dns.RR
	sigs   map[setKey][]dns.RR
	nsec   []*dns.NSEC
	nsec3  []*dns.NSEC3
	names  map[string]bool // owners and empty non-terminals
	cuts   map[string]bool
}

func newAuth(origin string, rrs []dns.RR) *auth {
	a := &auth{origin: canonical(origin), sets: map[setKey][]dns.RR{}, sigs: map[setKey][]dns.RR{}, names: map[string]bool{}, cuts: map[string]bool{}}
	for _, rr := range rrs {
		h := rr.Header()
		name := canonical(h.Name)
		switch rr := rr.(type) {
		case *dns.RRSIG:
			k := setKey{name, rr.TypeCovered}
			a.sigs[k] = append(a.sigs[k], rr)
			continue
		case *dns.NSEC:
			a.nsec = append(a.nsec, rr)
		case *dns.NSEC3:
			a.nsec3 = append(a.nsec3, rr)
		}
		k := setKey{name, h.Rrtype}
		a.sets[k] = append(a.sets[k], rr)
		if h.Rrtype == dns.TypeNSEC3 {
			continue
		}
		if h.Rrtype == dns.TypeNS && name != a.origin {
			a.cuts[name] = true
		}
		for n := name; ; n = parentName(n) {
			a.names[n] = true
			if n == a.origin || n == "." {
				break
			}
		}
	}
	return a
}

func (a *auth) withSigs(section []dns.RR, k setKey) []dns.RR {
	section = append(section, a.sets[k]...)
	return append(section, a.sigs[k]...)
}

func (a *auth) soa(m *dns.Msg) {
	m.Ns = a.withSigs(m.Ns, setKey{a.origin, dns.TypeSOA})
}

// addNSEC adds the NSEC owned by (match) or covering name, once, and
// reports whether there was one.
func (a *auth) addNSEC(m *dns.Msg, name string, match bool) bool {
	for _, n := range a.nsec {
		ok := false
		if match {
			ok = canonical(n.Hdr.Name) == name
		} else {
			ok = nsecCovers(n, a.origin, name)
		}
		if ok {
			a.addOnce(m, n)
			return true
		}
	}
	return false
}

func (a *auth) addOnce(m *dns.Msg, rr dns.RR) {
	for _, have := range m.Ns {
		if have == rr {
			return
		}
	}
	k := setKey{canonical(rr.Header().Name), rr.Header().Rrtype}
	m.Ns = a.withSigs(m.Ns, k)
}

func (a *auth) addNSEC3(m *dns.Msg, name string, match bool) {
	for _, n := range a.nsec3 {
		if (match && nsec3Matches(n, name)) || (!match && nsec3Covers(n, name)) {
			a.addOnce(m, n)
			return
		}
	}
}

// closestEncloser is the deepest existing ancestor of name.
func (a *auth) closestEncloser(name string) string {
	for n := parentName(name); ; n = parentName(n) {
		if a.names[n] || n == a.origin {
			return n
		}
	}
}

// nextCloser is the ancestor of name one label below ce.
func nextCloser(name, ce string) string {
	return ancestorAt(name, dns.CountLabel(ce)+1)
}

// query answers qname/qtype from the zone (no referrals followed: a DS at
// a cut is answered here, as by the parent).
func (a *auth) query(qname string, qtype uint16) *dns.Msg {
	qname = canonical(qname)
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Response, m.Authoritative = true, true
	if _, ok := a.sets[setKey{qname, qtype}]; ok && !(a.cuts[qname] && qtype == dns.TypeNS) {
		m.Answer = a.withSigs(m.Answer, setKey{qname, qtype})
		return m
	}
	if _, ok := a.sets[setKey{qname, dns.TypeCNAME}]; ok {
		m.Answer = a.withSigs(m.Answer, setKey{qname, dns.TypeCNAME})
		return m
	}
	if a.names[qname] {
		a.soa(m)
		if len(a.nsec3) == 0 {
			if !a.addNSEC(m, qname, true) {
				a.addNSEC(m, qname, false) // an empty non-terminal
			}
		} else if a.nsec3Has(qname) {
			a.addNSEC3(m, qname, true)
		} else {
			// An opted-out delegation: the closest provable encloser.
			ce := a.closestEncloser(qname)
			a.addNSEC3(m, ce, true)
			a.addNSEC3(m, nextCloser(qname, ce), false)
		}
		return m
	}
	ce := a.closestEncloser(qname)
	wild := "*." + ce
	if a.names[wild] {
		k := setKey{wild, qtype}
		if _, ok := a.sets[k]; ok {
			for _, rr := range a.sets[k] {
				c := dns.Copy(rr)
				c.Header().Name = qname
				m.Answer = append(m.Answer, c)
			}
			for _, rr := range a.sigs[k] {
				c := dns.Copy(rr)
				c.Header().Name = qname
				m.Answer = append(m.Answer, c)
			}
			if len(a.nsec3) == 0 {
				a.addNSEC(m, qname, false)
			} else {
				a.addNSEC3(m, nextCloser(qname, ce), false)
			}
			return m
		}
		a.soa(m)
		if len(a.nsec3) == 0 {
			a.addNSEC(m, qname, false)
			a.addNSEC(m, wild, true)
		} else {
			a.addNSEC3(m, ce, true)
			a.addNSEC3(m, nextCloser(qname, ce), false)
			a.addNSEC3(m, wild, true)
		}
		return m
	}
	m.Rcode = dns.RcodeNameError
	a.soa(m)
	if len(a.nsec3) == 0 {
		a.addNSEC(m, qname, false)
		a.addNSEC(m, wild, false)
	} else {
		a.addNSEC3(m, ce, true)
		a.addNSEC3(m, nextCloser(qname, ce), false)
		a.addNSEC3(m, wild, false)
	}
	return m
}

func (a *auth) nsec3Has(name string) bool {
	for _, n := range a.nsec3 {
		if nsec3Matches(n, name) {
			return true
		}
	}
	return false
}

// world is a set of zones and a KeySource over them, counting fetches.
type world struct {
	mu      sync.Mutex
	zones   map[string]*auth
	fetches int
	// drop, when set, removes records from every DS or DNSKEY response.
	drop func(zone string, qtype uint16, m *dns.Msg)
}

func newWorld(zones ...*signed) *world {
	w := &world{zones: map[string]*auth{}}
	for _, z := range zones {
		w.add(z.origin, z.rrs)
	}
	return w
}

func (w *world) add(origin string, rrs []dns.RR) {
	w.zones[canonical(origin)] = newAuth(origin, rrs)
}

// zoneFor is the deepest zone holding name; for DS, the deepest zone
// strictly above it.
func (w *world) zoneFor(name string, qtype uint16) *auth {
	name = canonical(name)
	n := name
	if qtype == dns.TypeDS && n != "." {
		n = parentName(n)
	}
	for {
		if z := w.zones[n]; z != nil {
			return z
		}
		if n == "." {
			return nil
		}
		n = parentName(n)
	}
}

// Fetch implements KeySource. It checks that q.Zone names the zone that
// holds the answer, as the validator promises.
func (w *world) Fetch(ctx context.Context, q KeyQuery) (*dns.Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, qtype := q.Name, q.Type
	w.mu.Lock()
	w.fetches++
	w.mu.Unlock()
	z := w.zoneFor(name, qtype)
	if z == nil {
		return nil, fmt.Errorf("no zone serves %s", name)
	}
	if z.origin != q.Zone {
		return nil, fmt.Errorf("%s/%s asked of zone %s, held by %s", name, dns.TypeToString[qtype], q.Zone, z.origin)
	}
	m := z.query(name, qtype)
	if w.drop != nil {
		w.drop(name, qtype, m)
	}
	return m, nil
}

// ask is the response to qname/qtype of the deepest zone holding it (for
// DS, of the zone above it).
func (w *world) ask(qname string, qtype uint16) *dns.Msg {
	z := w.zoneFor(qname, qtype)
	return z.query(qname, qtype)
}

func (w *world) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fetches
}
