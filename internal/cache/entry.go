package cache

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// The first byte of every encoded entry is its version. Encode writes
// entryVersion when it can and entryV1 otherwise; Decode reads both, so a
// rolling upgrade keeps serving the entries older processes wrote in
// version 1. A reader that meets an unknown version treats the entry as a
// miss, so a later layout costs hits, never wrong answers. Version 2, the
// layout of version 3 without its question tag, is refused: nothing binds
// it to the key it is read under (see entrycheck.go).
const (
	entryV1      = 1
	entryV2      = 2
	entryVersion = 3
)

// headerLen is the fixed part of a version 1 entry:
//
//	0      version (1)
//	1      flags (reserved, 0)
//	2..9   stored-at, Unix milliseconds, big endian
//	10..13 original TTL in seconds
//	14..21 stale-until, Unix milliseconds
//	22..23 number of TTL offsets (n)
//	24..   n big-endian uint16 offsets into the message, then the message
const headerLen = 24

// A version 3 entry leaves out what the cache key already says and what
// Decode can work out, so that a small answer fits in a Redis embedded
// string (at most 44 bytes, one allocation with its object header):
//
//	0     version (3)
//	1..4  the question's tag (questionTag), big endian
//	5     form. Bit 7 clear: the compact form, for the header flags of a
//	      cached answer (QR and RA set; opcode, AA, TC and Z clear); the
//	      byte holds RD<<6 | AD<<5 | CD<<4 | RCODE and byte 6 the section
//	      counts ANCOUNT<<4 | NSCOUNT<<2 | ARCOUNT. 0x80: the full form,
//	      bytes 6..7 the header flags as in the message, then ANCOUNT,
//	      NSCOUNT and ARCOUNT as uvarints.
//	      Then stored-at (Unix milliseconds) and the TTL (seconds) as
//	      uvarints, and stale-until minus expiry as the uvarint d<<2 | unit,
//	      unit 0 hours, 1 seconds, 2 milliseconds, 3 minus (d+1) ms.
//	      Then the records: the packed message after its question section.
//
// The message's ID is 0 and its question is the key's: Decode rebuilds
// the 12-byte DNS header (QDCOUNT 1) and the question from the key, checks
// the tag against it, and finds the TTL offsets by walking the records.
// Compression pointers in the records may point into the question name, so
// a message is stored so only when its question name holds no upper-case
// letter (keys are lowercased, and Query.Upstream asks in lower case) and
// its offsets are the ones the walk finds; any other entry is written as
// version 1.
const (
	v3TagLen      = 4
	v3FormAt      = 1 + v3TagLen
	v2Full        = 0x80
	v2FlagsFixed  = 0x8080 // QR, RA: set in the compact form
	v2FlagsCoded  = 0x013F // RD, AD, CD, RCODE: carried by the compact form
	dnsHeaderLen  = 12
	staleHours    = 0
	staleSeconds  = 1
	staleMillis   = 2
	staleNegative = 3
)

// ErrMiss is returned by a tier that holds no entry for a key.
var ErrMiss = errors.New("cache: miss")

// ErrCorrupt is returned by Decode for bytes that are not a valid entry.
var ErrCorrupt = errors.New("cache: corrupt entry")

// Entry is one cached DNS answer. Msg is the packed message as it will be
// served (ID 0, no OPT record); Offsets are the byte offsets of the TTL field
// of every resource record in Msg, so that a hit is answered by copying Msg
// and patching the ID and TTLs in place, without unpacking it.
//
// An Entry returned by a tier is shared: callers must not modify it.
type Entry struct {
	StoredAt   time.Time
	TTL        uint32    // seconds the answer is fresh after StoredAt
	StaleUntil time.Time // last instant the answer may be served stale
	Offsets    []uint16
	Msg        []byte
	// EDE is the Extended DNS Error (RFC 8914) the resolver gave with
	// this answer (a SERVFAIL saying why: DNSSEC bogus), for every reply
	// made from it; nil: none. It is not encoded, so an entry that has
	// one is never stored in a tier (lookup.NewEntry): only the lookup
	// chain's failure step holds it, in process, for a few seconds.
	EDE *ExtendedError
}

