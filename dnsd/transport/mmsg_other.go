//go:build !linux

package transport

import "net"

// Elsewhere than Linux, datagrams go through x/net, and the reading
// sockets send the replies.

func newDgramReader(pc *net.UDPConn) dgramReader { return newXnetConn(pc) }

func openSendSockets([]*net.UDPConn) ([]replySocket, error) { return nil, nil }
