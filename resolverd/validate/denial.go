package validate

import (
	"bytes"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// proofKind is what a denial-of-existence proof shows.
type proofKind uint8

const (
	// proofNone: the records prove nothing of what was asked.
	proofNone proofKind = iota
	// proofOK: the absence asked about is proven.
	proofOK
	// proofNoCut: the name asked about (for DS) is no delegation.
	proofNoCut
	// proofNoName: the name asked about (for DS) does not exist, so neither
	// does any delegation below it.
	proofNoName
	// proofInsecure: the name is a delegation without DS.
	proofInsecure
	// proofOptOut: the name lies in an NSEC3 opt-out span, so it may be an
	// unsigned delegation (RFC 5155 §6).
	proofOptOut
	// proofSecureCut: the proof's type bitmap shows the DS that was denied.
	proofSecureCut
	// proofIterations: the NSEC3 records use more iterations than allowed
	// (RFC 9276 §3.2).
	proofIterations
	// proofUnknownHash: the only NSEC3 records use a hash algorithm other
	// than SHA-1, which makes the answer insecure (RFC 5155 §8.1).
	proofUnknownHash
)

// proof is the validated NSEC and NSEC3 records of one zone in a response.
type proof struct {
	zone    string
	nsec    []*dns.NSEC
	nsec3   []*dns.NSEC3
	maxIter uint16
	expires time.Time
	// unknownHash: NSEC3 records were there, all of an unknown hash
	// algorithm.
	unknownHash bool
}

// withoutNSEC3 is the outcome of a proof that found no NSEC that answers
// and no usable NSEC3.
func (d *proof) withoutNSEC3() proofKind {
	if d.unknownHash && len(d.nsec) == 0 {
		return proofUnknownHash
	}
	return proofNone
}

// denial verifies the NSEC and NSEC3 RRsets of section with the keys of
// the secure zone z and returns them as a proof. No such RRset is EDE 12
// (NSEC Missing); one that does not verify is bogus with verifyRRset's EDE.
func (c *check) denial(section []dns.RR, z zoneState) (*proof, Result) {
	d := &proof{zone: z.zone, maxIter: c.v.maxIter, expires: c.now.Add(c.v.maxTTL)}
	for _, s := range group(section) {
		if s.rtype != dns.TypeNSEC && s.rtype != dns.TypeNSEC3 {
			continue
		}
		if !isSubdomain(z.zone, s.name) {
			continue
		}
		v, res := c.verifyRRset(s, z.zone, z.keys)
		if res.Security != Secure {
			return nil, res
		}
		if e := c.ttlExpiry(s, v); e.Before(d.expires) {
			d.expires = e
		}
		for _, rr := range s.rrs {
			switch rr := rr.(type) {
			case *dns.NSEC:
				d.nsec = append(d.nsec, rr)
			case *dns.NSEC3:
				// Only SHA-1 is defined (RFC 5155 §11); records of another
				// hash algorithm are ignored (§8.1).
				if rr.Hash == dns.SHA1 {
					d.nsec3 = append(d.nsec3, rr)
				} else {
					d.unknownHash = true
				}
			}
		}
	}
	if len(d.nsec) == 0 && len(d.nsec3) == 0 && !d.unknownHash {
		return nil, bogus(dns.ExtendedErrorCodeNSECMissing, "no signed NSEC or NSEC3 record of %s", z.zone)
	}
	return d, Result{Security: Secure}
}

// wire returns name's labels in wire form, lower-cased, root-most last.
func wireLabels(name string) [][]byte {
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return [][]byte{[]byte(strings.ToLower(name))}
	}
	buf = buf[:off]
	var out [][]byte
	for i := 0; i < len(buf) && buf[i] != 0; i += int(buf[i]) + 1 {
		end := i + 1 + int(buf[i])
		if end > len(buf) {
			break
		}
		// Lower-case the label's bytes, never its length octet.
		out = append(out, bytes.ToLower(buf[i+1:end]))
	}
	return out
}