// ExtendedError is an Extended DNS Error (RFC 8914): its INFO-CODE and
// EXTRA-TEXT.
type ExtendedError struct {
	Code uint16
	Text string
}

// Expires is the instant the entry stops being fresh.
func (e *Entry) Expires() time.Time {
	return e.StoredAt.Add(time.Duration(e.TTL) * time.Second)
}

// Age is how long ago the entry was stored, never negative.
func (e *Entry) Age(now time.Time) time.Duration {
	if d := now.Sub(e.StoredAt); d > 0 {
		return d
	}
	return 0
}

// Fresh reports whether the entry is inside its TTL at now.
func (e *Entry) Fresh(now time.Time) bool { return now.Before(e.Expires()) }

// Usable reports whether the entry may still be served at now, fresh or stale.
func (e *Entry) Usable(now time.Time) bool {
	return e.Fresh(now) || now.Before(e.StaleUntil)
}

// Rcode is the RCODE of the stored answer (the low four bits: a stored
// answer has no OPT record to extend it).
func (e *Entry) Rcode() int {
	if len(e.Msg) < dnsHeaderLen {
		return 0
	}
	return int(e.Msg[3] & 0x0F)
}

// Size bounds the number of bytes the encoded entry takes: it is the
// version 1 length, which a version 3 encoding never exceeds (its header,
// at most 41 bytes, replaces version 1's 24, the offsets, the DNS header
// and a question of at least 5). The L1 counts entries by it.
func (e *Entry) Size() int { return headerLen + 2*len(e.Offsets) + len(e.Msg) }

// AppendEncode appends the encoded entry to dst and returns the result:
// version 3 when the entry allows it (see the layout above), else
// version 1. Either decodes only under the key of its question, which is
// the key it is stored under.
func (e *Entry) AppendEncode(dst []byte) []byte {
	if out, ok := e.appendV3(dst); ok {
		return out
	}
	return e.appendV1(dst)
}

// Encode returns the entry's bytes as stored in Redis.
func (e *Entry) Encode() []byte { return e.AppendEncode(make([]byte, 0, e.Size())) }

// appendV1 appends the version 1 encoding.
func (e *Entry) appendV1(dst []byte) []byte {
	var h [headerLen]byte
	h[0] = entryV1
	binary.BigEndian.PutUint64(h[2:], uint64(e.StoredAt.UnixMilli()))
	binary.BigEndian.PutUint32(h[10:], e.TTL)
	binary.BigEndian.PutUint64(h[14:], uint64(e.StaleUntil.UnixMilli()))
	binary.BigEndian.PutUint16(h[22:], uint16(len(e.Offsets)))
	dst = append(dst, h[:]...)
	for _, o := range e.Offsets {
		dst = binary.BigEndian.AppendUint16(dst, o)
	}
	return append(dst, e.Msg...)
}

