package forward

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/rawconn"
)

// maxUDPRead is the read buffer: any datagram fits, so an oversized one is
// seen whole (and then parsed or ignored), never silently cut.
const maxUDPRead = 65535

// exchangeUDP sends wire (the packed m) from a UDP socket opened and
// connected for this query alone: the kernel picks its source port at
// random, drops datagrams from any other peer, and no datagram can wait in
// it before the query is sent. It reads until ctx's deadline, keeping only
// the reply that match takes; every other datagram is counted in
// u.ignored and never ends the query.
//
// With plain (the query's name as the caller wrote it, in wire form; m's
// name is its 0x20 spelling), the reply's question must echo m's name
// byte for byte. When it does, plain is written over those bytes before
// the reply is parsed: every name compressed to point into the question
// (owner names, CNAME and MX targets...) then reads in the caller's
// spelling, not in 0x20 case. A reply that differs from m in the case of
// its name only ends the query with errCaseMismatch.
//
// raw is the reply's bytes, the caller's spelling in its question, when
// they may be passed on as they are (see verbatim); else nil.
func (f *Forwarder) exchangeUDP(ctx context.Context, limit time.Time, u *upstream, m *dns.Msg, wire, plain []byte) (resp *dns.Msg, raw []byte, err error) {
	conn, err := dialUDP(u.udpAddrPort, u.canon) // named once per upstream, not per query
	if err != nil {
		return nil, nil, fmt.Errorf("forward: udp dial: %w", err)
	}
	defer conn.Close()
	defer bindDeadline(ctx, limit, conn)()
	if _, err := conn.Write(wire); err != nil {
		return nil, nil, fmt.Errorf("forward: udp write: %w", err)
	}
	bp := f.bufs.Get().(*[]byte)
	defer f.bufs.Put(bp)
	buf := *bp
	var got []byte // the reply taken, as received, for the tap
	if f.tap != nil {
		sent := time.Now()
		defer func() { f.tap.Exchanged(u.proto, u.udpAddrPort, sent, time.Now(), wire, got) }()
	}
	// Each pass reads one datagram; the deadline ends the loop.
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, nil, fmt.Errorf("forward: udp read: %w", err)
		}
		// Cheap check first: most forged or stale datagrams fail on the ID.
		if n < 12 || binary.BigEndian.Uint16(buf) != m.Id {
			u.ignored.Add(1)
			continue
		}
		// Our query's question name is never compressed: it sits at 12.
		exactCase := plain != nil
		q := 12 + len(plain)
		if exactCase && n >= q && bytes.Equal(buf[12:q], wire[12:q]) {
			copy(buf[12:q], plain)
			exactCase = false // checked here; the parsed name is now the caller's
		}
		resp = new(dns.Msg)
		if err := resp.Unpack(buf[:n]); err != nil {
			u.ignored.Add(1)
			continue
		}
		switch match(u, resp, m, exactCase) {
		case replyOK:
			raw = verbatim(buf[:n])
			if f.tap != nil {
				if plain != nil && !exactCase { // the question as it came, in 0x20 case
					copy(buf[12:q], wire[12:q])
				}
				got = buf[:n]
			}
			return resp, raw, nil
		case replyCaseOnly:
			return nil, nil, errCaseMismatch
		default:
			u.ignored.Add(1)
		}
	}
}

// udpSocket is the per-query socket exchangeUDP uses.
type udpSocket interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetDeadline(t time.Time) error
	Close() error
}

// dialNetUDP opens a UDP socket connected to addr with the net package.
func dialNetUDP(addr netip.AddrPort) (udpSocket, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	return rawconn.Wrap(c), nil
}

// bindDeadline applies the earlier of limit and ctx's deadline to conn,
// and an immediate deadline when ctx is cancelled, so blocked reads and
// writes end with ctx. The returned function releases the cancellation
// hook; its result is of no use to the caller.
func bindDeadline(ctx context.Context, limit time.Time, conn interface{ SetDeadline(time.Time) error }) (release func() bool) {
	if dl, ok := ctx.Deadline(); ok && dl.Before(limit) {
		limit = dl
	}
	_ = conn.SetDeadline(limit)
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
}
