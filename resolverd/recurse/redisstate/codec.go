// Package redisstate shares what the iterator (resolverd/recurse) learns
// across a fleet of resolvers, in the Redis tier of the answer cache:
// delegations (NS RRsets with their glue addresses), the answers learnt on
// the way (DNSKEY and DS RRsets with their RRSIGs among them) and the
// servers' RTT, EDNS support and lameness. Layered puts the in-memory
// recurse.MemCache in front of Store; Servers implements
// recurse.ServerShare. Keys, one hash tag per owner name so that a zone's
// delegation, DNSKEY and DS live on one shard:
//
//	rs:{<zone>}:deleg        a delegation; Redis TTL: the NS RRset's
//	rs:{<name>}:<TYPE>[:do]  an answer for (name, TYPE), ":do" when asked
//	                         with DNSSEC OK (with signatures); TTL: the answer's
//	rs:srv:{<address>}       a hash of a server's state; TTL: ServerTTL
//
// Every value read is checked against its key before use (a value for
// another name, of another version, too large or that does not parse is a
// miss, counted); Redis errors and timeouts are misses too.
package redisstate

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/resolverd/recurse"
)

// Value layout of rs:{…}:deleg and rs:{…}:<TYPE>:
//
//	"RS" | version (1 byte) | kind ('D' delegation, 'A' answer) |
//	stored at (unix seconds, 8 bytes, big endian) |
//	TTL given to the write (seconds, 4 bytes, big endian) |
//	a DNS message in wire format
//
// A delegation's message has the question (zone, NS), the NS RRset in the
// authority section and the name servers' addresses (A, AAAA) in the
// additional section. An answer's is the answer as the iterator got it.
const (
	magic       = "RS"
	version     = 1
	kindDeleg   = 'D'
	kindAnswer  = 'A'
	headerLen   = 2 + 1 + 1 + 8 + 4
	MaxValueLen = 16 << 10 // bytes; larger values are neither written nor read
	maxNS       = 32       // name servers kept of a delegation
)

// Reject reasons, the labels of shardns_recurse_shared_rejected_total.
const (
	RejectVersion   = "version"   // not this layout or version
	RejectMalformed = "malformed" // does not parse
	RejectKey       = "key"       // parses, but is not the value of its key
	RejectSize      = "size"      // larger than MaxValueLen, or too many records
)

// RejectError is why a value read from Redis was refused.
type RejectError struct {
	Key    string
	Reason string // one of the Reject constants
	Err    error
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("redisstate: %s: %s: %v", e.Key, e.Reason, e.Err)
}

func (e *RejectError) Unwrap() error { return e.Err }

func reject(key, reason, format string, args ...any) error {
	return &RejectError{Key: key, Reason: reason, Err: fmt.Errorf(format, args...)}
}

// DelegationKey is the key of zone's delegation (zone lower case, fully
// qualified, in presentation format).
func DelegationKey(zone string) string { return "rs:{" + zone + "}:deleg" }

// AnswerKey is the key of the answer for (name, qtype), asked with the
// DNSSEC OK bit when do is set: answers with signatures and proofs are
// kept apart from answers without, which a validator would find bogus.
func AnswerKey(name string, qtype uint16, do bool) string {
	k := "rs:{" + name + "}:" + typeString(qtype)
	if do {
		k += ":do"
	}
	return k
}

// ServerKey is the key of the hash of addr's state.
func ServerKey(addr netip.Addr) string { return "rs:srv:{" + addr.String() + "}" }

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

// encode lays out m with the header; nil when it packs larger than
// MaxValueLen or does not pack.
func encode(kind byte, m *dns.Msg, stored time.Time, ttl time.Duration) []byte {
	m.Compress = true
	wire, err := m.Pack()
	if err != nil || headerLen+len(wire) > MaxValueLen {
		return nil
	}
	b := make([]byte, headerLen, headerLen+len(wire))
	copy(b, magic)
	b[2], b[3] = version, kind
	binary.BigEndian.PutUint64(b[4:], uint64(stored.Unix()))
	binary.BigEndian.PutUint32(b[12:], uint32(min(ttl/time.Second, 1<<31)))
	return append(b, wire...)
}