// canonicalCompare orders names as RFC 4034 §6.1 does: label by label from
// the root, each label's lower-cased bytes compared, a missing label first.
func canonicalCompare(a, b string) int {
	la, lb := wireLabels(a), wireLabels(b)
	i, j := len(la)-1, len(lb)-1
	for i >= 0 && j >= 0 {
		if c := bytes.Compare(la[i], lb[j]); c != 0 {
			return c
		}
		i--
		j--
	}
	switch {
	case i < 0 && j < 0:
		return 0
	case i < 0:
		return -1
	}
	return 1
}

func hasType(bitmap []uint16, t uint16) bool {
	for _, b := range bitmap {
		if b == t {
			return true
		}
	}
	return false
}

// nsecCovers reports whether n proves that name does not exist: name lies
// strictly between n's owner and next name (the last NSEC of a zone
// wrapping around to the apex).
func nsecCovers(n *dns.NSEC, zone, name string) bool {
	if !isSubdomain(zone, name) {
		return false
	}
	owner, next := n.Hdr.Name, n.NextDomain
	afterOwner := canonicalCompare(owner, name) < 0
	beforeNext := canonicalCompare(name, next) < 0
	if canonicalCompare(owner, next) < 0 {
		return afterOwner && beforeNext
	}
	return afterOwner || beforeNext
}

// nsecUsable reports whether n may deny names at or below name: an NSEC
// at a delegation point (NS without SOA) or a DNAME owner above name speaks
// only for the parent's side (RFC 6840 §4.1).
func nsecUsable(n *dns.NSEC, name string) bool {
	owner := canonical(n.Hdr.Name)
	if owner == canonical(name) || !isSubdomain(owner, name) {
		return true
	}
	if hasType(n.TypeBitMap, dns.TypeDNAME) {
		return false
	}
	return !(hasType(n.TypeBitMap, dns.TypeNS) && !hasType(n.TypeBitMap, dns.TypeSOA))
}

// nsecCovering returns the NSEC that proves name does not exist, or nil.
func (d *proof) nsecCovering(name string) *dns.NSEC {
	for _, n := range d.nsec {
		if nsecCovers(n, d.zone, name) && nsecUsable(n, name) {
			return n
		}
	}
	return nil
}

// nsecMatching returns the NSEC owned by name, or nil.
func (d *proof) nsecMatching(name string) *dns.NSEC {
	for _, n := range d.nsec {
		if strings.EqualFold(canonical(n.Hdr.Name), canonical(name)) {
			return n
		}
	}
	return nil
}

// nsecEncloser is the closest encloser of name that the covering NSEC n
// shows: the deepest ancestor of name that n's owner or next name shares
// (RFC 4035 §5.4), never above the zone.
func (d *proof) nsecEncloser(n *dns.NSEC, name string) string {
	k := dns.CompareDomainName(name, n.Hdr.Name)
	if k2 := dns.CompareDomainName(name, n.NextDomain); k2 > k {
		k = k2
	}
	if z := dns.CountLabel(d.zone); k < z {
		k = z
	}
	return ancestorAt(canonical(name), k)
}

// typeAbsent reports whether a bitmap proves qtype absent at its owner:
// neither qtype nor a CNAME, and for the side of a zone cut qtype lives on.
func typeAbsent(bitmap []uint16, qtype uint16) bool {
	if hasType(bitmap, qtype) || hasType(bitmap, dns.TypeCNAME) {
		return false
	}
	ns, soa := hasType(bitmap, dns.TypeNS), hasType(bitmap, dns.TypeSOA)
	if qtype == dns.TypeDS {
		// DS lives on the parent side: a bitmap with SOA is the child's.
		return !soa
	}
	// Other types live on the child side: NS without SOA is the parent's
	// view of a delegation.
	return !(ns && !soa)
}

