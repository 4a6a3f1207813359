//go:build linux

package forward

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Sizes of the spoofing test: fresh names asked, datagrams forged into the
// socket of each query while the upstream holds its answer back, sample of
// the ephemeral port range sprayed, and rounds of that spray at most.
const (
	spoofNames     = 300
	spoofPerQuery  = 300 // more than a socket's queue of 256 unmatched replies once allowed
	spoofSample    = 4096
	spoofMaxRounds = 20
	spoofBurst     = 32
	spoofDelay     = 5 * time.Millisecond
	forgedIP       = "198.51.100.66"
)

// forger writes UDP datagrams with any IPv4 source through a raw socket
// (IPPROTO_RAW: the IPv4 header is ours), on loopback only.
type forger struct {
	fd  int
	src netip.AddrPort // the upstream's address, which the datagrams claim
}

// newForger opens the raw socket; without CAP_NET_RAW the test is skipped,
// or fails when CI is set.
func newForger(t *testing.T, src netip.AddrPort) *forger {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("raw socket: %v: the spoofing test needs CAP_NET_RAW", err)
		}
		t.Skipf("raw socket: %v: the spoofing test needs CAP_NET_RAW (run as root)", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if !src.Addr().Is4() || !src.Addr().IsLoopback() {
		t.Fatalf("forger: source %v is not IPv4 loopback", src)
	}
	return &forger{fd: fd, src: src}
}

// send delivers payload to 127.0.0.1:port as a datagram from f.src.
func (f *forger) send(port uint16, payload []byte) error {
	pkt := make([]byte, 28+len(payload))
	ip, udp := pkt[:20], pkt[20:28]
	ip[0] = 0x45 // IPv4, 5-word header
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
	ip[8] = 64 // TTL
	ip[9] = syscall.IPPROTO_UDP
	src, dst := f.src.Addr().As4(), [4]byte{127, 0, 0, 1}
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	// The kernel fills in the header checksum and the IP ID (raw(7)).
	binary.BigEndian.PutUint16(udp[0:], f.src.Port())
	binary.BigEndian.PutUint16(udp[2:], port)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(pkt[28:], payload)
	binary.BigEndian.PutUint16(udp[6:], udpChecksum(src, dst, pkt[20:]))
	return syscall.Sendto(f.fd, pkt, 0, &syscall.SockaddrInet4{Addr: dst})
}

