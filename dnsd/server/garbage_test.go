package server_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// checkAlive fails the test unless the server answers a normal query over
// UDP and TCP.
func checkAlive(t *testing.T, s *setup, id uint16) {
	t.Helper()
	for _, network := range []string{"udp", "tcp"} {
		r := exchange(t, network, s.addr(network), query("alive.example.com.", dns.TypeA, id))
		if r.Rcode != dns.RcodeSuccess || firstA(r) == "" {
			t.Fatalf("%s: after garbage, rcode %s", network, dns.RcodeToString[r.Rcode])
		}
	}
}

// Garbage datagrams get FORMERR (NOTIMP when their opcode is not QUERY or
// NOTIFY) or nothing, and the server keeps answering.
func TestGarbageUDP(t *testing.T) {
	s := newSetup(t, options{})
	rng := rand.New(rand.NewPCG(1, 2))

	t.Run("header only, QDCOUNT 1", func(t *testing.T) {
		h := make([]byte, 12)
		binary.BigEndian.PutUint16(h, 0x4242)
		binary.BigEndian.PutUint16(h[4:], 1)
		checkGarbageReply(t, h, rawUDP(t, s.udp, h, 500*time.Millisecond))
		checkAlive(t, s, 1)
	})
	t.Run("name cut short", func(t *testing.T) {
		h := make([]byte, 12, 20)
		binary.BigEndian.PutUint16(h, 0x4343)
		binary.BigEndian.PutUint16(h[4:], 1)
		h = append(h, 7, 'e', 'x', 'a')
		checkGarbageReply(t, h, rawUDP(t, s.udp, h, 500*time.Millisecond))
		checkAlive(t, s, 2)
	})
	t.Run("random", func(t *testing.T) {
		// One socket: each datagram is followed by a real query, and every
		// datagram that comes back is either its answer or a garbage reply.
		c, err := net.Dial("udp", s.udp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 65535)
		for i := range 64 {
			g := make([]byte, 1+rng.IntN(600))
			for j := range g {
				g[j] = byte(rng.Uint32())
			}
			q := query("alive.example.com.", dns.TypeA, uint16(0xA000+i))
			if _, err := c.Write(g); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(pack(t, q)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(clientTimeout))
			for answered := false; !answered; {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("datagram %d: no answer to the query after it: %v", i, err)
				}
				r := unpack(t, buf[:n])
				if r.Id == q.Id && r.Rcode == dns.RcodeSuccess && len(r.Question) == 1 && r.Question[0].Name == q.Question[0].Name {
					answered = true
					continue
				}
				if r.Rcode != dns.RcodeFormatError && r.Rcode != dns.RcodeNotImplemented {
					t.Errorf("garbage reply ID %d: rcode %s, want FORMERR or NOTIMP", r.Id, dns.RcodeToString[r.Rcode])
				}
				// Replies may come out of order: judge by the reply's own
				// opcode, which echoes the garbage's.
				if r.Rcode == dns.RcodeNotImplemented && r.Opcode == dns.OpcodeQuery {
					t.Errorf("NOTIMP for opcode QUERY (ID %d)", r.Id)
				}
			}
		}
		checkAlive(t, s, 3)
	})
	if n := s.auth.Count("alive.example.com.", dns.TypeA); n != 1 {
		t.Errorf("upstream asked %d times for alive.example.com., want 1", n)
	}
}

// checkGarbageReply accepts no reply, or FORMERR carrying the garbage's ID.
func checkGarbageReply(t *testing.T, garbage, reply []byte) {
	t.Helper()
	if reply == nil {
		return
	}
	r := unpack(t, reply)
	if r.Rcode != dns.RcodeFormatError || r.Id != binary.BigEndian.Uint16(garbage) {
		t.Errorf("reply ID %d rcode %s; want FORMERR with ID %d", r.Id, dns.RcodeToString[r.Rcode], binary.BigEndian.Uint16(garbage))
	}
}

// Garbage on a TCP connection does not stop the server.
func TestGarbageTCP(t *testing.T) {
	s := newSetup(t, options{})
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 8 {
		c, err := net.DialTimeout("tcp", s.tcp, clientTimeout)
		if err != nil {
			t.Fatal(err)
		}
		g := make([]byte, 2+rng.IntN(300))
		for j := range g {
			g[j] = byte(rng.Uint32())
		}
		if i%2 == 0 { // a valid length prefix over random bytes
			binary.BigEndian.PutUint16(g, uint16(len(g)-2))
		}
		_ = c.SetDeadline(time.Now().Add(clientTimeout))
		_, _ = c.Write(g)
		c.Close()
	}
	checkAlive(t, s, 4)
}
