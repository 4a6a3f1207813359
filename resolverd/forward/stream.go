package forward

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/miekg/dns"
)

// maxStreamMsgs bounds how many messages one query reads from a TCP or TLS
// connection before giving up.
const maxStreamMsgs = 16

// exchangeStream sends wire (the packed m) over a new TCP or TLS connection
// with the 2-byte length framing of RFC 1035 §4.2.2 and RFC 7858, and
// returns the first reply that matches m (name compared ignoring case:
// over a stream the name goes as asked, see send). An unparsable message
// is an error (the stream cannot be trusted after it).
// The exchange ends with ctx or at limit. raw is as for exchangeUDP.
func (f *Forwarder) exchangeStream(ctx context.Context, limit time.Time, u *upstream, m *dns.Msg, wire []byte) (resp *dns.Msg, raw []byte, err error) {
	ctx, cancel := context.WithDeadline(ctx, limit) // bounds the dial too
	defer cancel()
	conn, err := dialStream(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	defer bindDeadline(ctx, limit, conn)()

	out := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	copy(out[2:], wire)
	if _, err := conn.Write(out); err != nil {
		return nil, nil, fmt.Errorf("forward: %s write: %w", u.proto, err)
	}
	var got []byte // the reply taken, for the tap
	if f.tap != nil {
		proto := u.proto // tcp or tls; a udp upstream's retry goes over tcp
		if proto == protoUDP {
			proto = protoTCP
		}
		sent := time.Now()
		defer func() { f.tap.Exchanged(proto, u.udpAddrPort, sent, time.Now(), wire, got) }()
	}
	var hdr [2]byte
	for range maxStreamMsgs {
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return nil, nil, fmt.Errorf("forward: %s read: %w", u.proto, err)
		}
		buf := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(conn, buf); err != nil {
			return nil, nil, fmt.Errorf("forward: %s read: %w", u.proto, err)
		}
		resp = new(dns.Msg)
		if err := resp.Unpack(buf); err != nil {
			u.ignored.Add(1)
			return nil, nil, fmt.Errorf("forward: %s: unparsable answer: %w", u.proto, err)
		}
		if match(u, resp, m, false) != replyOK {
			u.ignored.Add(1)
			continue
		}
		got = buf
		return resp, verbatim(buf), nil
	}
	return nil, nil, fmt.Errorf("forward: %s: too many unmatched replies", u.proto)
}

// dialStream opens a TCP connection to u, with a TLS handshake for tls://
// upstreams, bounded by ctx.
func dialStream(ctx context.Context, u *upstream) (net.Conn, error) {
	nd := &net.Dialer{}
	if u.proto != protoTLS {
		conn, err := nd.DialContext(ctx, "tcp", u.addr)
		if err != nil {
			return nil, fmt.Errorf("forward: tcp dial: %w", err)
		}
		return conn, nil
	}
	if u.tlsConfig == nil {
		return nil, errors.New("forward: tls upstream without TLS config")
	}
	td := &tls.Dialer{NetDialer: nd, Config: u.tlsConfig}
	conn, err := td.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, fmt.Errorf("forward: tls dial: %w", err)
	}
	return conn, nil
}
