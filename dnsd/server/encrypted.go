package server

import (
	"crypto/tls"
	"net"
)

// ListenDoT serves DNS over TLS (RFC 7858) on every address, through the
// same path as TCP, with cfg's certificate; it returns the bound
// addresses. See transport.Server.ListenDoT.
func (s *Server) ListenDoT(addrs []string, cfg *tls.Config) ([]net.Addr, error) {
	return s.tr.ListenDoT(addrs, cfg)
}

// ListenDoH serves DNS over HTTPS (RFC 8484) on every address; see
// transport.Server.ListenDoH.
func (s *Server) ListenDoH(addrs []string, cfg *tls.Config) ([]net.Addr, error) {
	return s.tr.ListenDoH(addrs, cfg)
}

// ListenDoQ serves DNS over QUIC (RFC 9250) on every address; see
// transport.Server.ListenDoQ.
func (s *Server) ListenDoQ(addrs []string, cfg *tls.Config) ([]net.Addr, error) {
	return s.tr.ListenDoQ(addrs, cfg)
}
