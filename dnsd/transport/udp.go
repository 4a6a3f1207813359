package transport

import (
	"errors"
	"net"
	"net/netip"
)

// readUDP reads datagrams until the socket closes, answering each on its
// own goroutine while fewer than MaxUDPInFlight are being answered; beyond
// that a datagram is dropped, as a loaded server must (the client retries).
func (s *Server) readUDP(pc *net.UDPConn) {
	defer s.wg.Done()
	for {
		bp := s.bufs.Get().(*[]byte)
		n, from, err := pc.ReadFromUDPAddrPort(*bp)
		if err != nil {
			s.bufs.Put(bp)
			if errors.Is(err, net.ErrClosed) || s.stopping.Load() {
				return
			}
			s.log.Debug("udp read", "err", err)
			continue
		}
		select {
		case s.udpSem <- struct{}{}:
		default:
			s.bufs.Put(bp)
			s.metrics.udpDropped.Inc()
			continue
		}
		s.wg.Add(1)
		go s.answerUDP(pc, bp, n, from)
	}
}

func (s *Server) answerUDP(pc *net.UDPConn, bp *[]byte, n int, from netip.AddrPort) {
	defer func() { <-s.udpSem; s.wg.Done() }()
	req := (*bp)[:n]
	out := s.bufs.Get().(*[]byte)
	reply := s.cfg.Handler.ServeMessage(s.ctx, req, Peer{Addr: from}, (*out)[:0])
	if reply != nil {
		if _, err := pc.WriteToUDPAddrPort(reply, from); err != nil {
			s.log.Debug("udp write", "to", from, "err", err)
		}
	}
	// The reply was written: neither buffer is referenced any more.
	s.bufs.Put(bp)
	s.bufs.Put(out)
}
