//go:build !linux

package forward

import "net/netip"

// dialUDP opens a UDP socket connected to addr for one query.
func dialUDP(addr netip.AddrPort) (udpSocket, error) { return dialNetUDP(addr) }
