package validate

import (
	"context"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// algorithmSupported reports whether the validator verifies signatures of
// DNSKEY algorithm alg: the algorithms RFC 8624 says a validator MUST or
// RECOMMENDED to support and miekg/dns implements.
func algorithmSupported(alg uint8) bool {
	switch alg {
	case dns.RSASHA256, dns.RSASHA512, dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519:
		return true
	}
	return false
}

// digestSupported reports whether the validator checks DS digests of type
// t. SHA-1 (1) is used only when a DS RRset offers nothing better (RFC 8624
// §3.3).
func digestSupported(t uint8) bool {
	return t == dns.SHA1 || t == dns.SHA256 || t == dns.SHA384
}

// rrset is one RRset of a section with the RRSIGs that cover it.
type rrset struct {
	name  string
	rtype uint16
	rrs   []dns.RR
	sigs  []*dns.RRSIG
}

// group splits a section into RRsets (RRSIGs attached to the RRset they
// cover), in the order they first appear.
func group(section []dns.RR) []*rrset {
	var out []*rrset
	find := func(name string, t uint16) *rrset {
		for _, s := range out {
			if s.rtype == t && strings.EqualFold(s.name, name) {
				return s
			}
		}
		s := &rrset{name: name, rtype: t}
		out = append(out, s)
		return s
	}
	for _, rr := range section {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			continue
		}
		switch rr := rr.(type) {
		case *dns.RRSIG:
			s := find(h.Name, rr.TypeCovered)
			s.sigs = append(s.sigs, rr)
		case *dns.OPT:
		default:
			s := find(h.Name, h.Rrtype)
			s.rrs = append(s.rrs, rr)
		}
	}
	kept := out[:0]
	for _, s := range out {
		if len(s.rrs) > 0 {
			kept = append(kept, s)
		}
	}
	return kept
}

// signer returns the signer name of the RRset's first RRSIG whose signer
// is at or above the owner (the first RRSIG's when none is), or "" when it
// has none.
func (s *rrset) signer() string {
	if len(s.sigs) == 0 {
		return ""
	}
	for _, sig := range s.sigs {
		if isSubdomain(sig.SignerName, s.name) {
			return canonical(sig.SignerName)
		}
	}
	return canonical(s.sigs[0].SignerName)
}

// ttl is the lowest TTL of the RRset's records.
func (s *rrset) ttl() uint32 {
	t := s.rrs[0].Header().Ttl
	for _, rr := range s.rrs[1:] {
		if rr.Header().Ttl < t {
			t = rr.Header().Ttl
		}
	}
	return t
}

// verified is the outcome of verifying one RRset.
type verified struct {
	// labels is the RRSIG labels field of the signature that verified: below
	// the owner's label count, the RRset was expanded from a wildcard.
	labels uint8
	// expires is when the signature expires or its original TTL from now
	// runs out, whichever comes first (RFC 4035 §5.3.3).
	expires time.Time
}

// window checks sig's validity window against now, widened by skew, using
// RFC 1982 serial arithmetic as RFC 4034 §3.1.5 asks.
func window(sig *dns.RRSIG, now time.Time, skew time.Duration) Result {
	t := now.Unix()
	s := int64(skew / time.Second)
	if int32(uint32(t+s)-sig.Inception) < 0 {
		return bogus(dns.ExtendedErrorCodeSignatureNotYetValid, "RRSIG %s/%s by %s key %d not valid before %s", sig.Header().Name, dns.TypeToString[sig.TypeCovered], sig.SignerName, sig.KeyTag, dns.TimeToString(sig.Inception))
	}
	if int32(sig.Expiration-uint32(t-s)) < 0 {
		return bogus(dns.ExtendedErrorCodeSignatureExpired, "RRSIG %s/%s by %s key %d expired at %s", sig.Header().Name, dns.TypeToString[sig.TypeCovered], sig.SignerName, sig.KeyTag, dns.TimeToString(sig.Expiration))
	}
	return Result{Security: Secure}
}

// expiry returns when sig expires, as an absolute time near now.
func expiry(sig *dns.RRSIG, now time.Time) time.Time {
	d := int32(sig.Expiration - uint32(now.Unix()))
	return now.Add(time.Duration(d) * time.Second)
}

