package server

import "github.com/shardns/shardns/dnsd/transport"

// ServeCommon is serveCommon for the tests: done reports whether the
// common way answered, reply is its answer.
func (s *Server) ServeCommon(req []byte, from transport.Peer, dst []byte) (reply []byte, done bool) {
	if s.l1 == nil {
		return nil, false
	}
	var lim limit
	return s.serveCommon(req, from, dst, &lim)
}

// GeneralOnly makes s answer every message the general way (serve), the
// baseline the common way is compared with.
func GeneralOnly(s *Server) *Server {
	s.generalOnly = true
	return s
}
