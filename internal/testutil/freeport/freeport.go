// Package freeport finds loopback ports for tests and for the processes
// the load runs start. It does not import testing.
package freeport

import (
	"fmt"
	"net"
)

// UDPTCP returns a port on 127.0.0.1 that is free for both UDP and TCP at
// the time of the call (a DNS server needs both).
func UDPTCP() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("freeport: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("freeport: no port free for both UDP and TCP")
}

// TCP returns a TCP port on 127.0.0.1 that was free a moment ago.
func TCP() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("freeport: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