// decode checks b's header (kind expected) and returns its message, the
// time it was stored and the TTL it was stored for.
func decode(key string, kind byte, b []byte) (*dns.Msg, time.Time, time.Duration, error) {
	if len(b) > MaxValueLen {
		return nil, time.Time{}, 0, reject(key, RejectSize, "%d bytes, more than %d", len(b), MaxValueLen)
	}
	if len(b) < headerLen || string(b[:2]) != magic {
		return nil, time.Time{}, 0, reject(key, RejectVersion, "no %q header", magic)
	}
	if b[2] != version {
		return nil, time.Time{}, 0, reject(key, RejectVersion, "version %d, want %d", b[2], version)
	}
	if b[3] != kind {
		return nil, time.Time{}, 0, reject(key, RejectKey, "kind %q, want %q", b[3], kind)
	}
	stored := time.Unix(int64(binary.BigEndian.Uint64(b[4:])), 0)
	ttl := time.Duration(binary.BigEndian.Uint32(b[12:])) * time.Second
	m := new(dns.Msg)
	if err := m.Unpack(b[headerLen:]); err != nil {
		return nil, time.Time{}, 0, reject(key, RejectMalformed, "message at byte %d: %v", headerLen, err)
	}
	return m, stored, ttl, nil
}

// encodeDelegation lays out d.
func encodeDelegation(d *recurse.Delegation, stored time.Time, ttl time.Duration) []byte {
	m := new(dns.Msg)
	m.SetQuestion(d.Zone, dns.TypeNS)
	for _, ns := range d.NS {
		m.Ns = append(m.Ns, &dns.NS{Hdr: dns.RR_Header{Name: d.Zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: d.TTL}, Ns: ns})
		for _, a := range d.Addrs[ns] {
			hdr := dns.RR_Header{Name: ns, Class: dns.ClassINET, Ttl: d.TTL}
			if a.Is4() {
				hdr.Rrtype = dns.TypeA
				m.Extra = append(m.Extra, &dns.A{Hdr: hdr, A: a.AsSlice()})
			} else {
				hdr.Rrtype = dns.TypeAAAA
				m.Extra = append(m.Extra, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
			}
		}
	}
	return encode(kindDeleg, m, stored, ttl)
}

// decodeDelegation reads the delegation of zone from b, checking that it
// is zone's: its question, every NS record's owner, and every address's
// owner among the name servers.
func decodeDelegation(zone string, b []byte) (*recurse.Delegation, time.Time, time.Duration, error) {
	key := DelegationKey(zone)
	m, stored, ttl, err := decode(key, kindDeleg, b)
	if err != nil {
		return nil, stored, ttl, err
	}
	if len(m.Question) != 1 || m.Question[0].Qtype != dns.TypeNS || m.Question[0].Name != zone {
		return nil, stored, ttl, reject(key, RejectKey, "question %v is not %s NS", m.Question, zone)
	}
	if len(m.Ns) == 0 {
		return nil, stored, ttl, reject(key, RejectMalformed, "no NS record")
	}
	if len(m.Ns) > maxNS || len(m.Extra) > 4*maxNS {
		return nil, stored, ttl, reject(key, RejectSize, "%d NS and %d addresses", len(m.Ns), len(m.Extra))
	}
	d := &recurse.Delegation{Zone: zone, Addrs: map[string][]netip.Addr{}}
	for i, rr := range m.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok || ns.Hdr.Name != zone {
			return nil, stored, ttl, reject(key, RejectKey, "authority record %d (%s %s) is not an NS of %s", i, rr.Header().Name, typeString(rr.Header().Rrtype), zone)
		}
		name := strings.ToLower(ns.Ns)
		if !contains(d.NS, name) {
			d.NS = append(d.NS, name)
		}
		if i == 0 || ns.Hdr.Ttl < d.TTL {
			d.TTL = ns.Hdr.Ttl
		}
	}
	for i, rr := range m.Extra {
		owner := strings.ToLower(rr.Header().Name)
		var a netip.Addr
		switch v := rr.(type) {
		case *dns.A:
			a, _ = netip.AddrFromSlice(v.A.To4())
		case *dns.AAAA:
			a, _ = netip.AddrFromSlice(v.AAAA)
		default:
			return nil, stored, ttl, reject(key, RejectMalformed, "additional record %d is %s, not an address", i, typeString(rr.Header().Rrtype))
		}
		if !contains(d.NS, owner) || !a.IsValid() {
			return nil, stored, ttl, reject(key, RejectKey, "address %d owned by %s, not a name server of %s", i, owner, zone)
		}
		d.Addrs[owner] = append(d.Addrs[owner], a)
	}
	return d, stored, ttl, nil
}

