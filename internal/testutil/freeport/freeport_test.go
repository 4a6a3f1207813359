package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestNeverTheSamePortTwice asks for many ports without binding any: the
// kernel offers closed ports again, and no port may come back twice.
func TestNeverTheSamePortTwice(t *testing.T) {
	seen := map[int]string{}
	for i := range 3000 {
		get, kind := TCP, "TCP"
		if i%2 == 1 {
			get, kind = UDPTCP, "UDPTCP"
		}
		p, err := get()
		if err != nil {
			t.Fatalf("%s after %d ports: %v", kind, i, err)
		}
		if prev, ok := seen[p]; ok {
			t.Fatalf("port %d handed out twice (%s, then %s) after %d ports", p, prev, kind, i)
		}
		seen[p] = kind
	}
}

// TestPortIsFree binds the port handed out, over TCP and UDP.
func TestPortIsFree(t *testing.T) {
	p, err := UDPTCP()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP %s: %v", addr, err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("UDP %s: %v", addr, err)
	}
	pc.Close()
}
