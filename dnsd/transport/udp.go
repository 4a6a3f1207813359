package transport

import (
	"errors"
	"net"
	"net/netip"
)

// readUDP reads datagrams until the socket closes. A message the handler
// can answer at once (InlineHandler) is answered here, between two reads;
// any other is answered on its own goroutine while fewer than
// MaxUDPInFlight are being answered, and beyond that dropped, as a loaded
// server must (the client retries).
func (s *Server) readUDP(pc *net.UDPConn) {
	defer s.wg.Done()
	inline, _ := s.cfg.Handler.(InlineHandler)
	var out []byte // inline replies; the reader's own
	if inline != nil {
		out = make([]byte, 0, udpReadSize)
	}
	bp := s.bufs.Get().(*[]byte)
	defer func() { s.bufs.Put(bp) }()
	for {
		n, from, err := pc.ReadFromUDPAddrPort(*bp)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.stopping.Load() {
				return
			}
			s.log.Debug("udp read", "err", err)
			continue
		}
		if inline != nil {
			if reply, done := inline.ServeInline((*bp)[:n], Peer{Addr: from}, out[:0]); done {
				s.writeUDP(pc, reply, from)
				continue
			}
		}
		select {
		case s.udpSem <- struct{}{}:
		default:
			s.metrics.udpDropped.Inc()
			continue
		}
		s.wg.Add(1)
		go s.answerUDP(pc, bp, n, from)
		bp = s.bufs.Get().(*[]byte) // the goroutine owns the old one
	}
}

func (s *Server) answerUDP(pc *net.UDPConn, bp *[]byte, n int, from netip.AddrPort) {
	defer func() { <-s.udpSem; s.wg.Done() }()
	req := (*bp)[:n]
	out := s.bufs.Get().(*[]byte)
	s.writeUDP(pc, s.cfg.Handler.ServeMessage(s.ctx, req, Peer{Addr: from}, (*out)[:0]), from)
	// The reply was written: neither buffer is referenced any more.
	s.bufs.Put(bp)
	s.bufs.Put(out)
}

// writeUDP sends reply to from; nil sends nothing.
func (s *Server) writeUDP(pc *net.UDPConn, reply []byte, from netip.AddrPort) {
	if reply == nil {
		return
	}
	if _, err := pc.WriteToUDPAddrPort(reply, from); err != nil {
		s.log.Debug("udp write", "to", from, "err", err)
	}
}