// nsec3Owner splits an NSEC3 owner into its hash (upper case) and zone.
func nsec3Owner(n *dns.NSEC3) (hash, zone string) {
	owner := canonical(n.Hdr.Name)
	i, end := dns.NextLabel(owner, 0)
	if end {
		return strings.ToUpper(strings.TrimSuffix(owner, ".")), "."
	}
	return strings.ToUpper(owner[:i-1]), owner[i:]
}

func nsec3Hash(n *dns.NSEC3, name string) string {
	return dns.HashName(canonical(name), n.Hash, n.Iterations, n.Salt)
}

// nsec3Matches reports whether n is the NSEC3 of name.
func nsec3Matches(n *dns.NSEC3, name string) bool {
	h, zone := nsec3Owner(n)
	return isSubdomain(zone, name) && h == nsec3Hash(n, name)
}

// nsec3Covers reports whether name's hash lies strictly between n's owner
// hash and next hash (wrapping around at the end of the chain).
func nsec3Covers(n *dns.NSEC3, name string) bool {
	o, zone := nsec3Owner(n)
	if !isSubdomain(zone, name) {
		return false
	}
	h := nsec3Hash(n, name)
	next := strings.ToUpper(n.NextDomain)
	switch {
	case o == next:
		return h != o
	case o < next:
		return o < h && h < next
	}
	return h > o || h < next
}

func (d *proof) nsec3Matching(name string) *dns.NSEC3 {
	for _, n := range d.nsec3 {
		if nsec3Matches(n, name) {
			return n
		}
	}
	return nil
}

func (d *proof) nsec3Covering(name string) *dns.NSEC3 {
	for _, n := range d.nsec3 {
		if nsec3Covers(n, name) {
			return n
		}
	}
	return nil
}

// tooManyIterations reports whether the NSEC3 records are beyond the
// iteration limit, which makes any proof built on them insecure.
func (d *proof) tooManyIterations() bool {
	for _, n := range d.nsec3 {
		if n.Iterations > d.maxIter {
			return true
		}
	}
	return false
}

// closestEncloser finds the closest encloser proof of name (RFC 5155
// §8.3): the deepest ancestor ce with a matching NSEC3 and the NSEC3
// covering the next closer name. ce is not name itself; ok is false when
// no proof is there or ce's NSEC3 is a delegation or DNAME owner.
func (d *proof) closestEncloser(name string) (ce string, cover *dns.NSEC3, ok bool) {
	name = canonical(name)
	total := dns.CountLabel(name)
	for k := total - 1; k >= dns.CountLabel(d.zone); k-- {
		cand := ancestorAt(name, k)
		m := d.nsec3Matching(cand)
		if m == nil {
			continue
		}
		if hasType(m.TypeBitMap, dns.TypeDNAME) || (hasType(m.TypeBitMap, dns.TypeNS) && !hasType(m.TypeBitMap, dns.TypeSOA)) {
			return "", nil, false
		}
		nc := ancestorAt(name, k+1)
		cover = d.nsec3Covering(nc)
		if cover == nil {
			return "", nil, false
		}
		return cand, cover, true
	}
	return "", nil, false
}

func optOut(n *dns.NSEC3) bool { return n.Flags&1 == 1 }

// nxdomain checks the proof that name does not exist: with NSEC, an NSEC
// covering name and one covering the wildcard at its closest encloser;
// with NSEC3, the closest encloser proof and an NSEC3 covering the
// wildcard (RFC 5155 §8.4).
func (d *proof) nxdomain(name string) proofKind {
	if n := d.nsecCovering(name); n != nil {
		ce := d.nsecEncloser(n, name)
		if d.nsecCovering("*."+ce) != nil {
			return proofOK
		}
	}
	if len(d.nsec3) == 0 {
		return d.withoutNSEC3()
	}
	if d.tooManyIterations() {
		return proofIterations
	}
	ce, cover, ok := d.closestEncloser(name)
	if !ok || d.nsec3Covering("*."+ce) == nil {
		return proofNone
	}
	if optOut(cover) {
		return proofOptOut
	}
	return proofOK
}