// verifyRRset checks that one of s's RRSIGs, made by zone with one of keys,
// is valid now and verifies. Its failure says why, with the EDE of the most
// telling reason: a window (expired, not yet valid) over a bad signature
// over a missing key.
func (c *check) verifyRRset(s *rrset, zone string, keys []*dns.DNSKEY) (verified, Result) {
	if len(s.sigs) == 0 {
		return verified{}, bogus(dns.ExtendedErrorCodeRRSIGsMissing, "%s/%s has no RRSIG", s.name, dns.TypeToString[s.rtype])
	}
	owner := canonical(s.name)
	ownerLabels := dns.CountLabel(owner)
	if strings.HasPrefix(owner, "*.") {
		ownerLabels--
	}
	var fail Result
	rank := 0
	note := func(r Result, n int) {
		if n > rank {
			fail, rank = r, n
		}
	}
	for _, sig := range s.sigs {
		if !strings.EqualFold(canonical(sig.SignerName), zone) {
			note(bogus(dns.ExtendedErrorCodeDNSBogus, "%s/%s RRSIG signed by %s, expected %s", s.name, dns.TypeToString[s.rtype], sig.SignerName, zone), 1)
			continue
		}
		if !algorithmSupported(sig.Algorithm) {
			note(bogus(dns.ExtendedErrorCodeDNSBogus, "%s/%s RRSIG of unsupported algorithm %d", s.name, dns.TypeToString[s.rtype], sig.Algorithm), 1)
			continue
		}
		if int(sig.Labels) > ownerLabels {
			note(bogus(dns.ExtendedErrorCodeDNSBogus, "%s/%s RRSIG labels %d above the owner's %d", s.name, dns.TypeToString[s.rtype], sig.Labels, ownerLabels), 3)
			continue
		}
		if w := window(sig, c.now, c.v.skew); w.Security != Secure {
			note(w, 4)
			continue
		}
		matched := false
		for _, k := range keys {
			if k.KeyTag() != sig.KeyTag || k.Algorithm != sig.Algorithm {
				continue
			}
			matched = true
			if err := sig.Verify(k, s.rrs); err != nil {
				note(bogus(dns.ExtendedErrorCodeDNSBogus, "%s/%s RRSIG by %s key %d does not verify: %v", s.name, dns.TypeToString[s.rtype], zone, sig.KeyTag, err), 3)
				continue
			}
			exp := expiry(sig, c.now)
			if o := c.now.Add(time.Duration(sig.OrigTtl) * time.Second); o.Before(exp) {
				exp = o
			}
			return verified{labels: sig.Labels, expires: exp}, Result{Security: Secure}
		}
		if !matched {
			note(bogus(dns.ExtendedErrorCodeDNSKEYMissing, "%s/%s RRSIG names key %d (algorithm %d) that %s's DNSKEY RRset lacks", s.name, dns.TypeToString[s.rtype], sig.KeyTag, sig.Algorithm, zone), 2)
		}
	}
	return verified{}, fail
}

