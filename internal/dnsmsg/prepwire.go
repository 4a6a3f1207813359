package dnsmsg

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// PrepareWire lays out ans, a packed answer, for the cache, and says how
// long it may be cached: what Prepare and CacheTTL give for the unpacked
// message, found by walking the wire. The stored answer is ans rewritten
// in place (ID 0, AA kept, RA set, the trailing OPT record cut off,
// every TTL clamped as Prepare does) and keeps ans's encoding.
//
// ans must add up: every record its header counts, nothing after the
// last; and its compression pointers must lead to names, as compressors
// write them (RFC 1035 §4.1.4), not into the header or a TTL field. Record data is not judged beyond the SOA that a negative answer's
// TTL is read from: the resolver has parsed the answer before sending it.
// An answer whose OPT record is not its last record (no resolver of
// shardns sends one: cutting it would move the records after it, and
// their compression pointers with them) is unpacked and laid out by
// Prepare.
func (p Policy) PrepareWire(ans []byte) (st Stored, ttl uint32, cacheable bool, err error) {
	w, err := walkAnswer(ans)
	if err != nil {
		return Stored{}, 0, false, err
	}
	if w.optInside {
		return p.prepareMsg(ans)
	}
	ttl, cacheable = p.ttl(w.facts)
	if w.facts.rcode > 0xF {
		// The extended bits live in the OPT record the stored answer
		// has not got.
		return Stored{}, 0, false, fmt.Errorf("dnsmsg: pack answer: %w", dns.ErrExtendedRcode)
	}
	msg := ans[:w.end]
	msg[0], msg[1] = 0, 0
	msg[3] |= 0x80 // RA
	if w.optAt > 0 {
		msg = msg[:w.optAt]
		binary.BigEndian.PutUint16(msg[10:], binary.BigEndian.Uint16(msg[10:])-1)
	}
	minTTL := uint32(p.MinTTL / time.Second)
	for _, o := range w.offsets {
		v := ttlValue(binary.BigEndian.Uint32(msg[o:]))
		if cacheable {
			v = min(max(v, minTTL), ttl)
		}
		binary.BigEndian.PutUint32(msg[o:], v)
	}
	return Stored{Msg: msg, Offsets: w.offsets}, ttl, cacheable, nil
}

// prepareMsg is PrepareWire through dns.Msg.
func (p Policy) prepareMsg(ans []byte) (Stored, uint32, bool, error) {
	m := new(dns.Msg)
	if err := m.Unpack(ans); err != nil {
		return Stored{}, 0, false, fmt.Errorf("%w: %w", ErrWire, err)
	}
	ttl, cacheable := p.CacheTTL(m)
	st, err := Prepare(m, ttl, uint32(p.MinTTL/time.Second), cacheable)
	if err != nil {
		return Stored{}, 0, false, err
	}
	return st, ttl, cacheable, nil
}

// answerWalk is what walkAnswer reads from a packed answer.
type answerWalk struct {
	facts   ttlFacts
	offsets []uint16 // TTL fields, OPT records excluded
	end     int      // where the last record ends: len(ans)
	// optAt is where an OPT record that ends the additional section
	// starts (0: none); optInside says an OPT record of the additional
	// section has records after it.
	optAt     int
	optInside bool
}

// walkAnswer reads ans's header and records without unpacking them.
func walkAnswer(ans []byte) (answerWalk, error) {
	var w answerWalk
	if len(ans) < headerSize || len(ans) > 0xffff {
		return w, fmt.Errorf("%w: length %d", ErrWire, len(ans))
	}
	w.facts.truncated = ans[2]&0x02 != 0
	w.facts.rcode = int(ans[3] & 0x0F)
	qd := int(binary.BigEndian.Uint16(ans[4:]))
	an := int(binary.BigEndian.Uint16(ans[6:]))
	ns := int(binary.BigEndian.Uint16(ans[8:]))
	ar := int(binary.BigEndian.Uint16(ans[10:]))
	w.facts.answers = an > 0
	w.facts.minTTL = 1<<31 - 1
	off := headerSize
	var err error
	for range qd {
		if off, err = skipName(ans, off); err != nil {
			return w, err
		}
		if off += 4; off > len(ans) {
			return w, fmt.Errorf("%w: question past the end", ErrWire)
		}
	}
	w.offsets = make([]uint16, 0, an+ns+ar)
	var lastOPT int
	optCount := 0
	for i := range an + ns + ar {
		start := off
		if off, err = skipName(ans, off); err != nil {
			return w, err
		}
		if off+10 > len(ans) {
			return w, fmt.Errorf("%w: record header past the end", ErrWire)
		}
		typ := binary.BigEndian.Uint16(ans[off:])
		ttl := binary.BigEndian.Uint32(ans[off+4:])
		rdata := off + 10
		end := rdata + int(binary.BigEndian.Uint16(ans[off+8:]))
		if end > len(ans) {
			return w, fmt.Errorf("%w: record data past the end", ErrWire)
		}
		authority := an <= i && i < an+ns
		switch {
		case typ == dns.TypeOPT:
			if i >= an+ns { // the additional section
				optCount++
				lastOPT = start
				// Only the last one counts, as for dns.Msg.IsEdns0.
				w.facts.rcode = w.facts.rcode&0x0F | int(ttl>>24)<<4
			}
		default:
			w.offsets = append(w.offsets, uint16(off+4))
			if i < an+ns {
				w.facts.minTTL = min(w.facts.minTTL, ttlValue(ttl))
			}
			if authority && typ == dns.TypeSOA && !w.facts.soa {
				if w.facts.soaMin, err = soaMinimum(ans[:end], rdata); err != nil {
					return w, err
				}
				w.facts.soa, w.facts.soaTTL = true, ttl
			}
		}
		off = end
	}
	if off != len(ans) {
		return w, fmt.Errorf("%w: %d octets after the last record", ErrWire, len(ans)-off)
	}
	w.end = off
	switch {
	case optCount > 1:
		w.optInside = true
	case optCount == 1:
		if end, _ := recordEnd(ans, lastOPT); end == off {
			w.optAt = lastOPT
		} else {
			w.optInside = true
		}
	}
	return w, nil
}

// recordEnd returns the offset past the record at off, which walkAnswer
// has read whole.
func recordEnd(msg []byte, off int) (int, error) {
	off, err := skipName(msg, off)
	if err != nil {
		return 0, err
	}
	return off + 10 + int(binary.BigEndian.Uint16(msg[off+8:])), nil
}

// soaMinimum reads the MINIMUM field of the SOA record data at off in msg,
// which ends where the record does: two names, then five 32-bit fields.
func soaMinimum(msg []byte, off int) (uint32, error) {
	var err error
	for range 2 {
		if off, err = skipName(msg, off); err != nil {
			return 0, fmt.Errorf("%w: SOA: %w", ErrWire, err)
		}
	}
	if off+20 != len(msg) {
		return 0, fmt.Errorf("%w: SOA data of the wrong length", ErrWire)
	}
	return binary.BigEndian.Uint32(msg[off+16:]), nil
}