// nodata checks the proof that name exists without qtype: its own NSEC or
// NSEC3 without qtype, an empty non-terminal, a wildcard without qtype, or
// for DS an NSEC3 opt-out span (RFC 4035 §5.4, RFC 5155 §8.5-8.7).
func (d *proof) nodata(name string, qtype uint16) proofKind {
	if n := d.nsecMatching(name); n != nil {
		if typeAbsent(n.TypeBitMap, qtype) {
			return proofOK
		}
		return proofNone
	}
	if n := d.nsecCovering(name); n != nil {
		// An empty non-terminal: the next name lies below name.
		if isSubdomain(name, n.NextDomain) && canonical(n.NextDomain) != canonical(name) {
			return proofOK
		}
		ce := d.nsecEncloser(n, name)
		if w := d.nsecMatching("*." + ce); w != nil && typeAbsent(w.TypeBitMap, qtype) {
			return proofOK
		}
	}
	if len(d.nsec3) == 0 {
		return d.withoutNSEC3()
	}
	if d.tooManyIterations() {
		return proofIterations
	}
	if n := d.nsec3Matching(name); n != nil {
		if typeAbsent(n.TypeBitMap, qtype) {
			return proofOK
		}
		return proofNone
	}
	ce, cover, ok := d.closestEncloser(name)
	if !ok {
		return proofNone
	}
	if qtype == dns.TypeDS && optOut(cover) {
		return proofOptOut
	}
	if w := d.nsec3Matching("*." + ce); w != nil && typeAbsent(w.TypeBitMap, qtype) {
		return proofOK
	}
	return proofNone
}

// dsProof says what the proof shows of a DS query for name (answered
// NODATA, or NXDOMAIN when nx): a delegation without DS, an opt-out span,
// no delegation at name, no name at all, or nothing.
func (d *proof) dsProof(name string, nx bool) proofKind {
	bitmap := func(b []uint16) proofKind {
		switch {
		case hasType(b, dns.TypeDS):
			return proofSecureCut
		case hasType(b, dns.TypeSOA):
			// The child's apex NSEC answers nothing about the parent's DS.
			return proofNone
		case hasType(b, dns.TypeNS):
			return proofInsecure
		case hasType(b, dns.TypeCNAME):
			return proofNoCut
		}
		return proofNoCut
	}
	if !nx {
		if n := d.nsecMatching(name); n != nil {
			return bitmap(n.TypeBitMap)
		}
	}
	if n := d.nsecCovering(name); n != nil {
		if isSubdomain(name, n.NextDomain) && canonical(n.NextDomain) != canonical(name) {
			return proofNoCut // an empty non-terminal: names below exist
		}
		return proofNoName
	}
	if len(d.nsec3) == 0 {
		return d.withoutNSEC3()
	}
	if d.tooManyIterations() {
		return proofIterations
	}
	if !nx {
		if n := d.nsec3Matching(name); n != nil {
			return bitmap(n.TypeBitMap)
		}
	}
	_, cover, ok := d.closestEncloser(name)
	if !ok {
		return proofNone
	}
	if optOut(cover) {
		return proofOptOut
	}
	return proofNoName
}

// wildcard checks the proof that an answer expanded from the wildcard of
// the closest encloser with the given label count had no closer match: the
// next closer name is denied (RFC 4035 §5.3.4, RFC 5155 §8.8).
func (d *proof) wildcard(owner string, labels uint8) proofKind {
	owner = canonical(owner)
	nc := ancestorAt(owner, int(labels)+1)
	if d.nsecCovering(nc) != nil {
		return proofOK
	}
	if len(d.nsec3) == 0 {
		return d.withoutNSEC3()
	}
	if d.tooManyIterations() {
		return proofIterations
	}
	if d.nsec3Covering(nc) != nil {
		return proofOK
	}
	return proofNone
}
