// Package fakenet builds a fake Internet on loopback for resolver tests: a
// root, TLDs and leaf zones, signed at test time with ldns-signzone, each
// authoritative server its own nsd on port 53 of an address in a /24 of
// 127.0.0.0/8 picked per Start, with the root hints and trust anchor that
// name the fake root, a table of questions with the answers a validating
// resolver gives (Questions), and Unbound as the reference resolver
// (StartUnbound).
//
// A resolver test starts it, points the resolver at n.RootHints and
// n.TrustAnchor, listens on n.Spare(t) and checks each row:
//
//	n := fakenet.Start(t, fakenet.Options{Unbound: true})
//	for _, q := range fakenet.Questions() {
//		r, err := q.Ask(ctx, resolverAddr, false)
//		...
//		err = q.Check(r)
//	}
//
// and counts the queries the servers received with n.Queries.
//
// Binding port 53 needs root: without it, or without nsd, unbound or
// ldnsutils, the test is skipped, or fails when CI is set.
package fakenet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Options tune a Start.
type Options struct {
	// Unbound starts Unbound on the fake Internet too (Net.Unbound).
	Unbound bool
	// Prefix forces the /24 ("127.a.b"); empty picks one at random.
	Prefix string
}

// Server is one authoritative server of the fake Internet.
type Server struct {
	Name  string     // its NS name ("a.root-servers.fake.")
	Addr  netip.Addr // it answers on port 53
	Zones []string   // the zones it serves
	// Kind is "nsd", "lame" (nsd serving none of the zones delegated to
	// it), "tcp-only" (UDP answers truncated), "no-edns" (FORMERR to
	// queries with EDNS) or "blackhole" (never answers).
	Kind string
}

// Net is a running fake Internet.
type Net struct {
	// Prefix is the /24's first three octets ("127.a.b").
	Prefix string
	// Dir holds the zone files, the servers' configurations and logs.
	Dir string
	// RootHints is a root hints file naming the fake root server.
	RootHints string
	// TrustAnchor holds the root's DS records (SHA-256) in zone-file
	// syntax; TrustAnchorDNSKEY its key signing key as a DNSKEY record.
	TrustAnchor, TrustAnchorDNSKEY string
	// RootDS is the trust anchor's DS record.
	RootDS *dns.DS
	// Root is the root server's address and port ("127.a.b.1:53").
	Root string
	// Servers lists every authoritative server, the root first.
	Servers []Server
	// Unbound is the reference resolver when Options.Unbound is set.
	Unbound *Unbound

	mu    sync.Mutex
	spare int // the next host octet Spare hands out
	// nsds are the nsd processes by host octet (for a front, the one
	// behind it), fronts the Go servers: what Queries asks.
	nsds   map[byte]*nsdServer
	fronts map[byte]*front
}

// serverNames are the NS names of the servers by host octet.
var serverNames = map[byte]string{
	hostRoot:      "a.root-servers.fake.",
	hostFake:      "ns.nic.fake.",
	hostWorld:     "ns.nic.world.",
	hostShared:    "ns.secure.fake.",
	hostInsecure:  "ns.insecure.fake.",
	hostBroken:    "ns.bogus.fake.",
	hostNSEC3:     "ns.nsec3.fake.",
	hostGlueless:  "ns1.hosting.world.",
	hostHosting:   "ns.hosting.world.",
	hostLame:      "ns1.lame.fake.",
	hostLameGood:  "ns2.lame.fake.",
	hostTCPOnly:   "ns.tcp.fake.",
	hostBlackhole: "ns1.timeout.fake.",
	hostNoEDNS:    "ns.edns.fake.",
}

// frontModes are the servers played by a front, by host octet.
var frontModes = map[byte]frontMode{
	hostTCPOnly:   tcpOnlyMode,
	hostNoEDNS:    noEDNSMode,
	hostBlackhole: blackholeMode,
}

// prefixes holds the /24s this process has handed out: tests of one
// package start fake Internets in parallel and must not share one.
var prefixes = struct {
	sync.Mutex
	used map[string]bool
}{used: map[string]bool{}}

