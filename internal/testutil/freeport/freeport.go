// Package freeport finds loopback ports for tests and for the processes
// the load runs start. It does not import testing.
//
// A port is found by binding port 0 and closing the socket, so the caller
// can hand the number to a process that binds it later. The kernel may
// offer the same port again as soon as the probe is closed, so a process
// that asks twice before the first taker has bound could get one port for
// two servers; each port is therefore handed out at most once per process.
package freeport

import (
	"fmt"
	"net"
	"sync"
)

// tries bounds the probes of one call.
const tries = 50

// handedOut holds every port this process has handed out. It is package
// state because the callers that must not share a port (the tests of one
// package, run in parallel) know nothing of each other.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// claim records port as handed out and reports whether it was not yet.
func claim(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[port] {
		return false
	}
	handedOut.ports[port] = true
	return true
}

// UDPTCP returns a port on 127.0.0.1 that is free for both UDP and TCP at
// the time of the call (a DNS server needs both) and that this process has
// not handed out before.
func UDPTCP() (int, error) {
	for range tries {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("freeport: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		ln.Close()
		if err == nil {
			pc.Close()
			if claim(port) {
				return port, nil
			}
		}
	}
	return 0, fmt.Errorf("freeport: no port free for both UDP and TCP in %d tries", tries)
}

// TCP returns a TCP port on 127.0.0.1 that was free a moment ago and that
// this process has not handed out before.
func TCP() (int, error) {
	for range tries {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("freeport: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if claim(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("freeport: no TCP port free in %d tries", tries)
}
