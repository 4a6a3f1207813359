package peers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/proc"
)

// UnboundConf is an unbound.conf for a caching forwarder on
// 127.0.0.1:port: one thread, every query forwarded to upstream (a
// loopback host:port), caches far larger than the zone, no DNSSEC
// validation (module-config "iterator"), no remote control, and sockets on
// loopback only.
func UnboundConf(port int, dir, upstreamHost string, upstreamPort int) string {
	return fmt.Sprintf(`server:
  interface: 127.0.0.1@%d
  port: %d
  outgoing-interface: 127.0.0.1
  do-ip4: yes
  do-ip6: no
  do-udp: yes
  do-tcp: yes
  num-threads: 1
  so-reuseport: no
  chroot: ""
  username: ""
  directory: %q
  pidfile: %q
  use-syslog: no
  logfile: ""
  verbosity: 0
  module-config: "iterator"
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  msg-cache-size: 256m
  rrset-cache-size: 512m
  num-queries-per-thread: 4096
  outgoing-range: 8192
  prefetch: no
  qname-minimisation: no
  minimal-responses: yes
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: %s@%d
`, port, port, dir, filepath.Join(dir, "unbound.pid"), upstreamHost, upstreamPort)
}

// Unbound starts unbound -d as a caching forwarder to upstream and waits
// until it answers probe.
func Unbound(ctx context.Context, e Env, bin string, upstream *Server, probe string) (*Server, error) {
	return e.startForwarder(ctx, unbound(bin, "unbound", "Unbound"), upstream, probe)
}

// UnboundChain starts n Unbound forwarders in a row, the first forwarding
// to upstream and each other to the one started before it, and returns the
// last as one server whose CPU is that of all n. A miss through it passes
// n processes before upstream, each forwarding once: with n = 3, as many
// hand-offs as a miss through dnsd, a Redis shard and resolverd.
func UnboundChain(ctx context.Context, e Env, bin string, upstream *Server, n int, probe string) (*Server, error) {
	if n < 1 {
		return nil, fmt.Errorf("peers: an Unbound chain of %d", n)
	}
	label := fmt.Sprintf("Unbound ×%d chain", n)
	chain := &Server{Name: label}
	next := upstream
	for i := range n {
		s, err := e.startForwarder(ctx, unbound(bin, fmt.Sprintf("unbound-chain%d", i+1), label), next, probe)
		if err != nil {
			chain.Stop()
			return nil, err
		}
		chain.Addr, chain.Procs = s.Addr, append(chain.Procs, s.Procs...)
		next = s
	}
	return chain, nil
}

// unbound is how to start one Unbound in the folder name.
func unbound(bin, name, label string) forwarder {
	return forwarder{name: name, label: label,
		setup: func(port int, dir, host string, uport int) ([]string, map[string]string) {
			conf := filepath.Join(dir, "unbound.conf")
			return []string{bin, "-d", "-c", conf}, map[string]string{conf: UnboundConf(port, dir, host, uport)}
		}}
}

// DnsmasqArgs is dnsmasq's command line for a caching forwarder on
// 127.0.0.1:port that forwards everything to upstream (loopback
// host:port) and caches up to cacheSize records, reading no configuration,
// hosts or resolv.conf file.
func DnsmasqArgs(bin string, port int, dir, upstreamHost string, upstreamPort, cacheSize int) []string {
	return []string{bin, "-k",
		"--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
		fmt.Sprintf("--server=%s#%d", upstreamHost, upstreamPort),
		"--listen-address=127.0.0.1", "--bind-interfaces", fmt.Sprintf("--port=%d", port),
		fmt.Sprintf("--cache-size=%d", cacheSize), "--dns-forward-max=1000",
		"--pid-file=" + filepath.Join(dir, "dnsmasq.pid"), "--user=root",
	}
}

// Dnsmasq starts dnsmasq -k as a caching forwarder to upstream and waits
// until it answers probe.
func Dnsmasq(ctx context.Context, e Env, bin string, upstream *Server, cacheSize int, probe string) (*Server, error) {
	return e.startForwarder(ctx, forwarder{name: "dnsmasq", label: "dnsmasq",
		setup: func(port int, dir, host string, uport int) ([]string, map[string]string) {
			return DnsmasqArgs(bin, port, dir, host, uport, cacheSize), nil
		}}, upstream, probe)
}

// forwarder is how to start one caching forwarder: its name (its scratch
// folder and process), the label of its rows, and setup, which gives its
// command line and the files to write first (path: content) for the port
// it is to serve on, its folder, and the upstream's loopback host and
// port.
type forwarder struct {
	name, label string
	setup       func(port int, dir, host string, uport int) (argv []string, files map[string]string)
}

// startForwarder starts f on a free loopback port, forwarding to upstream,
// and waits until it answers probe.
func (e Env) startForwarder(ctx context.Context, f forwarder, upstream *Server, probe string) (*Server, error) {
	host, uport, err := splitLoopback(upstream.Addr)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.Dir, f.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("peers: %s: %w", f.name, err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	argv, files := f.setup(port, dir, host, uport)
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("peers: %s: %w", f.name, err)
		}
	}
	p, err := e.start(f.name, argv...)
	if err != nil {
		return nil, err
	}
	s := &Server{Name: f.label, Addr: loopback(port), Procs: []*proc.Proc{p}}
	if err := WaitDNS(ctx, s, probe, dns.TypeA); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Fixed starts the fixed-answer server built from bench/fixeddns and waits
// until it answers.
func Fixed(ctx context.Context, e Env, bin string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := e.start("fixeddns", bin, "-listen", loopback(port))
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "fixed answer", Addr: loopback(port), Procs: []*proc.Proc{p}}
	if err := WaitDNS(ctx, s, "probe.", dns.TypeA); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}
