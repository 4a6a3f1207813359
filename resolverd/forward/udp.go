package forward

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

const (
	// maxUDPRead is the read buffer: any datagram fits, so an oversized one
	// is seen whole (and then parsed or ignored), never silently cut.
	maxUDPRead = 65535
	// maxDatagrams bounds how many datagrams one query reads before giving up.
	maxDatagrams = 256
)

// exchangeUDP sends wire (the packed m) from a connected UDP socket no
// other query has used (udpSockets), so each query has its own random
// source port and the kernel drops datagrams from any other peer. It reads
// until ctx's deadline, keeping only a reply that matches m's ID and
// question; anything else is counted and ignored.
func (f *Forwarder) exchangeUDP(ctx context.Context, u *upstream, m *dns.Msg, wire []byte) (*dns.Msg, error) {
	conn, err := u.sockets.get()
	if err != nil {
		return nil, fmt.Errorf("forward: udp dial: %w", err)
	}
	defer u.sockets.put(conn)
	defer bindDeadline(ctx, conn)()
	if _, err := conn.Write(wire); err != nil {
		return nil, fmt.Errorf("forward: udp write: %w", err)
	}
	bp := f.bufs.Get().(*[]byte)
	defer f.bufs.Put(bp)
	buf := *bp
	for range maxDatagrams {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("forward: udp read: %w", err)
		}
		// Cheap check first: most spoofed or stale datagrams fail on the ID.
		if n < 12 || binary.BigEndian.Uint16(buf) != m.Id {
			u.ignored.Add(1)
			continue
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(buf[:n]); err != nil || !matches(resp, m) {
			u.ignored.Add(1)
			continue
		}
		return resp, nil
	}
	return nil, errors.New("forward: udp: too many unmatched replies")
}

// bindDeadline applies ctx's deadline to conn, and an immediate deadline
// when ctx is cancelled, so blocked reads and writes end with ctx. The
// returned function releases the cancellation hook.
func bindDeadline(ctx context.Context, conn net.Conn) (release func()) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}
