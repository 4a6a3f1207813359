package forward

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/miekg/dns"
)

// ednsSize is the EDNS0 UDP payload size advertised upstream (DNS flag day 2020).
const ednsSize = 1232

// exchange sends one query to u (with a TCP retry after a truncated UDP
// answer) and returns the answer shaped for the caller: q's ID, and no OPT
// record if q had none.
func (f *Forwarder) exchange(ctx context.Context, u *upstream, q *dns.Msg) (*dns.Msg, error) {
	m, addedOPT := prepare(q)
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("forward: pack query: %w", err)
	}
	var resp *dns.Msg
	switch u.proto {
	case protoUDP:
		resp, err = f.exchangeUDP(ctx, u, m, wire)
		if err == nil && resp.Truncated {
			resp, err = f.exchangeStream(ctx, u, m, wire)
		}
	default:
		resp, err = f.exchangeStream(ctx, u, m, wire)
	}
	if err != nil {
		return nil, err
	}
	if len(resp.Question) == 0 { // an error reply without it (see matches)
		resp.Question = append(resp.Question, m.Question...)
	}
	resp.Id = q.Id
	if addedOPT {
		stripOPT(resp)
	}
	return resp, nil
}

// prepare copies q with a fresh random ID and an EDNS0 OPT record of
// ednsSize bytes that keeps q's DO bit. Options from the client's OPT are
// hop-by-hop and are not forwarded. addedOPT reports that q had no OPT.
func prepare(q *dns.Msg) (m *dns.Msg, addedOPT bool) {
	m = q.Copy()
	m.Id = randomID()
	m.Response = false
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	} else {
		addedOPT = true
	}
	stripOPT(m)
	m.SetEdns0(ednsSize, do)
	return m, addedOPT
}

// stripOPT removes every OPT record from m's additional section.
func stripOPT(m *dns.Msg) {
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	clear(m.Extra[len(extra):])
	m.Extra = extra
}

// randomID returns a message ID from the operating system's CSPRNG.
// (crypto/rand.Read does not fail: on error the program crashes.)
func randomID() uint16 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:])
}

// matches reports whether resp answers m: a response with m's ID and opcode
// and the same question (name compared case-insensitively, type, class).
// An error reply (FORMERR, SERVFAIL, NOTIMP, REFUSED) may come without the
// question, as NSD sends one for a class it does not serve: with the ID
// and the connected socket it still answers m, and waiting on for another
// would only end in a timeout that counts against the upstream.
func matches(resp, m *dns.Msg) bool {
	if !resp.Response || resp.Id != m.Id || resp.Opcode != m.Opcode {
		return false
	}
	if len(resp.Question) == 0 {
		return bareError(resp)
	}
	if len(resp.Question) != 1 {
		return false
	}
	a, b := resp.Question[0], m.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && equalFoldASCII(a.Name, b.Name)
}

// bareError reports whether resp, a reply without a question, is an error
// reply that says nothing about any name: no records but an OPT.
func bareError(resp *dns.Msg) bool {
	switch resp.Rcode {
	case dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNotImplemented, dns.RcodeRefused:
	default:
		return false
	}
	if len(resp.Answer) != 0 || len(resp.Ns) != 0 {
		return false
	}
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			return false
		}
	}
	return true
}

// equalFoldASCII compares DNS names case-insensitively (ASCII letters only,
// as RFC 4343 says).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