// udpChecksum is the UDP checksum of seg (header with a zero checksum,
// then payload) over the IPv4 pseudo-header (RFC 768).
func udpChecksum(src, dst [4]byte, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += syscall.IPPROTO_UDP + uint32(len(seg))
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// forgedReply is a reply for name (lower case, as a forger who does not
// know the 0x20 bits writes it) pointing at forgedIP; its ID is patched in
// the first two bytes.
func forgedReply(t *testing.T, name string) []byte {
	m := new(dns.Msg)
	m.SetQuestion(strings.ToLower(name), dns.TypeA)
	m.Response, m.Authoritative = true, true
	m.Answer = append(m.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: strings.ToLower(name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 86400},
		A:   net.ParseIP(forgedIP),
	})
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitDrained waits, until deadline at most, until the loopback UDP socket
// on port has nothing left to read (rx_queue in /proc/net/udp is 0) or is
// gone.
func waitDrained(port uint16, deadline time.Time) {
	local := fmt.Sprintf("0100007F:%04X", port)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			return
		}
		queued := false
		for _, line := range strings.Split(string(b), "\n") {
			// sl local_address rem_address st tx_queue:rx_queue ...
			f := strings.Fields(line)
			if len(f) > 4 && f[1] == local {
				_, rx, _ := strings.Cut(f[4], ":")
				queued = strings.Trim(rx, "0") != ""
			}
		}
		if !queued {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// ephemeralPorts returns a random sample of n ports from the kernel's
// ephemeral range, where the forwarder's source ports come from.
func ephemeralPorts(t *testing.T, n int) []uint16 {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo < 1 || hi > 65535 || lo > hi {
		t.Fatalf("ip_local_port_range %q: %v", b, err)
	}
	perm := rand.Perm(hi - lo + 1)
	if n > len(perm) {
		n = len(perm)
	}
	out := make([]uint16, n)
	for i := range out {
		out[i] = uint16(lo + perm[i])
	}
	return out
}

// An off-path attacker on the same host forges replies from the upstream's
// address and port: (a) spoofPerQuery of them into each query's own socket
// (its port as the upstream sees it) with guessed IDs and the name in lower
// case, while the upstream holds its answer back spoofDelay, and (b) a
// spray over a sample of the ephemeral port range for the names in flight,
// while spoofNames fresh names are asked. No forged answer may be taken and
// no query may fail; the forged datagrams must have arrived (counted as
// ignored), so that the test can fail.
func TestSpoofedRepliesNeverTaken(t *testing.T) {
	names := make([]string, spoofNames)
	tag := rand.Uint64()
	for i := range names {
		names[i] = fmt.Sprintf("Fresh%d-%x.Spoof.Example.", i, tag)
	}
	var (
		forgeMu sync.Mutex
		frg     atomic.Pointer[forger]
		forgedA atomic.Int64
		sendErr atomic.Value
	)
	upstream := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		port := uint16(w.RemoteAddr().(*net.UDPAddr).Port)
		if f := frg.Load(); f != nil {
			// In bursts that fit the socket's buffer, each sent once the
			// last is read: the forger here shares the forwarder's CPUs,
			// and must not starve its reads as one elsewhere could not.
			forgeMu.Lock()
			giveUp := time.Now().Add(2 * time.Second)
			payload := forgedReply(t, r.Question[0].Name)
			for i := range spoofPerQuery {
				id := uint16(rand.Uint32())
				if id == r.Id { // an off-path forger does not know it
					id++
				}
				binary.BigEndian.PutUint16(payload, id)
				if err := f.send(port, payload); err != nil {
					sendErr.Store(err)
					break
				}
				forgedA.Add(1)
				if i%spoofBurst == spoofBurst-1 {
					waitDrained(port, giveUp)
				}
			}
			forgeMu.Unlock()
		}
		time.Sleep(spoofDelay)
		_ = w.WriteMsg(reply(r, "192.0.2.1"))
	})
	addr, _ := startUDP(t, "127.0.0.1:0", upstream)
	up := netip.MustParseAddrPort(addr)
	frg.Store(newForger(t, up))
	// Generous timeouts: the forging is serialised, so on a loaded machine
	// a query may wait for others' forgeries before its answer comes.
	fwd := newForwarder(t, Config{Upstreams: []string{addr}, Timeout: 10 * time.Second, HealthInterval: -1})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var (
		next, asked atomic.Int64
		mu          sync.Mutex
		failures    []string
		taken       []string
	)
	done := make(chan struct{})
	// (b): spray the sample with replies for the names in flight.
	var forgedB atomic.Int64
	sprayDone := make(chan struct{})
	go func() {
		defer close(sprayDone)
		ports := ephemeralPorts(t, spoofSample)
		f := frg.Load()
		for range spoofMaxRounds {
			for _, p := range ports {
				select {
				case <-done:
					return
				default:
				}
				i := min(int(next.Load())+rand.IntN(8), spoofNames-1)
				payload := forgedReply(t, names[i])
				binary.BigEndian.PutUint16(payload, uint16(rand.Uint32()))
				if err := f.send(p, payload); err != nil {
					sendErr.Store(err)
					return
				}
				forgedB.Add(1)
			}
			time.Sleep(10 * time.Millisecond) // leave the CPUs to the queries now and then
		}
	}()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= spoofNames {
					return
				}
				qctx, qcancel := context.WithTimeout(ctx, 15*time.Second)
				resp, _, err := fwd.Exchange(qctx, query(names[i], dns.TypeA))
				qcancel()
				asked.Add(1)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, fmt.Sprintf("%s: %v", names[i], err))
				case firstA(resp) != "192.0.2.1" || resp.Question[0].Name != names[i]:
					taken = append(taken, fmt.Sprintf("%s: A %s, question %v", names[i], firstA(resp), resp.Question))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(done)
	<-sprayDone
	if err, _ := sendErr.Load().(error); err != nil {
		t.Fatalf("forging: %v", err)
	}
	st := fwd.Upstreams()[0]
	t.Logf("%d names asked; %d datagrams forged into the queries' sockets, %d sprayed over %d ports; %d ignored",
		asked.Load(), forgedA.Load(), forgedB.Load(), spoofSample, st.Ignored)
	if asked.Load() != spoofNames {
		t.Errorf("asked %d names of %d before the test's deadline", asked.Load(), spoofNames)
	}
	if len(taken) > 0 {
		t.Errorf("%d forged or wrong answers taken, e.g. %s", len(taken), taken[0])
	}
	if len(failures) > 0 {
		t.Errorf("%d queries failed, e.g. %s", len(failures), failures[0])
	}
	if st.TotalFailures != 0 || !st.Healthy {
		t.Errorf("forged datagrams counted against the upstream: %+v", st)
	}
	// The forged datagrams reached the sockets: most of (a) at least.
	if st.Ignored < uint64(forgedA.Load())/2 {
		t.Errorf("only %d datagrams ignored of %d forged into the sockets: the forgery did not arrive", st.Ignored, forgedA.Load())
	}
}
