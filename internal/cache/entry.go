package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// entryVersion is the first byte of every encoded entry. A reader that meets
// another version treats the entry as a miss, so a rolling upgrade that
// changes the layout costs hits, never wrong answers.
const entryVersion = 1

// headerLen is the fixed part of an encoded entry:
//
//	0      version
//	1      flags (reserved, 0)
//	2..9   stored-at, Unix milliseconds, big endian
//	10..13 original TTL in seconds
//	14..21 stale-until, Unix milliseconds
//	22..23 number of TTL offsets (n)
//	24..   n big-endian uint16 offsets into the message, then the message
const headerLen = 24

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

// Size is the number of bytes the encoded entry takes.
func (e *Entry) Size() int { return headerLen + 2*len(e.Offsets) + len(e.Msg) }

// AppendEncode appends the encoded entry to dst and returns the result.
func (e *Entry) AppendEncode(dst []byte) []byte {
	var h [headerLen]byte
	h[0] = entryVersion
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

// Encode returns the entry's bytes as stored in Redis.
func (e *Entry) Encode() []byte { return e.AppendEncode(make([]byte, 0, e.Size())) }

// Decode parses an encoded entry. It checks every length and offset, so the
// caller can patch the message at the offsets without further checks. The
// returned entry's Msg aliases b.
func Decode(b []byte) (*Entry, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the header", ErrCorrupt, len(b))
	}
	if b[0] != entryVersion {
		return nil, fmt.Errorf("%w: version %d", ErrCorrupt, b[0])
	}
	n := int(binary.BigEndian.Uint16(b[22:]))
	if len(b) < headerLen+2*n {
		return nil, fmt.Errorf("%w: %d offsets do not fit", ErrCorrupt, n)
	}
	e := &Entry{
		StoredAt:   time.UnixMilli(int64(binary.BigEndian.Uint64(b[2:]))),
		TTL:        binary.BigEndian.Uint32(b[10:]),
		StaleUntil: time.UnixMilli(int64(binary.BigEndian.Uint64(b[14:]))),
		Msg:        b[headerLen+2*n:],
	}
	if len(e.Msg) < 12 {
		return nil, fmt.Errorf("%w: message of %d bytes", ErrCorrupt, len(e.Msg))
	}
	if n > 0 {
		e.Offsets = make([]uint16, n)
	}
	for i := range e.Offsets {
		o := binary.BigEndian.Uint16(b[headerLen+2*i:])
		if int(o) < 12 || int(o)+4 > len(e.Msg) {
			return nil, fmt.Errorf("%w: TTL offset %d outside a %d-byte message", ErrCorrupt, o, len(e.Msg))
		}
		e.Offsets[i] = o
	}
	return e, nil
}
