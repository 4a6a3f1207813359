//go:build !linux

package transport

import "net"

// openSendSockets is Linux's only: elsewhere the reading sockets send.
func openSendSockets([]*net.UDPConn) ([]batchWriter, error) { return nil, nil }
