package validate

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Anchors are the trust anchors validation starts from: per zone, DS records
// the zone's DNSKEY RRset must match, or DNSKEY records trusted as they are.
// An Anchors is not changed after it is built, so it may be shared.
type Anchors struct {
	zones map[string]*anchor
}

// anchor is one zone's trust anchor.
type anchor struct {
	zone string
	ds   []*dns.DS
	keys []*dns.DNSKEY
}

// RootAnchors returns the built-in trust anchors: the root zone's KSKs as
// IANA publishes them.
func RootAnchors() *Anchors {
	a, err := ParseAnchors(strings.NewReader(rootAnchors), "built-in root anchors")
	if err != nil {
		// The built-in text is a constant checked by the package's tests.
		panic(err)
	}
	return a
}

// LoadAnchors reads a trust-anchor file: DS or DNSKEY records in zone-file
// syntax (as -trust-anchor FILE takes them).
func LoadAnchors(path string) (*Anchors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("validate: trust anchors: %w", err)
	}
	defer f.Close()
	return ParseAnchors(f, path)
}

// maxAnchorBytes bounds a trust-anchor file: a few records are a few hundred
// bytes, and a file far above that is not a trust-anchor file.
const maxAnchorBytes = 1 << 20

// ParseAnchors reads DS and DNSKEY records in zone-file syntax from r; file
// names the source in errors. Comments, $ORIGIN and $TTL are allowed; any
// other record type, a DNSKEY without the zone-key flag, a DS or DNSKEY of an
// algorithm or digest type the validator cannot use, or an empty input is an
// error that says what and where.
func ParseAnchors(r io.Reader, file string) (*Anchors, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxAnchorBytes+1))
	if err != nil {
		return nil, fmt.Errorf("validate: trust anchors %s: %w", file, err)
	}
	if len(data) > maxAnchorBytes {
		return nil, fmt.Errorf("validate: trust anchors %s: larger than %d bytes", file, maxAnchorBytes)
	}
	zp := dns.NewZoneParser(strings.NewReader(string(data)), ".", file)
	zp.SetIncludeAllowed(false)
	// Trust-anchor files often leave the TTL out; it plays no part.
	zp.SetDefaultTTL(3600)
	a := &Anchors{zones: map[string]*anchor{}}
	n := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		where := fmt.Sprintf("%s: record %d (%s %s)", file, n+1, h.Name, dns.TypeToString[h.Rrtype])
		if h.Class != dns.ClassINET {
			return nil, fmt.Errorf("validate: trust anchors %s: class %s, want IN", where, dns.ClassToString[h.Class])
		}
		zone := dns.CanonicalName(h.Name)
		z := a.zones[zone]
		if z == nil {
			z = &anchor{zone: zone}
		}
		switch rr := rr.(type) {
		case *dns.DS:
			if !algorithmSupported(rr.Algorithm) {
				return nil, fmt.Errorf("validate: trust anchors %s: algorithm %d is not one this validator supports (8, 10, 13, 14, 15)", where, rr.Algorithm)
			}
			if !digestSupported(rr.DigestType) {
				return nil, fmt.Errorf("validate: trust anchors %s: digest type %d is not one this validator supports (1, 2, 4)", where, rr.DigestType)
			}
			if want := digestLen(rr.DigestType); len(rr.Digest) != 2*want {
				return nil, fmt.Errorf("validate: trust anchors %s: digest of %d hex digits, digest type %d has %d", where, len(rr.Digest), rr.DigestType, 2*want)
			}
			z.ds = append(z.ds, rr)
		case *dns.DNSKEY:
			if rr.Flags&dns.ZONE == 0 {
				return nil, fmt.Errorf("validate: trust anchors %s: DNSKEY %d lacks the zone-key flag", where, rr.KeyTag())
			}
			if rr.Protocol != 3 {
				return nil, fmt.Errorf("validate: trust anchors %s: DNSKEY protocol %d, want 3", where, rr.Protocol)
			}
			if !algorithmSupported(rr.Algorithm) {
				return nil, fmt.Errorf("validate: trust anchors %s: algorithm %d is not one this validator supports (8, 10, 13, 14, 15)", where, rr.Algorithm)
			}
			if err := keyWellFormed(rr); err != nil {
				return nil, fmt.Errorf("validate: trust anchors %s: DNSKEY public key does not decode: %w", where, err)
			}
			z.keys = append(z.keys, rr)
		default:
			return nil, fmt.Errorf("validate: trust anchors %s: only DS and DNSKEY records can be trust anchors", where)
		}
		a.zones[zone] = z
		n++
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("validate: trust anchors: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("validate: trust anchors %s: no DS or DNSKEY record", file)
	}
	return a, nil
}

// closest returns the anchor of the deepest anchored zone at or above name,
// or nil.
func (a *Anchors) closest(name string) *anchor {
	if a == nil {
		return nil
	}
	name = dns.CanonicalName(name)
	for {
		if z := a.zones[name]; z != nil {
			return z
		}
		if name == "." {
			return nil
		}
		i, end := dns.NextLabel(name, 0)
		if end {
			name = "."
		} else {
			name = name[i:]
		}
	}
}

// Zones returns the anchored zones, sorted.
func (a *Anchors) Zones() []string {
	out := make([]string, 0, len(a.zones))
	for z := range a.zones {
		out = append(out, z)
	}
	sort.Strings(out)
	return out
}

// digestLen is the length in bytes of a DS digest of type t.
func digestLen(t uint8) int {
	switch t {
	case dns.SHA1:
		return 20
	case dns.SHA256:
		return 32
	case dns.SHA384:
		return 48
	}
	return 0
}

// keyWellFormed checks that k's public key has the shape its algorithm
// gives it (RFC 3110 for RSA, RFC 6605 for ECDSA, RFC 8080 for Ed25519).
func keyWellFormed(k *dns.DNSKEY) error {
	b, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil {
		return err
	}
	want := 0
	switch k.Algorithm {
	case dns.ECDSAP256SHA256:
		want = 64
	case dns.ECDSAP384SHA384:
		want = 96
	case dns.ED25519:
		want = 32
	case dns.RSASHA256, dns.RSASHA512:
		if len(b) < 3 {
			return errors.New("RSA key too short")
		}
		explen, off := int(b[0]), 1
		if explen == 0 {
			explen, off = int(b[1])<<8|int(b[2]), 3
		}
		if explen == 0 || len(b)-off-explen < 64 {
			return fmt.Errorf("RSA key of %d bytes has no room for a 512-bit modulus after a %d-byte exponent", len(b), explen)
		}
		return nil
	}
	if len(b) != want {
		return fmt.Errorf("%d bytes, algorithm %d keys have %d", len(b), k.Algorithm, want)
	}
	return nil
}
