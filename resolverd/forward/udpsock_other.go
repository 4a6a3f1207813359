//go:build !linux

package forward

import "net/netip"

// dialUDP opens a UDP socket connected to addr for one query (name is
// for the errors of a socket that needs one).
func dialUDP(addr netip.AddrPort, _ string) (udpSocket, error) { return dialNetUDP(addr) }