// decodeAnswer reads the answer for (name, qtype) from b, checking that
// it answers that question with NOERROR or NXDOMAIN.
func decodeAnswer(key, name string, qtype uint16, b []byte) (*dns.Msg, time.Time, time.Duration, error) {
	m, stored, ttl, err := decode(key, kindAnswer, b)
	if err != nil {
		return nil, stored, ttl, err
	}
	if len(m.Question) != 1 || m.Question[0].Qtype != qtype || m.Question[0].Qclass != dns.ClassINET || !strings.EqualFold(m.Question[0].Name, name) {
		return nil, stored, ttl, reject(key, RejectKey, "question %v is not %s %s", m.Question, name, typeString(qtype))
	}
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return nil, stored, ttl, reject(key, RejectKey, "RCODE %s is not an answer's", dns.RcodeToString[m.Rcode])
	}
	if owner, ok := chained(m.Answer, name); !ok {
		return nil, stored, ttl, reject(key, RejectKey, "answer record owned by %s, off the chain from %s", owner, name)
	}
	return m, stored, ttl, nil
}

// chained reports whether every record of answer belongs to the answer
// for name: owned by name, by a name its CNAME and DNAME records lead to,
// or a DNAME owned above one of those. Otherwise it returns the first
// owner that does not.
func chained(answer []dns.RR, name string) (string, bool) {
	reached := map[string]bool{strings.ToLower(name): true}
	for range len(answer) + 1 { // each pass adds a link, or nothing
		grew := false
		for _, rr := range answer {
			owner := strings.ToLower(rr.Header().Name)
			var next string
			switch v := rr.(type) {
			case *dns.CNAME:
				if reached[owner] {
					next = strings.ToLower(v.Target)
				}
			case *dns.DNAME:
				for r := range reached {
					if r != owner && dns.IsSubDomain(owner, r) {
						if t := r[:len(r)-len(owner)] + strings.ToLower(v.Target); !reached[t] && len(t) <= 255 {
							next = t
							break
						}
					}
				}
			}
			if next != "" && !reached[next] {
				reached[next], grew = true, true
			}
		}
		if !grew {
			break
		}
	}
	for _, rr := range answer {
		owner := strings.ToLower(rr.Header().Name)
		if reached[owner] {
			continue
		}
		above := false
		for r := range reached {
			if dns.IsSubDomain(owner, r) {
				above = true
				break
			}
		}
		if !above || !isDNAMEOrSig(rr) {
			return owner, false
		}
	}
	return "", true
}

// isDNAMEOrSig: a DNAME, or an RRSIG covering one.
func isDNAMEOrSig(rr dns.RR) bool {
	switch v := rr.(type) {
	case *dns.DNAME:
		return true
	case *dns.RRSIG:
		return v.TypeCovered == dns.TypeDNAME
	}
	return false
}

// remaining is what is left at now of ttl from stored; 0 when nothing.
func remaining(stored time.Time, ttl time.Duration, now time.Time) time.Duration {
	left := stored.Add(ttl).Sub(now).Truncate(time.Second)
	if left <= 0 {
		return 0
	}
	return left
}

// age lowers the TTLs of m's records by the seconds since stored.
func age(m *dns.Msg, stored, now time.Time) {
	secs := uint32(max(now.Sub(stored)/time.Second, 0))
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				h.Ttl -= min(h.Ttl, secs)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
