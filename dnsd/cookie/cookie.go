// Package cookie makes and checks DNS server cookies (RFC 7873) in the
// interoperable form of RFC 9018: version 1, three reserved octets, a
// 32-bit timestamp and a SipHash-2-4 of the client cookie, those eight
// octets and the client's address, keyed with a 16-octet secret. Servers
// that share the secret (a fleet's frontends, or BIND, Knot and Unbound set
// up with it) accept each other's cookies.
//
// A client that returns a valid server cookie has shown that it receives
// what is sent to its address: dnsd lets it past the rate limiter.
package cookie

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/dchest/siphash"
)

// Lengths of a COOKIE option's parts (RFC 7873 §4, RFC 9018 §4).
const (
	ClientLen = 8  // the client cookie
	ServerLen = 16 // a server cookie this package makes
	minServer = 8  // the shortest server cookie RFC 7873 allows
	maxServer = 32 // and the longest
	// ReplyLen is the option data of every cookie a reply carries: the
	// client cookie and a server cookie of ours.
	ReplyLen = ClientLen + ServerLen
)

// The lifetime of a server cookie (RFC 9018 §4.3).
const (
	// MaxAge: an older cookie is refused.
	MaxAge = time.Hour
	// RenewAge: an older cookie is still accepted, and replaced in the
	// reply by a new one.
	RenewAge = 30 * time.Minute
	// MaxSkew: a cookie stamped further ahead than this is refused (the
	// clocks of a fleet's servers may differ a little).
	MaxSkew = 5 * time.Minute
)

// version is RFC 9018's server cookie version.
const version = 1

// Verdict is what Check makes of a query's COOKIE option.
type Verdict uint8

const (
	// ClientOnly is a client cookie alone: the client has no server cookie
	// of ours yet (RFC 7873 §5.2.3).
	ClientOnly Verdict = iota + 1
	// Valid is a server cookie of ours for this client, made under
	// RenewAge ago: the reply echoes it.
	Valid
	// Renew is a server cookie of ours for this client, made between
	// RenewAge and MaxAge ago, or under a secret no longer the first: the
	// reply carries a new one.
	Renew
	// Invalid is a server cookie that is not ours for this client: another
	// length or version, or a hash that does not verify (RFC 7873 §5.2.4).
	Invalid
	// Expired is a server cookie of ours made more than MaxAge ago.
	Expired
	// Future is a server cookie of ours stamped more than MaxSkew ahead.
	Future
	// Malformed is an option of a length RFC 7873 §5.2.2 answers with
	// FORMERR: not 8, nor 16 to 40 octets.
	Malformed
)

// Verified reports whether v proves the client's address: a server cookie
// of ours, for this client, within its lifetime.
func (v Verdict) Verified() bool { return v == Valid || v == Renew }

// String names v as the metrics do.
func (v Verdict) String() string {
	switch v {
	case ClientOnly:
		return "client_only"
	case Valid:
		return "valid"
	case Renew:
		return "renewed"
	case Invalid:
		return "invalid"
	case Expired:
		return "expired"
	case Future:
		return "future"
	case Malformed:
		return "malformed"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// Verdicts lists every Verdict, for callers that prepare one counter each.
var Verdicts = [...]Verdict{ClientOnly, Valid, Renew, Invalid, Expired, Future, Malformed}

// Split returns the client and server cookies of a COOKIE option's data.
// ok is false for a length RFC 7873 §5.2.2 calls malformed: not 8, nor 16
// to 40 octets. server is empty for a client cookie alone. Both alias opt.
func Split(opt []byte) (client, server []byte, ok bool) {
	n := len(opt)
	if n != ClientLen && (n < ClientLen+minServer || n > ClientLen+maxServer) {
		return nil, nil, false
	}
	return opt[:ClientLen], opt[ClientLen:], true
}

// Config is what New needs.
type Config struct {
	// Secrets are the keys: the first makes cookies, every one is
	// accepted when checking them, so that a fleet can roll its secret
	// over (RFC 9018 §5). At least one is required.
	Secrets []Secret
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Issuer makes server cookies and checks those clients return. It is safe
// for concurrent use and allocates nothing.
type Issuer struct {
	keys []sipKey
	now  func() time.Time
}

// sipKey is a Secret as SipHash takes it.
type sipKey struct{ k0, k1 uint64 }

// New returns an Issuer for cfg.
func New(cfg Config) (*Issuer, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("cookie: no secret")
	}
	c := &Issuer{now: cfg.Now}
	if c.now == nil {
		c.now = time.Now
	}
	for _, s := range cfg.Secrets {
		c.keys = append(c.keys, sipKey{binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:])})
	}
	return c, nil
}

