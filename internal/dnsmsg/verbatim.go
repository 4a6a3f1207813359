package dnsmsg

import (
	"encoding/binary"
	"fmt"

	"github.com/miekg/dns"
)

// CheckVerbatim reports whether msg, a message as a server sent it, may be
// cached and served byte for byte, the cache rewriting only its header,
// its TTL fields and its last OPT record (PrepareWire, AppendReply):
//
//   - its header counts add up to exactly its length;
//   - every name is well formed, and every compression pointer leads to
//     the start of a label of a name written before it, never into a
//     header, a TTL or record data. A pointer into a TTL would let the
//     cache's rewriting of that TTL change a name that was checked;
//   - every record is of a type whose data's names this walk knows where
//     to find (verbatimTypes), so that no name in record data can hold
//     such a pointer unseen;
//   - an OPT record, if any, is the only one and the last record, which
//     the cache cuts off to store the rest.
//
// A message that fails is not wrong: it is packed anew from its parsed
// form instead (dns.Msg.Pack), as every compressor writes its pointers.
func CheckVerbatim(msg []byte) error {
	if len(msg) < headerSize || len(msg) > 0xffff {
		return fmt.Errorf("%w: length %d", ErrWire, len(msg))
	}
	var small [8]uint64 // label starts of a message of up to 512 octets
	w := verbatimWalk{msg: msg, labels: small[:]}
	if words := len(msg)/64 + 1; words > len(small) {
		w.labels = make([]uint64, words)
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	off := headerSize
	var err error
	for range qd {
		if off, err = w.name(off, len(msg)); err != nil {
			return err
		}
		if off += 4; off > len(msg) {
			return fmt.Errorf("%w: question past the end", ErrWire)
		}
	}
	for i := range rrs {
		start := off
		if off, err = w.record(off); err != nil {
			return err
		}
		if i < rrs-1 && isOPT(msg, start) {
			return fmt.Errorf("%w: an OPT record before the last record", ErrWire)
		}
	}
	if off != len(msg) {
		return fmt.Errorf("%w: %d octets after the last record", ErrWire, len(msg)-off)
	}
	return nil
}

// verbatimTypes are the record types CheckVerbatim passes, with where
// names sit in their data: after skip octets, names names, then tail
// octets (anyTail: any number). Any other type makes CheckVerbatim fail:
// a name in its data could hide a pointer.
var verbatimTypes = map[uint16]rdataLayout{
	dns.TypeA: {tail: anyTail}, dns.TypeAAAA: {tail: anyTail}, dns.TypeTXT: {tail: anyTail},
	dns.TypeOPT: {tail: anyTail}, dns.TypeCAA: {tail: anyTail}, dns.TypeSSHFP: {tail: anyTail},
	dns.TypeTLSA: {tail: anyTail}, dns.TypeDS: {tail: anyTail}, dns.TypeDNSKEY: {tail: anyTail},
	dns.TypeNSEC3: {tail: anyTail}, dns.TypeNSEC3PARAM: {tail: anyTail},
	dns.TypeNS: {names: 1}, dns.TypeCNAME: {names: 1}, dns.TypePTR: {names: 1}, dns.TypeDNAME: {names: 1},
	dns.TypeMX:    {skip: 2, names: 1},
	dns.TypeSRV:   {skip: 6, names: 1},
	dns.TypeSOA:   {names: 2, tail: 20},
	dns.TypeNSEC:  {names: 1, tail: anyTail},           // the next name, then the type bitmap
	dns.TypeRRSIG: {skip: 18, names: 1, tail: anyTail}, // the signer, then the signature
	dns.TypeSVCB:  {skip: 2, names: 1, tail: anyTail},  // the target, then the parameters
	dns.TypeHTTPS: {skip: 2, names: 1, tail: anyTail},
}

// rdataLayout is where the names of a type's record data are.
type rdataLayout struct{ skip, names, tail int }

const anyTail = -1

// verbatimWalk is CheckVerbatim's walk: labels has a bit set at the
// offset of each label of the names read so far.
type verbatimWalk struct {
	msg    []byte
	labels []uint64
}

// record reads the record at off and returns the offset past it.
func (w *verbatimWalk) record(off int) (int, error) {
	off, err := w.name(off, len(w.msg))
	if err != nil {
		return 0, err
	}
	if off+10 > len(w.msg) {
		return 0, fmt.Errorf("%w: record header past the end", ErrWire)
	}
	typ := binary.BigEndian.Uint16(w.msg[off:])
	rdata := off + 10
	end := rdata + int(binary.BigEndian.Uint16(w.msg[off+8:]))
	if end > len(w.msg) {
		return 0, fmt.Errorf("%w: record data past the end", ErrWire)
	}
	layout, ok := verbatimTypes[typ]
	if !ok {
		return 0, fmt.Errorf("%w: type %d is not passed verbatim", ErrWire, typ)
	}
	at := rdata + layout.skip
	for range layout.names {
		if at, err = w.name(at, end); err != nil {
			return 0, err
		}
	}
	if at > end || layout.tail != anyTail && at+layout.tail != end {
		return 0, fmt.Errorf("%w: %s data of %d octets", ErrWire, dns.TypeToString[typ], end-rdata)
	}
	return end, nil
}

// name reads the name at off, which must end by limit, and returns the
// offset past it. A compression pointer must lead to a label of a name
// read before this one (a pointer into this name's own labels would
// loop). The name's labels become pointer targets once it is read whole.
func (w *verbatimWalk) name(off, limit int) (int, error) {
	start, length := off, 0
	for {
		if off >= limit {
			return 0, fmt.Errorf("%w: name past its end", ErrWire)
		}
		b := int(w.msg[off])
		switch {
		case b == 0:
			off++
			w.mark(start, off)
			return off, nil
		case b&0xC0 == 0xC0:
			if off+2 > limit {
				return 0, fmt.Errorf("%w: pointer past its end", ErrWire)
			}
			to := (b&0x3F)<<8 | int(w.msg[off+1])
			if to >= start || w.labels[to/64]&(1<<(to%64)) == 0 {
				return 0, fmt.Errorf("%w: pointer to %d, not a label before it", ErrWire, to)
			}
			off += 2
			w.mark(start, off)
			return off, nil
		case b&0xC0 != 0:
			return 0, fmt.Errorf("%w: label type %#x", ErrWire, b&0xC0)
		}
		if length += 1 + b; length > maxNameWire-1 {
			return 0, fmt.Errorf("%w: name over %d octets", ErrWire, maxNameWire)
		}
		off += 1 + b
	}
}

// isOPT reports whether the record at off, read whole, is an OPT record.
func isOPT(msg []byte, off int) bool {
	off, _ = skipName(msg, off)
	return binary.BigEndian.Uint16(msg[off:]) == dns.TypeOPT
}

// PutHeader writes h's ID, flags and RCODE (its low four bits; the rest
// is in the OPT record) over the header of msg, a packed message; the
// counts stay.
func PutHeader(msg []byte, h *dns.MsgHdr) {
	binary.BigEndian.PutUint16(msg, h.Id)
	msg[2] = boolBit(h.Response, 0x80) | byte(h.Opcode&0xF)<<3 | boolBit(h.Authoritative, 0x04) |
		boolBit(h.Truncated, 0x02) | boolBit(h.RecursionDesired, 0x01)
	msg[3] = boolBit(h.RecursionAvailable, 0x80) | boolBit(h.Zero, 0x40) | boolBit(h.AuthenticatedData, 0x20) |
		boolBit(h.CheckingDisabled, 0x10) | byte(h.Rcode&0xF)
}

// mark sets the label starts of the name read from start to end.
func (w *verbatimWalk) mark(start, end int) {
	for off := start; off < end; {
		b := int(w.msg[off])
		if b == 0 || b&0xC0 != 0 {
			return
		}
		w.labels[off/64] |= 1 << (off % 64)
		off += 1 + b
	}
}