// appendV3 appends the version 3 encoding, or returns false (and dst
// unchanged) for an entry that version 3 cannot hold exactly.
func (e *Entry) appendV3(dst []byte) ([]byte, bool) {
	msg := e.Msg
	if len(msg) < dnsHeaderLen || len(msg) > 0xffff ||
		binary.BigEndian.Uint16(msg) != 0 || binary.BigEndian.Uint16(msg[4:]) != 1 {
		return dst, false
	}
	qend, ok := lowerQuestionEnd(msg)
	if !ok {
		return dst, false
	}
	stored := e.StoredAt.UnixMilli()
	if stored < 0 {
		return dst, false
	}
	stale, ok := staleCode(e.StaleUntil.UnixMilli() - (stored + int64(e.TTL)*1000))
	if !ok {
		return dst, false
	}
	offs, err := dnsmsg.TTLOffsets(msg)
	if err != nil || !slices.Equal(offs, e.Offsets) {
		return dst, false
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	an, ns, ar := binary.BigEndian.Uint16(msg[6:]), binary.BigEndian.Uint16(msg[8:]), binary.BigEndian.Uint16(msg[10:])
	dst = append(dst, entryVersion)
	dst = binary.BigEndian.AppendUint32(dst, questionTag(msg[dnsHeaderLen:qend]))
	if flags&^v2FlagsCoded == v2FlagsFixed && an < 16 && ns < 4 && ar < 4 {
		dst = append(dst, byte(flags>>8&1)<<6|byte(flags&0x3F), byte(an<<4|ns<<2|ar))
	} else {
		dst = append(dst, v2Full, msg[2], msg[3])
		dst = binary.AppendUvarint(dst, uint64(an))
		dst = binary.AppendUvarint(dst, uint64(ns))
		dst = binary.AppendUvarint(dst, uint64(ar))
	}
	dst = binary.AppendUvarint(dst, uint64(stored))
	dst = binary.AppendUvarint(dst, uint64(e.TTL))
	dst = binary.AppendUvarint(dst, stale)
	return append(dst, msg[qend:]...), true
}

// lowerQuestionEnd returns the offset just past the question of msg (one
// question, after the 12-byte header) when its name is plain labels with no
// upper-case letter, so that packing the key's name gives the same bytes.
func lowerQuestionEnd(msg []byte) (int, bool) {
	off := dnsHeaderLen
	for {
		if off >= len(msg) {
			return 0, false
		}
		n := int(msg[off])
		if n == 0 {
			break
		}
		if n > 63 || off+1+n >= len(msg) {
			return 0, false
		}
		for _, c := range msg[off+1 : off+1+n] {
			if 'A' <= c && c <= 'Z' {
				return 0, false
			}
		}
		off += 1 + n
	}
	off += 1 + 4 // root label, type, class
	return off, off <= len(msg)
}

// staleCode codes d, stale-until minus expiry in milliseconds, in the
// fewest bytes for the usual windows (whole hours or seconds).
func staleCode(d int64) (uint64, bool) {
	const maxD = 1<<62 - 1
	switch {
	case d >= 0 && d%3_600_000 == 0:
		return uint64(d/3_600_000)<<2 | staleHours, true
	case d >= 0 && d%1000 == 0:
		return uint64(d/1000)<<2 | staleSeconds, true
	case d >= 0 && d <= maxD:
		return uint64(d)<<2 | staleMillis, true
	case d < 0 && -(d+1) <= maxD:
		return uint64(-(d+1))<<2 | staleNegative, true
	}
	return 0, false
}

// staleDelta reverses staleCode.
func staleDelta(c uint64) int64 {
	v := c >> 2
	switch c & 3 {
	case staleHours:
		return int64(v) * 3_600_000
	case staleSeconds:
		return int64(v) * 1000
	case staleMillis:
		return int64(v)
	}
	return -int64(v) - 1
}

// Decode parses an entry stored under key, which must be the cache key of
// the entry's question (see dnsmsg.Key), and checks it as entrycheck.go
// says: bytes that are not an answer to key's question that a client can
// parse are refused with a *CorruptError. So the caller can serve the
// message and patch it at the offsets without further checks. A version
// 1 entry's Msg aliases b; a version 3 entry's message is rebuilt from key
// and b into a new buffer.
func Decode(key string, b []byte) (*Entry, error) {
	if len(b) == 0 {
		return nil, corrupt(RejectMalformed, "empty")
	}
	switch b[0] {
	case entryV1:
		return decodeV1(key, b)
	case entryVersion:
		return decodeV3(key, b)
	case entryV2:
		return nil, corrupt(RejectVersion, "version 2 carries no question tag")
	}
	return nil, corrupt(RejectVersion, "version %d", b[0])
}

func decodeV1(key string, b []byte) (*Entry, error) {
	if len(b) < headerLen {
		return nil, corrupt(RejectMalformed, "%d bytes, shorter than the header", len(b))
	}
	n := int(binary.BigEndian.Uint16(b[22:]))
	if len(b) < headerLen+2*n {
		return nil, corrupt(RejectMalformed, "%d offsets do not fit", n)
	}
	e, offs := newEntry(n)
	*e = Entry{
		StoredAt:   time.UnixMilli(int64(binary.BigEndian.Uint64(b[2:]))),
		TTL:        binary.BigEndian.Uint32(b[10:]),
		StaleUntil: time.UnixMilli(int64(binary.BigEndian.Uint64(b[14:]))),
		Msg:        b[headerLen+2*n:],
	}
	msg := e.Msg
	if len(msg) < dnsHeaderLen || len(msg) > 0xffff {
		return nil, corrupt(RejectMalformed, "message of %d bytes", len(msg))
	}
	if err := checkFlags(binary.BigEndian.Uint16(msg[2:])); err != nil {
		return nil, err
	}
	if qd := binary.BigEndian.Uint16(msg[4:]); qd != 1 {
		return nil, corrupt(RejectQuestion, "%d questions", qd)
	}
	var q [256 + 4]byte
	qlen, err := keyQuestion(key, q[:])
	if err != nil {
		return nil, corrupt(RejectQuestion, "%v", err)
	}
	nameEnd, err := checkName(msg, dnsHeaderLen)
	if err != nil {
		return nil, err
	}
	qend := nameEnd + 4
	if qend > len(msg) {
		return nil, corrupt(RejectMalformed, "question past the end")
	}
	if !equalFold(msg[dnsHeaderLen:qend], q[:qlen]) {
		return nil, corrupt(RejectQuestion, "the message answers another question")
	}
	rrs, err := recordCount(msg, qend)
	if err != nil {
		return nil, err
	}
	if rrs != n {
		return nil, corrupt(RejectMalformed, "%d TTL offsets for %d records", n, rrs)
	}
	for i := range offs {
		offs[i] = binary.BigEndian.Uint16(b[headerLen+2*i:])
	}
	e.Offsets = offs
	if err := checkRecords(msg, qend, e.Offsets, true); err != nil {
		return nil, err
	}
	return e, nil
}

// v2Reader reads the uvarints of a version 3 header.
type v2Reader struct {
	b   []byte
	off int
	bad bool
}

func (r *v2Reader) uvarint(maxV uint64) uint64 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 || v > maxV {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

func decodeV3(key string, b []byte) (*Entry, error) {
	if len(b) < v3FormAt+2 {
		return nil, corrupt(RejectMalformed, "%d bytes, shorter than the header", len(b))
	}
	var q [256 + 4]byte
	qlen, err := keyQuestion(key, q[:])
	if err != nil {
		return nil, corrupt(RejectQuestion, "%v", err)
	}
	if binary.BigEndian.Uint32(b[1:]) != questionTag(q[:qlen]) {
		return nil, corrupt(RejectQuestion, "the entry's question tag is not its key's")
	}
	var flags, an, ns, ar uint16
	r := v2Reader{b: b, off: v3FormAt + 2}
	switch f := b[v3FormAt]; {
	case f&0x80 == 0:
		flags = v2FlagsFixed | uint16(f>>6&1)<<8 | uint16(f&0x3F)
		c := uint16(b[v3FormAt+1])
		an, ns, ar = c>>4, c>>2&3, c&3
	case f == v2Full && len(b) >= v3FormAt+3:
		flags = binary.BigEndian.Uint16(b[v3FormAt+1:])
		r.off = v3FormAt + 3
		an = uint16(r.uvarint(0xffff))
		ns = uint16(r.uvarint(0xffff))
		ar = uint16(r.uvarint(0xffff))
	default:
		return nil, corrupt(RejectMalformed, "header form %#x", f)
	}
	stored := r.uvarint(1<<63 - 1)
	ttl := r.uvarint(0xffffffff)
	stale := r.uvarint(1<<64 - 1)
	if r.bad {
		return nil, corrupt(RejectMalformed, "bad header")
	}
	if err := checkFlags(flags); err != nil {
		return nil, err
	}
	records := b[r.off:]
	if dnsHeaderLen+qlen+len(records) > 0xffff {
		return nil, corrupt(RejectMalformed, "message too long")
	}
	// recordCount's check, made before the message is: a lying count is
	// refused before anything is allocated for it.
	n := int(an) + int(ns) + int(ar)
	if n*minRR > len(records) {
		return nil, corrupt(RejectMalformed, "%d records announced in %d octets", n, len(records))
	}
	e, offs, msg := newEntryMsg(n, dnsHeaderLen+qlen+len(records))
	binary.BigEndian.PutUint16(msg[2:], flags)
	binary.BigEndian.PutUint16(msg[4:], 1)
	binary.BigEndian.PutUint16(msg[6:], an)
	binary.BigEndian.PutUint16(msg[8:], ns)
	binary.BigEndian.PutUint16(msg[10:], ar)
	copy(msg[dnsHeaderLen:], q[:qlen])
	copy(msg[dnsHeaderLen+qlen:], records)
	if err := checkRecords(msg, dnsHeaderLen+qlen, offs, false); err != nil {
		return nil, err
	}
	*e = Entry{
		StoredAt:   time.UnixMilli(int64(stored)),
		TTL:        uint32(ttl),
		StaleUntil: time.UnixMilli(int64(stored) + int64(ttl)*1000 + staleDelta(stale)),
		Offsets:    offs,
		Msg:        msg,
	}
	return e, nil
}

// The entries newEntryMsg makes: an Entry, room for its offsets and its
// message in one allocation, for each of a few message sizes. Each fills
// the size class that an Entry and a message of that size allocated
// apart would take, give or take 16 bytes.
type (
	entryMsg48 struct {
		e    Entry
		offs [inlineOffsets]uint16
		msg  [48]byte
	}
	entryMsg64 struct {
		e    Entry
		offs [inlineOffsets]uint16
		msg  [64]byte
	}
	entryMsg80 struct {
		e    Entry
		offs [inlineOffsets]uint16
		msg  [80]byte
	}
	entryMsg96 struct {
		e    Entry
		offs [inlineOffsets]uint16
		msg  [96]byte
	}
	entryMsg128 struct {
		e    Entry
		offs [inlineOffsets]uint16
		msg  [128]byte
	}
	entryMsg160 struct {
		e    Entry
		offs [inlineOffsets]uint16
		msg  [160]byte
	}
	entryMsg192 struct {
		e    Entry
		offs [inlineOffsets]uint16
		msg  [192]byte
	}
	entryMsg256 struct {
		e    Entry
		offs [inlineOffsets]uint16
		msg  [256]byte
	}
)

// newEntryMsg is newEntry with a message of size bytes (msg, to fill), in
// one allocation when they fit one of the sizes above.
func newEntryMsg(n, size int) (e *Entry, offs []uint16, msg []byte) {
	if n > inlineOffsets {
		e, offs = newEntry(n)
		return e, offs, make([]byte, size)
	}
	switch {
	case size <= 48:
		b := new(entryMsg48)
		e, offs, msg = &b.e, b.offs[:], b.msg[:size:size]
	case size <= 64:
		b := new(entryMsg64)
		e, offs, msg = &b.e, b.offs[:], b.msg[:size:size]
	case size <= 80:
		b := new(entryMsg80)
		e, offs, msg = &b.e, b.offs[:], b.msg[:size:size]
	case size <= 96:
		b := new(entryMsg96)
		e, offs, msg = &b.e, b.offs[:], b.msg[:size:size]
	case size <= 128:
		b := new(entryMsg128)
		e, offs, msg = &b.e, b.offs[:], b.msg[:size:size]
	case size <= 160:
		b := new(entryMsg160)
		e, offs, msg = &b.e, b.offs[:], b.msg[:size:size]
	case size <= 192:
		b := new(entryMsg192)
		e, offs, msg = &b.e, b.offs[:], b.msg[:size:size]
	case size <= 256:
		b := new(entryMsg256)
		e, offs, msg = &b.e, b.offs[:], b.msg[:size:size]
	default:
		e, offs = newEntry(n)
		return e, offs, make([]byte, size)
	}
	if n == 0 {
		return e, nil, msg
	}
	return e, offs[:n:n], msg
}

// inlineOffsets is how many TTL offsets a decoded entry holds in its own
// allocation: as many as fill the size class an Entry alone takes (112
// bytes), so most answers cost one allocation fewer and no more memory.
const inlineOffsets = 4

// entryOffsets is an Entry with room for its offsets beside it.
type entryOffsets struct {
	e    Entry
	offs [inlineOffsets]uint16
}

// newEntry is a new Entry and n offsets for it (nil for none), in one
// allocation when they fit.
func newEntry(n int) (*Entry, []uint16) {
	if n <= inlineOffsets {
		eo := new(entryOffsets)
		if n == 0 {
			return &eo.e, nil
		}
		return &eo.e, eo.offs[:n:n]
	}
	return new(Entry), make([]uint16, n)
}

// errKey is why a version 2 entry cannot be decoded under a key.
var errKey = errors.New("key is not a cache key")

// keyQuestion writes the question section of key's question (name, type,
// class, as dnsmsg.Key lays keys out) into buf and returns its length.
func keyQuestion(key string, buf []byte) (int, error) {
	name, ok := KeyName(key)
	if !ok {
		return 0, errKey
	}
	ts, rest, _ := strings.Cut(key[len(keyPrefix)+len(name)+2:], ":")
	cs, _, _ := strings.Cut(rest, ":")
	qtype, tok := keyType(ts)
	qclass, cok := uint16(dns.ClassINET), cs == "IN"
	if !cok {
		qclass, cok = dnsmsg.ParseClass(cs)
	}
	if !tok || !cok {
		return 0, errKey
	}
	n, ok := packName(name, buf[:len(buf)-4])
	if !ok {
		return 0, errKey
	}
	binary.BigEndian.PutUint16(buf[n:], qtype)
	binary.BigEndian.PutUint16(buf[n+2:], qclass)
	return n + 4, nil
}

// keyType is dnsmsg.ParseKeyType, with the common types read without a
// map lookup.
func keyType(s string) (uint16, bool) {
	switch s {
	case "A":
		return dns.TypeA, true
	case "AAAA":
		return dns.TypeAAAA, true
	case "CNAME":
		return dns.TypeCNAME, true
	case "MX":
		return dns.TypeMX, true
	case "TXT":
		return dns.TypeTXT, true
	case "NS":
		return dns.TypeNS, true
	case "PTR":
		return dns.TypePTR, true
	case "SOA":
		return dns.TypeSOA, true
	case "SRV":
		return dns.TypeSRV, true
	case "HTTPS":
		return dns.TypeHTTPS, true
	}
	return dnsmsg.ParseKeyType(s)
}

// packName writes name, fully qualified, in wire form into buf (at least
// 255 bytes) and returns its length, as dns.PackDomainName would without
// compression; false where PackDomainName fails. A name without escapes
// (nearly all) is written label by label here; one with escapes is left
// to PackDomainName.
func packName(name string, buf []byte) (int, bool) {
	if strings.IndexByte(name, '\\') >= 0 {
		n, err := dns.PackDomainName(name, buf, 0, nil, false)
		return n, err == nil
	}
	if name == "." {
		buf[0] = 0
		return 1, true
	}
	if len(name)+1 > maxName || name[len(name)-1] != '.' {
		return 0, false
	}
	n, start := 0, 0
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		l := i - start
		if l == 0 || l > 63 {
			return 0, false
		}
		buf[n] = byte(l)
		n += 1 + copy(buf[n+1:], name[start:i])
		start = i + 1
	}
	buf[n] = 0
	return n + 1, true
}