// usableKeys are the keys of a DNSKEY RRset that may verify signatures:
// zone keys, protocol 3, not revoked (RFC 5011), of a supported algorithm.
func usableKeys(rrs []dns.RR) []*dns.DNSKEY {
	var out []*dns.DNSKEY
	for _, rr := range rrs {
		k, ok := rr.(*dns.DNSKEY)
		if !ok || k.Flags&dns.ZONE == 0 || k.Flags&dns.REVOKE != 0 || k.Protocol != 3 || !algorithmSupported(k.Algorithm) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// usableDS filters a DS RRset to the records the validator can use: a
// supported algorithm and digest, SHA-1 only when no other digest is
// usable. With none left, it says why (for the insecure result).
func usableDS(set []*dns.DS) ([]*dns.DS, Result) {
	var strong, sha1 []*dns.DS
	algOK, digestOK := false, false
	for _, ds := range set {
		a := algorithmSupported(ds.Algorithm)
		d := digestSupported(ds.DigestType)
		algOK = algOK || a
		digestOK = digestOK || d
		if !a || !d {
			continue
		}
		if ds.DigestType == dns.SHA1 {
			sha1 = append(sha1, ds)
		} else {
			strong = append(strong, ds)
		}
	}
	if len(strong) > 0 {
		return strong, Result{}
	}
	if len(sha1) > 0 {
		return sha1, Result{}
	}
	if !algOK {
		return nil, insecure(dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm, "no DS of a supported algorithm")
	}
	if !digestOK {
		return nil, insecure(dns.ExtendedErrorCodeUnsupportedDSDigestType, "no DS of a supported digest type")
	}
	return nil, insecure(dns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm, "no DS of both a supported algorithm and digest type")
}

// zoneKeys fetches zone's DNSKEY RRset and validates it against trusted
// DS records or trusted keys: a key the anchor or a DS matches must sign
// the RRset. It returns the state to remember for zone.
func (c *check) zoneKeys(ctx context.Context, zone string, ds []*dns.DS, trusted []*dns.DNSKEY) zoneState {
	msg, err := c.ks.Fetch(ctx, KeyQuery{Name: zone, Type: dns.TypeDNSKEY, Zone: zone})
	if err != nil {
		return zoneState{kind: insecureCut, res: bogus(dns.ExtendedErrorCodeNoReachableAuthority, "fetching %s DNSKEY: %v", zone, err)}
	}
	var set *rrset
	for _, s := range group(msg.Answer) {
		if s.rtype == dns.TypeDNSKEY && strings.EqualFold(canonical(s.name), zone) {
			set = s
		}
	}
	if set == nil {
		return zoneState{kind: insecureCut, res: bogus(dns.ExtendedErrorCodeDNSKEYMissing, "%s has no DNSKEY RRset", zone)}
	}
	all := usableKeys(set.rrs)
	var entry []*dns.DNSKEY
	for _, k := range all {
		for _, t := range trusted {
			if k.Algorithm == t.Algorithm && k.Flags == t.Flags && k.PublicKey == t.PublicKey {
				entry = append(entry, k)
			}
		}
		for _, d := range ds {
			if k.KeyTag() != d.KeyTag || k.Algorithm != d.Algorithm {
				continue
			}
			if got := k.ToDS(d.DigestType); got != nil && strings.EqualFold(got.Digest, d.Digest) {
				entry = append(entry, k)
			}
		}
	}
	if len(entry) == 0 {
		return zoneState{kind: insecureCut, res: bogus(dns.ExtendedErrorCodeDNSKEYMissing, "no DNSKEY of %s matches its DS or trust anchor", zone)}
	}
	v, res := c.verifyRRset(set, zone, entry)
	if res.Security != Secure {
		return zoneState{kind: insecureCut, res: res}
	}
	expires := c.now.Add(time.Duration(set.ttl()) * time.Second)
	if v.expires.Before(expires) {
		expires = v.expires
	}
	return zoneState{kind: secureZone, zone: zone, keys: all, res: Result{Security: Secure}, expires: expires}
}

// chain walks from the trust anchor closest to target down to target, one
// label at a time, and returns the deepest zone at or above target whose
// keys validated (kind secureZone), or a state of kind insecureCut whose res
// says whether an insecure delegation or a bogus link ended the walk. With
// no anchor above target the result is Indeterminate.
func (c *check) chain(ctx context.Context, target string) zoneState {
	target = canonical(target)
	a := c.v.anchors.closest(target)
	if a == nil {
		return zoneState{kind: insecureCut, res: Result{Security: Indeterminate, Why: "no trust anchor covers " + target}}
	}
	cur, ok := c.v.cached(a.zone, c.now)
	if !ok {
		ds, why := a.ds, Result{}
		if len(ds) > 0 {
			ds, why = usableDS(ds)
		}
		if len(ds) == 0 && len(a.keys) == 0 {
			cur = zoneState{kind: insecureCut, res: why}
		} else {
			cur = c.zoneKeys(ctx, a.zone, ds, a.keys)
		}
		if cur.res.Security != Bogus {
			c.v.remember(a.zone, cur, c.now)
		}
	}
	if cur.kind != secureZone {
		return cur
	}
	from := dns.CountLabel(a.zone)
	to := dns.CountLabel(target)
	for n := from + 1; n <= to; n++ {
		name := ancestorAt(target, n)
		st, ok := c.v.cached(name, c.now)
		if !ok {
			st = c.cut(ctx, name, cur)
			if st.res.Security != Bogus {
				c.v.remember(name, st, c.now)
			}
		}
		switch st.kind {
		case secureZone:
			cur = st
		case noCut:
		case noName:
			// Nothing exists below a name that does not exist: the walk
			// ends in the zone above it.
			return cur
		default:
			return st
		}
	}
	return cur
}

// cut finds out whether name, a child of the secure zone parent knows, is
// a zone cut: a signed DS RRset makes it a secure zone (its keys fetched and
// validated), a proven absent DS at a delegation an insecure cut, a proof
// that name is no delegation a noCut.
func (c *check) cut(ctx context.Context, name string, parent zoneState) zoneState {
	msg, err := c.ks.Fetch(ctx, KeyQuery{Name: name, Type: dns.TypeDS, Zone: parent.zone})
	if err != nil {
		return zoneState{kind: insecureCut, res: bogus(dns.ExtendedErrorCodeNoReachableAuthority, "fetching %s DS: %v", name, err)}
	}
	if msg.Rcode != dns.RcodeSuccess && msg.Rcode != dns.RcodeNameError {
		return zoneState{kind: insecureCut, res: bogus(dns.ExtendedErrorCodeDNSBogus, "%s DS query answered %s", name, dns.RcodeToString[msg.Rcode])}
	}
	for _, s := range group(msg.Answer) {
		if !strings.EqualFold(canonical(s.name), name) {
			continue
		}
		switch s.rtype {
		case dns.TypeDS:
			v, res := c.verifyRRset(s, parent.zone, parent.keys)
			if res.Security != Secure {
				return zoneState{kind: insecureCut, res: res}
			}
			var ds []*dns.DS
			for _, rr := range s.rrs {
				if d, ok := rr.(*dns.DS); ok {
					ds = append(ds, d)
				}
			}
			usable, why := usableDS(ds)
			if len(usable) == 0 {
				why.Why = name + ": " + why.Why
				return zoneState{kind: insecureCut, res: why, expires: c.ttlExpiry(s, v)}
			}
			st := c.zoneKeys(ctx, name, usable, nil)
			if exp := c.ttlExpiry(s, v); st.kind == secureZone && exp.Before(st.expires) {
				st.expires = exp
			}
			return st
		case dns.TypeCNAME:
			// A CNAME owner holds no other data (RFC 2181 §10.1), so it is no
			// delegation.
			v, res := c.verifyRRset(s, parent.zone, parent.keys)
			if res.Security != Secure {
				return zoneState{kind: insecureCut, res: res}
			}
			return zoneState{kind: noCut, expires: c.ttlExpiry(s, v)}
		}
	}
	// No DS: the authority section must prove its absence.
	d, res := c.denial(msg.Ns, parent)
	if res.Security != Secure {
		res.Why = name + " DS: " + res.Why
		return zoneState{kind: insecureCut, res: res}
	}
	switch d.dsProof(name, msg.Rcode == dns.RcodeNameError) {
	case proofSecureCut:
		return zoneState{kind: insecureCut, res: bogus(dns.ExtendedErrorCodeDNSBogus, "%s: the proof shows a DS the answer lacks", name)}
	case proofInsecure:
		return zoneState{kind: insecureCut, res: insecure(0, "%s: delegation proven unsigned (no DS)", name), expires: d.expires}
	case proofOptOut:
		return zoneState{kind: insecureCut, res: insecure(0, "%s: delegation in an NSEC3 opt-out span", name), expires: d.expires}
	case proofNoCut:
		return zoneState{kind: noCut, expires: d.expires}
	case proofNoName:
		return zoneState{kind: noName, expires: d.expires}
	case proofIterations:
		return zoneState{kind: insecureCut, res: insecure(dns.ExtendedErrorCodeUnsupportedNSEC3IterValue, "%s: NSEC3 iterations above %d", name, c.v.maxIter), expires: d.expires}
	case proofUnknownHash:
		return zoneState{kind: insecureCut, res: insecure(0, "%s: NSEC3 records of an unknown hash algorithm only", name), expires: d.expires}
	}
	return zoneState{kind: insecureCut, res: bogus(dns.ExtendedErrorCodeNSECMissing, "%s DS: absence not proven", name)}
}

// ttlExpiry is when a validated RRset stops being usable: its TTL or its
// signature's expiry, whichever comes first.
func (c *check) ttlExpiry(s *rrset, v verified) time.Time {
	e := c.now.Add(time.Duration(s.ttl()) * time.Second)
	if !v.expires.IsZero() && v.expires.Before(e) {
		return v.expires
	}
	return e
}
