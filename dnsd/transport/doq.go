package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// DoQ error codes (RFC 9250 §4.3), sent in QUIC CONNECTION_CLOSE and
// RESET_STREAM frames.
const (
	// DoQNoError closes a connection with nothing wrong (shutdown).
	DoQNoError quic.ApplicationErrorCode = 0x0
	// DoQInternalError ends a stream the server cannot answer.
	DoQInternalError quic.ApplicationErrorCode = 0x1
	// DoQProtocolError closes a connection that broke RFC 9250's
	// framing: a bad length, a message ID other than 0, more than one
	// query on a stream.
	DoQProtocolError quic.ApplicationErrorCode = 0x2
	// DoQRequestCancelled ends a stream whose query was not read in
	// time.
	DoQRequestCancelled quic.ApplicationErrorCode = 0x3
	// DoQExcessiveLoad closes a connection over the connection caps.
	DoQExcessiveLoad quic.ApplicationErrorCode = 0x4
	// DoQUnspecifiedError closes a connection from a client outside the
	// allow list.
	DoQUnspecifiedError quic.ApplicationErrorCode = 0x5
)

var doqCodeNames = map[quic.ApplicationErrorCode]string{
	DoQNoError: "DOQ_NO_ERROR", DoQInternalError: "DOQ_INTERNAL_ERROR", DoQProtocolError: "DOQ_PROTOCOL_ERROR",
	DoQRequestCancelled: "DOQ_REQUEST_CANCELLED", DoQExcessiveLoad: "DOQ_EXCESSIVE_LOAD", DoQUnspecifiedError: "DOQ_UNSPECIFIED_ERROR",
}

// ListenDoQ serves DNS over QUIC (RFC 9250, ALPN "doq") on every address
// (host:port; port 0 picks one): one query per stream, message ID 0,
// each message after a 2-byte length, the stream closed after the reply.
// A client outside TCPAllow is closed once its handshake completes, as
// is one over the TCP caps it shares; a connection idle for
// TCPIdleTimeout closes, and at most MaxTCPInFlight streams are open on
// one. It returns the bound addresses.
func (s *Server) ListenDoQ(addrs []string, cfg *tls.Config) ([]net.Addr, error) {
	tc, err := withALPN(cfg, protoDoQ, "doq")
	if err != nil {
		return nil, err
	}
	tc.MinVersion = tls.VersionTLS13 // QUIC's
	qc := &quic.Config{
		HandshakeIdleTimeout:  s.cfg.TCPReadTimeout,
		MaxIdleTimeout:        s.cfg.TCPIdleTimeout,
		MaxIncomingStreams:    int64(s.cfg.MaxTCPInFlight),
		MaxIncomingUniStreams: -1, // RFC 9250 uses none
	}
	s.encMetrics()
	var bound []net.Addr
	for _, addr := range addrs {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return bound, fmt.Errorf("transport: doq listen %s: %w", addr, err)
		}
		tr := &quic.Transport{Conn: pc}
		ln, err := tr.Listen(tc, qc)
		if err != nil {
			tr.Close()
			pc.Close()
			return bound, fmt.Errorf("transport: doq listen %s: %w", addr, err)
		}
		ctx, stop := context.WithCancel(s.ctx)
		d := &doqListener{ln: ln, tr: tr, pc: pc, ctx: ctx}
		s.mu.Lock()
		if s.stopping.Load() {
			s.mu.Unlock()
			stop()
			d.close()
			return bound, fmt.Errorf("transport: doq listen %s: %w", addr, net.ErrClosed)
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.acceptDoQ(d)
		s.addStop(func(context.Context) {
			// Accepting stops; each connection answers its streams
			// in flight, then closes with DOQ_NO_ERROR.
			stop()
			ln.Close()
		})
		bound = append(bound, pc.LocalAddr())
		s.log.Info("serving DNS over QUIC", "doq", pc.LocalAddr().String())
	}
	return bound, nil
}

// doqListener is one DoQ address.
type doqListener struct {
	ln    *quic.Listener
	tr    *quic.Transport
	pc    net.PacketConn
	ctx   context.Context // ends when the listener stops accepting
	conns sync.WaitGroup
}

func (d *doqListener) close() {
	d.ln.Close()
	d.tr.Close()
	d.pc.Close()
}

func (s *Server) acceptDoQ(d *doqListener) {
	defer s.wg.Done()
	defer func() {
		d.conns.Wait()
		d.close()
	}()
	m := s.encMetrics()
	for {
		conn, err := d.ln.Accept(d.ctx)
		if err != nil {
			return // closed, or stopping
		}
		var peer Peer
		if ua, ok := conn.RemoteAddr().(*net.UDPAddr); ok {
			peer = Peer{Addr: ua.AddrPort(), TCP: true, Proto: ProtoDoQ}
		}
		if s.cfg.TCPAllow != nil && !s.cfg.TCPAllow.Allowed(peer.Addr.Addr()) {
			m.rejectedTotal.WithLabelValues(protoDoQ, "acl").Inc()
			s.closeDoQ(conn, DoQUnspecifiedError, "client not allowed")
			continue
		}
		key := clientKey(peer.Addr.Addr())
		if v := s.takeSlot(key); v != slotTaken {
			m.rejected(protoDoQ, v)
			code := DoQExcessiveLoad
			if v == slotStopping {
				code = DoQNoError
			}
			s.closeDoQ(conn, code, "connection refused")
			continue
		}
		m.conns.WithLabelValues(protoDoQ).Inc()
		d.conns.Add(1)
		go func() {
			defer d.conns.Done()
			defer m.conns.WithLabelValues(protoDoQ).Dec()
			defer s.releaseSlot(key)
			s.serveDoQ(d.ctx, conn, peer)
		}()
	}
}

