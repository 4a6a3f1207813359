//go:build !linux

package transport

import "net"

// Elsewhere than Linux, datagrams go through x/net, and the reading
// sockets send the replies.

func newDgramReader(pc *net.UDPConn, _ bool) dgramReader { return newXnetConn(pc) }

func newReplyWriter(pc *net.UDPConn) dgramWriter { return newXnetConn(pc) }

func openSendSockets([]*net.UDPConn) ([]replySocket, error) { return nil, nil }