// Start builds the fake Internet and runs its servers until the test ends.
func Start(t TB, o Options) *Net {
	t.Helper()
	for _, bin := range []string{"nsd", "nsd-control", "ldns-keygen", "ldns-signzone", "unbound"} {
		if _, err := lookPath(bin); err != nil {
			missing(t, fmt.Sprintf("%s not found (apt-get install nsd unbound ldnsutils)", bin))
		}
	}
	keys, err := processKeys.get(zoneSpecs)
	if err != nil {
		t.Fatal(err)
	}
	n := &Net{Dir: t.TempDir(), spare: firstSpare}
	n.Prefix = o.Prefix
	if n.Prefix == "" {
		n.Prefix = pickPrefix(t)
	} else if err := checkBinds(n.Prefix); err != nil {
		t.Fatalf("fakenet: prefix %s: %v", n.Prefix, err)
	}
	n.Root = hostPort(n.addr(hostRoot).String())

	texts, err := n.buildZones(keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.writeAnchors(keys["."]); err != nil {
		t.Fatal(err)
	}
	n.startServers(t, texts)
	if o.Unbound {
		n.Unbound = n.StartUnbound(t)
	}
	return n
}

// addr is the address of host in the /24.
func (n *Net) addr(host byte) netip.Addr {
	return netip.MustParseAddr(n.Prefix + "." + strconv.Itoa(int(host)))
}

// Spare returns an address of the /24 that no server of the fake Internet
// uses and that was free on port 53 (UDP and TCP) a moment ago: where a
// resolver under test listens.
func (n *Net) Spare(t TB) netip.Addr {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	for n.spare < 255 {
		a := n.addr(byte(n.spare))
		n.spare++
		if err := checkBind(a.String(), 53); err == nil {
			return a
		}
	}
	t.Fatalf("fakenet: no spare address left in %s.0/24", n.Prefix)
	return netip.Addr{}
}

// buildZones writes and signs every zone, returning origin → zone text.
func (n *Net) buildZones(keys map[string]keyPair) (map[string]string, error) {
	ds := map[string][]*dns.DS{}
	for _, z := range zoneSpecs {
		for _, digest := range z.ds {
			key := keys[z.origin].ksk.dnskey
			if z.dsUnpublished {
				key = keys[z.origin].unpublished.dnskey
			}
			d := key.ToDS(digest)
			if d == nil {
				return nil, fmt.Errorf("fakenet: DS digest %d of %s", digest, z.origin)
			}
			d.Hdr.Ttl = 300
			ds[z.origin] = append(ds[z.origin], d)
		}
	}
	signDir := filepath.Join(n.Dir, "sign")
	if err := os.MkdirAll(signDir, 0o755); err != nil {
		return nil, fmt.Errorf("fakenet: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now()
	texts := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(zoneSpecs))
	for i, z := range zoneSpecs {
		text := zoneText(z, n.Prefix, ds)
		if z.alg == 0 {
			mu.Lock()
			texts[z.origin] = text
			mu.Unlock()
			continue
		}
		so := signOptions{nsec3: z.nsec3, inception: now.Add(-time.Hour), expiration: now.Add(30 * 24 * time.Hour)}
		if z.expired {
			so.inception, so.expiration = now.Add(-30*24*time.Hour), now.Add(-7*24*time.Hour)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			signed, err := sign(ctx, signDir, z.origin, text, keys[z.origin], so)
			if err == nil && z.tamper != nil {
				signed, err = z.tamper(signed)
			}
			if err != nil {
				errs[i] = fmt.Errorf("fakenet: zone %s: %w", z.origin, err)
				return
			}
			mu.Lock()
			texts[z.origin] = signed
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return texts, nil
}

// writeAnchors writes the root hints and the trust anchors.
func (n *Net) writeAnchors(root keyPair) error {
	n.RootHints = filepath.Join(n.Dir, "root.hints")
	hints := fmt.Sprintf(".\t3600000\tIN\tNS\ta.root-servers.fake.\na.root-servers.fake.\t3600000\tIN\tA\t%s\n", n.addr(hostRoot))
	if err := os.WriteFile(n.RootHints, []byte(hints), 0o644); err != nil {
		return fmt.Errorf("fakenet: root hints: %w", err)
	}
	n.RootDS = root.ksk.dnskey.ToDS(dns.SHA256)
	n.RootDS.Hdr.Ttl = 86400
	n.TrustAnchor = filepath.Join(n.Dir, "root.ds")
	if err := os.WriteFile(n.TrustAnchor, []byte(n.RootDS.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("fakenet: trust anchor: %w", err)
	}
	key := *root.ksk.dnskey
	key.Hdr.Ttl = 86400
	n.TrustAnchorDNSKEY = filepath.Join(n.Dir, "root.dnskey")
	if err := os.WriteFile(n.TrustAnchorDNSKEY, []byte(key.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("fakenet: trust anchor: %w", err)
	}
	return nil
}

// startServers starts one nsd per server address (and the fronts) in
// parallel and waits until each answers for its zones.
func (n *Net) startServers(t TB, texts map[string]string) {
	t.Helper()
	byHost := map[byte][]string{hostBlackhole: nil}
	for _, z := range zoneSpecs {
		byHost[z.host] = append(byHost[z.host], z.origin)
	}
	hosts := make([]byte, 0, len(byHost))
	for h := range byHost {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	ctlDir, err := os.MkdirTemp("", "fakenet-ctl-")
	if err != nil {
		t.Fatalf("fakenet: control sockets: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(ctlDir) })
	n.nsds, n.fronts = map[byte]*nsdServer{}, map[byte]*front{}
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		kind := "nsd"
		switch h {
		case hostLame:
			kind = "lame"
		case hostTCPOnly:
			kind = "tcp-only"
		case hostNoEDNS:
			kind = "no-edns"
		case hostBlackhole:
			kind = "blackhole"
		}
		n.Servers = append(n.Servers, Server{Name: serverNames[h], Addr: n.addr(h), Zones: byHost[h], Kind: kind})
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := n.addr(h).String()
			mode, isFront := frontModes[h]
			if mode == blackholeMode {
				f, err := startFront(mode, addr, "")
				if err != nil {
					errs[i] = err
					return
				}
				t.Cleanup(f.stop)
				n.mu.Lock()
				n.fronts[h] = f
				n.mu.Unlock()
				return
			}
			port := 53
			if isFront {
				p, err := freePortOn(addr)
				if err != nil {
					errs[i] = err
					return
				}
				port = p
			}
			dir := filepath.Join(n.Dir, "nsd-"+strconv.Itoa(int(h)))
			// A short path: a Unix socket's is limited to 107 bytes.
			ctl := filepath.Join(ctlDir, strconv.Itoa(int(h))+".sock")
			s, err := startNSD(dir, ctl, addr, port, byHost[h], texts)
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(s.stop)
			n.mu.Lock()
			n.nsds[h] = s
			n.mu.Unlock()
			if isFront {
				f, err := startFront(mode, addr, s.addr)
				if err != nil {
					errs[i] = err
					return
				}
				t.Cleanup(f.stop)
				n.mu.Lock()
				n.fronts[h] = f
				n.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// Queries returns how many queries each server has received since it
// started, over UDP and TCP, by the server's NS name (Server.Name; for a
// front, the queries the front received). The
// counts include the few queries Start sends to check that each server
// is up: compare two calls (Counts.Sub) around what is measured.
func (n *Net) Queries(ctx context.Context) (Counts, error) {
	n.mu.Lock()
	nsds, fronts := maps.Clone(n.nsds), maps.Clone(n.fronts)
	n.mu.Unlock()
	counts := Counts{}
	for h, f := range fronts {
		counts[serverNames[h]] = f.queries.Load()
	}
	for h, s := range nsds {
		if _, ok := fronts[h]; ok {
			continue
		}
		q, err := s.queries(ctx)
		if err != nil {
			return nil, err
		}
		counts[serverNames[h]] = q
	}
	return counts, nil
}

// Counts are query counts by server NS name.
type Counts map[string]uint64

// Sub is c less before, server by server: the queries between two calls
// of Queries.
func (c Counts) Sub(before Counts) Counts {
	out := Counts{}
	for name, v := range c {
		out[name] = v - before[name]
	}
	return out
}

// Total is the sum of the counts.
func (c Counts) Total() uint64 {
	var sum uint64
	for _, v := range c {
		sum += v
	}
	return sum
}

// pickPrefix picks a /24 of 127.0.0.0/8 away from 127.0.0.0/16 whose
// server addresses bind on port 53, and that this process has not used.
func pickPrefix(t TB) string {
	t.Helper()
	var lastErr error
	for range 50 {
		p := fmt.Sprintf("127.%d.%d", 1+rand.IntN(250), 1+rand.IntN(250))
		prefixes.Lock()
		used := prefixes.used[p]
		prefixes.used[p] = true
		prefixes.Unlock()
		if used {
			continue
		}
		err := checkBinds(p)
		if err == nil {
			return p
		}
		if errors.Is(err, syscall.EACCES) {
			missing(t, fmt.Sprintf("binding port 53 needs root: %v", err))
		}
		lastErr = err
	}
	t.Fatalf("fakenet: no /24 of 127.0.0.0/8 free on port 53: %v", lastErr)
	return ""
}

// checkBinds checks that every server address of the /24 binds port 53.
func checkBinds(prefix string) error {
	for h := range serverNames {
		if err := checkBind(prefix+"."+strconv.Itoa(int(h)), 53); err != nil {
			return err
		}
	}
	return nil
}

// checkBind binds addr:port over UDP and TCP and lets go.
func checkBind(addr string, port int) error {
	hp := net.JoinHostPort(addr, strconv.Itoa(port))
	l, err := net.Listen("tcp", hp)
	if err != nil {
		return fmt.Errorf("fakenet: bind %s: %w", hp, err)
	}
	defer l.Close()
	pc, err := net.ListenPacket("udp", hp)
	if err != nil {
		return fmt.Errorf("fakenet: bind %s: %w", hp, err)
	}
	return pc.Close()
}

// freePortOn finds a port free for UDP and TCP on addr.
func freePortOn(addr string) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			return 0, fmt.Errorf("fakenet: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("fakenet: no port free for UDP and TCP on %s", addr)
}

// lookPath finds bin on PATH or in the sbin folders a non-login shell
// may leave out.
func lookPath(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, bin)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("fakenet: %s not found", bin)
}

// missing skips the test for want of a tool or a privilege, or fails it
// when CI is set (the CI runs as root with every tool installed).
func missing(t TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal("fakenet: " + why)
	}
	t.Skip("fakenet: " + why)
}
