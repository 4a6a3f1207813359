package forward

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Transport names, as they appear in an upstream's canonical string.
const (
	protoUDP = "udp"
	protoTCP = "tcp"
	protoTLS = "tls"
)

// unhealthyAfter is the number of consecutive failures that mark an
// upstream unhealthy.
const unhealthyAfter = 3

// caseOffAfter is the number of replies differing from the query in the
// case of the name only, with no exact echo between them, after which an
// upstream is taken not to keep case and gets no more 0x20. One such reply
// may be a forger's lucky guess of the ID; a server that lowercases names
// sends them every time.
const caseOffAfter = 3

// upstream is one configured server and what we have learnt about it.
type upstream struct {
	proto       string         // protoUDP, protoTCP or protoTLS
	addr        string         // "ip:port", for net.Dialer
	udpAddrPort netip.AddrPort // addr, parsed once for the per-query UDP socket
	serverName  string         // TLS server name (tls only)
	canon       string         // canonical string, e.g. "udp://127.0.0.1:53"
	tlsConfig   *tls.Config    // per-upstream clone with ServerName set (tls only)

	trusted      bool   // AD in its answers is passed on
	noEDNS       bool   // queries go without an OPT record (Exchanger's plain servers)
	clientCookie string // our RFC 7873 client cookie for it, 16 hex digits

	ignored        atomic.Uint64                    // replies dropped: wrong ID, question or cookie, unparsable
	case0x20       atomic.Bool                      // names go out in random case (udp only)
	caseMismatches atomic.Uint64                    // replies that differed from the query in case only
	caseStreak     atomic.Int32                     // case-only mismatches since the last exact echo
	cookie         atomic.Pointer[dns.EDNS0_COOKIE] // what queries carry: client and last server cookie

	mu      sync.Mutex
	healthy bool
	srtt    time.Duration // smoothed RTT, 0 = no sample yet
	fails   int           // consecutive failures
	total   uint64        // failures since start
}

// UpstreamStatus is a snapshot of one upstream's state, for stats and readiness.
type UpstreamStatus struct {
	// Address is the upstream's canonical string, e.g. "udp://127.0.0.1:53".
	Address string
	// Healthy is false after several consecutive failures, until a health
	// probe or a query succeeds again.
	Healthy bool
	// RTT is the smoothed round-trip time (0 before the first sample).
	RTT time.Duration
	// Failures counts consecutive failed attempts (reset by a success).
	Failures int
	// TotalFailures counts failed attempts since the forwarder started.
	TotalFailures uint64
	// Ignored counts replies that were dropped because their ID, question
	// or client cookie did not match the query, or because they could not
	// be parsed.
	Ignored uint64
	// Case0x20 is true while names sent to the upstream get random case
	// (UDP upstreams that keep case).
	Case0x20 bool
	// CaseMismatches counts replies that matched a query in all but the
	// case of the name, and were therefore not taken.
	CaseMismatches uint64
	// ServerCookie is true once the upstream has sent a server cookie
	// (RFC 7873) that later queries carry.
	ServerCookie bool
	// Trusted is true when the upstream's AD bit is passed on.
	Trusted bool
}

// parseUpstream parses "host[:port]", "udp://host[:port]", "tcp://host[:port]"
// or "tls://host[:port][#servername]". The host must be an IP address (IPv6
// in brackets when a port follows), so that forwarding never depends on name
// resolution.
func parseUpstream(s string) (*upstream, error) {
	u, err := parseUpstreamBare(s)
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	return u, nil
}

// parseUpstreamBare is parseUpstream with errors that carry no component
// prefix, for callers that say where the upstream was written.
func parseUpstreamBare(s string) (*upstream, error) {
	bad := func(why string) error { return fmt.Errorf("bad upstream %q: %s", s, why) }
	if strings.TrimSpace(s) != s {
		return nil, bad("leading or trailing space")
	}
	if s == "" {
		return nil, bad("empty")
	}
	proto, rest := protoUDP, s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case protoUDP, protoTCP, protoTLS:
			proto = strings.ToLower(scheme)
		default:
			return nil, bad("unknown scheme " + strconv.Quote(scheme) + " (want udp, tcp or tls)")
		}
		rest = after
	}
	serverName := ""
	if hostPart, name, ok := strings.Cut(rest, "#"); ok {
		if proto != protoTLS {
			return nil, bad("a #servername suffix is only allowed for tls://")
		}
		if name == "" {
			return nil, bad("empty server name after #")
		}
		if strings.ContainsAny(name, "/# ") {
			return nil, bad("invalid server name " + strconv.Quote(name))
		}
		rest, serverName = hostPart, name
	}
	if strings.ContainsAny(rest, "/?@ ") {
		return nil, bad("unexpected characters in address")
	}
	port := 53
	if proto == protoTLS {
		port = 853
	}
	ip, err := splitAddr(rest, &port)
	if err != nil {
		return nil, bad(err.Error())
	}
	u := &upstream{
		proto:       proto,
		addr:        netip.AddrPortFrom(ip, uint16(port)).String(),
		udpAddrPort: netip.AddrPortFrom(ip, uint16(port)),
		healthy:     true,
	}
	u.canon = proto + "://" + u.addr
	if proto == protoTLS {
		if serverName == "" {
			serverName = ip.String()
		} else {
			u.canon += "#" + serverName
		}
		u.serverName = serverName
	}
	return u, nil
}