// closeDoQ closes conn with an RFC 9250 error code, and counts it.
func (s *Server) closeDoQ(conn *quic.Conn, code quic.ApplicationErrorCode, why string) {
	if code != DoQNoError {
		s.encMetrics().doqErrors.WithLabelValues(doqCodeNames[code]).Inc()
	}
	_ = conn.CloseWithError(code, why)
}

// serveDoQ answers the streams of one connection until the client or the
// idle timeout closes it, or ctx ends (shutdown): then the streams in
// flight are answered and the connection is closed with DOQ_NO_ERROR.
func (s *Server) serveDoQ(ctx context.Context, conn *quic.Conn, peer Peer) {
	var streams sync.WaitGroup
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			break
		}
		streams.Add(1)
		go func() {
			defer streams.Done()
			s.answerDoQ(conn, st, peer)
		}()
	}
	streams.Wait()
	if ctx.Err() != nil {
		// Shutdown: CONNECTION_CLOSE ends the connection at once, and
		// reply data not yet acknowledged with it. Give the last
		// replies time to arrive, unless the client closes first.
		t := time.NewTimer(doqCloseLinger)
		select {
		case <-conn.Context().Done():
		case <-t.C:
		}
		t.Stop()
	}
	s.closeDoQ(conn, DoQNoError, "")
}

// doqCloseLinger is how long a connection waits, at shutdown, between its
// last reply and its CONNECTION_CLOSE: many round trips, even far away.
const doqCloseLinger = 500 * time.Millisecond

// answerDoQ reads the query of one stream, answers it on the stream and
// closes it.
func (s *Server) answerDoQ(conn *quic.Conn, st *quic.Stream, peer Peer) {
	m := s.encMetrics()
	st.SetReadDeadline(time.Now().Add(s.cfg.TCPReadTimeout))
	req, err := readDoQQuery(st)
	if err != nil {
		var pe *doqProtocolErr
		if errors.As(err, &pe) {
			s.log.Debug("doq protocol error", "client", peer.Addr.String(), "err", err)
			s.closeDoQ(conn, DoQProtocolError, pe.Error())
			return
		}
		// Not read in time, or reset by the client.
		m.doqErrors.WithLabelValues(doqCodeNames[DoQRequestCancelled]).Inc()
		st.CancelRead(quic.StreamErrorCode(DoQRequestCancelled))
		st.CancelWrite(quic.StreamErrorCode(DoQRequestCancelled))
		return
	}
	out := make([]byte, 2, 514)
	ms := []Msg{{Req: req, From: peer, Dst: out[2:2]}}
	s.cfg.Handler.Serve(s.ctx, ms, true)
	reply := ms[0].Reply
	if !ms[0].Done || len(reply) == 0 || len(reply) > 0xffff {
		m.doqErrors.WithLabelValues(doqCodeNames[DoQInternalError]).Inc()
		st.CancelWrite(quic.StreamErrorCode(DoQInternalError))
		return
	}
	if &reply[:1][0] == &out[2:3][0] {
		out = out[:2+len(reply)]
	} else {
		out = append(out[:2], reply...)
	}
	binary.BigEndian.PutUint16(out, uint16(len(reply)))
	st.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := st.Write(out); err != nil {
		st.CancelWrite(quic.StreamErrorCode(DoQInternalError))
		return
	}
	_ = st.Close() // FIN: the reply is the stream's last
}

// doqProtocolErr is a stream that breaks RFC 9250's framing: a connection
// error of type DOQ_PROTOCOL_ERROR (§4.3.3).
type doqProtocolErr struct{ msg string }

func (e *doqProtocolErr) Error() string { return "doq: protocol error: " + e.msg }

// readDoQQuery reads the one query of a DoQ stream: a 2-byte length, the
// message, then the end of the stream (the client's FIN). A stream that
// ends early, announces less than a DNS header, carries more than one
// message or a message ID other than 0 is a *doqProtocolErr; any other
// error (a deadline, a reset) is returned wrapped.
func readDoQQuery(r io.Reader) ([]byte, error) {
	var lenBuf [2]byte
	if n, err := io.ReadFull(r, lenBuf[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &doqProtocolErr{fmt.Sprintf("stream ended after %d bytes, before the 2-byte length", n)}
		}
		return nil, fmt.Errorf("doq: reading the length: %w", err)
	}
	n := int(binary.BigEndian.Uint16(lenBuf[:]))
	if n < headerLen {
		return nil, &doqProtocolErr{fmt.Sprintf("length %d is shorter than a DNS header", n)}
	}
	msg := make([]byte, n)
	if got, err := io.ReadFull(r, msg); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &doqProtocolErr{fmt.Sprintf("stream ended after %d of the %d bytes its length announced", got, n)}
		}
		return nil, fmt.Errorf("doq: reading a %d-byte message: %w", n, err)
	}
	var more [1]byte
	switch k, err := io.ReadFull(r, more[:]); {
	case k > 0:
		return nil, &doqProtocolErr{fmt.Sprintf("data after the %d-byte query: one query per stream", n)}
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("doq: waiting for the end of the stream: %w", err)
	}
	if id := binary.BigEndian.Uint16(msg); id != 0 {
		return nil, &doqProtocolErr{fmt.Sprintf("message ID %d, want 0", id)}
	}
	return msg, nil
}
