//go:build !linux

package transport

import "net"

// dstInfoWorks says whether wildcard sockets learn each datagram's
// destination and send its reply from it: not here, where replies from a
// wildcard address leave from the address the kernel's routes pick.
const dstInfoWorks = false

func recvDstInfo([]*net.UDPConn) error { return nil }