// Check judges a query's COOKIE option data, sent from client.
func (c *Issuer) Check(opt []byte, client netip.Addr) Verdict {
	cc, sc, ok := Split(opt)
	switch {
	case !ok:
		return Malformed
	case len(sc) == 0:
		return ClientOnly
	case len(sc) != ServerLen || sc[0] != version:
		return Invalid
	}
	key := -1
	var want [8]byte
	for i, k := range c.keys {
		binary.LittleEndian.PutUint64(want[:], k.hash(cc, sc[:8], client))
		if subtle.ConstantTimeCompare(want[:], sc[8:]) == 1 {
			key = i
			break
		}
	}
	if key < 0 {
		return Invalid
	}
	// Serial number arithmetic (RFC 1982): the timestamp wraps in 2106.
	age := int64(int32(c.stamp() - binary.BigEndian.Uint32(sc[4:8])))
	switch {
	case age > int64(MaxAge/time.Second):
		return Expired
	case age < -int64(MaxSkew/time.Second):
		return Future
	case key > 0 || age > int64(RenewAge/time.Second):
		return Renew
	}
	return Valid
}

// AppendReply appends to dst the COOKIE option data of the reply to a
// query whose option data was opt, judged v, from client: opt itself when
// v is Valid, else the client cookie and a new server cookie. A Malformed
// opt has no client cookie to echo: dst comes back as it was.
func (c *Issuer) AppendReply(dst, opt []byte, v Verdict, client netip.Addr) []byte {
	if v == Malformed || len(opt) < ClientLen {
		return dst
	}
	if v == Valid {
		return append(dst, opt[:ReplyLen]...)
	}
	return c.appendCookie(dst, opt[:ClientLen], client, c.stamp())
}

// appendCookie appends client, then the server cookie for it and addr at
// time ts, made with the first key.
func (c *Issuer) appendCookie(dst, client []byte, addr netip.Addr, ts uint32) []byte {
	dst = append(dst, client...)
	dst = append(dst, version, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, ts)
	n := len(dst)
	return binary.LittleEndian.AppendUint64(dst, c.keys[0].hash(client, dst[n-8:n], addr))
}

// stamp is the time now as RFC 9018 writes it: seconds since 1970, modulo
// 2^32.
func (c *Issuer) stamp() uint32 { return uint32(c.now().Unix()) }

// hash is RFC 9018 §4.4's SipHash-2-4 of the client cookie, the server
// cookie's first eight octets (version, reserved, timestamp) as received
// or made, and the client's address: four octets for IPv4 (an
// IPv4-mapped IPv6 address counts as IPv4), sixteen for IPv6.
func (k sipKey) hash(client, head []byte, addr netip.Addr) uint64 {
	var buf [ClientLen + 8 + 16]byte
	n := copy(buf[:], client)
	n += copy(buf[n:], head)
	addr = addr.Unmap()
	if addr.Is4() {
		a := addr.As4()
		n += copy(buf[n:], a[:])
	} else {
		a := addr.As16()
		n += copy(buf[n:], a[:])
	}
	return siphash.Hash(k.k0, k.k1, buf[:n])
}