// splitAddr parses "ip", "ip:port", "[ip6]" or "[ip6]:port". port holds the
// default on entry and the parsed port on return.
func splitAddr(s string, port *int) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, errors.New("missing host")
	}
	// A bare IP address, including an IPv6 literal without brackets.
	if ip, err := netip.ParseAddr(s); err == nil {
		return checkIP(ip)
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		ip, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil {
			return netip.Addr{}, fmt.Errorf("host %q is not an IP address", s)
		}
		return checkIP(ip)
	}
	if !strings.Contains(s, ":") {
		return netip.Addr{}, fmt.Errorf("host %q is not an IP address (for DNS over TLS use tls://IP#servername)", s)
	}
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p[0] == '+' {
		return netip.Addr{}, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	if host == "" {
		return netip.Addr{}, errors.New("missing host")
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("host %q is not an IP address (for DNS over TLS use tls://IP#servername)", host)
	}
	*port = n
	return checkIP(ip)
}

func checkIP(ip netip.Addr) (netip.Addr, error) {
	if ip.Zone() != "" {
		return netip.Addr{}, errors.New("IPv6 zones are not supported")
	}
	if ip.IsUnspecified() || ip.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("address %s cannot be an upstream", ip)
	}
	return ip.Unmap(), nil
}

// status returns a snapshot of u.
func (u *upstream) status() UpstreamStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	return UpstreamStatus{
		Address:        u.canon,
		Healthy:        u.healthy,
		RTT:            u.srtt,
		Failures:       u.fails,
		TotalFailures:  u.total,
		Ignored:        u.ignored.Load(),
		Case0x20:       u.case0x20.Load(),
		CaseMismatches: u.caseMismatches.Load(),
		ServerCookie:   len(u.cookie.Load().Cookie) > len(u.clientCookie),
		Trusted:        u.trusted,
	}
}

// initCookie gives u a fresh client cookie and no server cookie.
func (u *upstream) initCookie() {
	u.clientCookie = clientCookie()
	u.cookie.Store(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: u.clientCookie})
}

// cookieOption returns the COOKIE option for the next query to u. It is
// shared and must not be modified.
func (u *upstream) cookieOption() *dns.EDNS0_COOKIE { return u.cookie.Load() }

// setServerCookie keeps server (hex), from a reply that echoed our client
// cookie, for later queries.
func (u *upstream) setServerCookie(server string) {
	if cur := u.cookie.Load(); cur.Cookie[len(u.clientCookie):] == server {
		return
	}
	u.cookie.Store(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: u.clientCookie + server})
}

// caseMismatch records a reply that differed from the query in case only.
// It reports whether this one turned 0x20 off for u.
func (u *upstream) caseMismatch() (turnedOff bool) {
	u.caseMismatches.Add(1)
	return u.caseStreak.Add(1) >= caseOffAfter && u.case0x20.CompareAndSwap(true, false)
}

// caseExact records a reply that echoed a 0x20 name exactly.
func (u *upstream) caseExact() {
	if u.caseStreak.Load() != 0 {
		u.caseStreak.Store(0)
	}
}

// success records an answer that took rtt. It reports whether u was
// unhealthy before.
func (u *upstream) success(rtt time.Duration) (recovered bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.srtt = smooth(u.srtt, rtt)
	u.fails = 0
	recovered = !u.healthy
	u.healthy = true
	return recovered
}

// failure records a failed attempt that used up penalty. It reports whether
// this failure made u unhealthy.
func (u *upstream) failure(penalty time.Duration) (downed bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.srtt = smooth(u.srtt, penalty)
	u.fails++
	u.total++
	if u.healthy && u.fails >= unhealthyAfter {
		u.healthy = false
		return true
	}
	return false
}

// smooth folds a sample into a smoothed RTT (weight 1/8, as TCP's SRTT).
func smooth(srtt, sample time.Duration) time.Duration {
	if srtt == 0 {
		return sample
	}
	return srtt - srtt/8 + sample/8
}
