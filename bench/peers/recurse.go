package peers

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/proc"
)

// ProbeName is the name every resolver of the recursion workload answers
// from a local zone (ProbeZone), so that waiting for it to start sends no
// query to the fake Internet and leaves its counts to the measured run.
const ProbeName = "probe.bench."

// WriteProbeZone writes the zone of ProbeName into dir as probe.zone, for
// dnsd's and resolverd's -zones.
func WriteProbeZone(dir string) error {
	const zone = `$ORIGIN probe.bench.
$TTL 3600
@ IN SOA ns.probe.bench. hostmaster.probe.bench. 1 3600 600 86400 300
@ IN NS ns
ns IN A 127.0.0.1
@ IN A 127.0.0.1
`
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("peers: probe zone: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe.zone"), []byte(zone), 0o644); err != nil {
		return fmt.Errorf("peers: probe zone: %w", err)
	}
	return nil
}

// UnboundProbeLines are the unbound.conf server: lines that answer
// ProbeName locally.
func UnboundProbeLines() []string {
	return []string{`local-zone: "probe.bench." static`, `local-data: "probe.bench. 3600 IN A 127.0.0.1"`}
}

// RecurseConfig is shardns as a full resolver from root hints.
type RecurseConfig struct {
	Name        string // row label
	Dnsd        string // dnsd binary
	Resolverd   string // resolverd binary; used when Resolverd is set
	RootHints   string // -root-hints
	TrustAnchor string // -trust-anchor
	Zones       string // -zones: the folder of WriteProbeZone
	// Resolverd, when set, puts the resolution in a resolverd process
	// (-recurse -redis Redis) behind dnsd -resolver; else dnsd resolves
	// in-process (the all-in-one dnsd -recurse).
	UseResolverd bool
	Redis        string // resolverd -redis: its shared resolver state
}

// RecursiveShardns starts shardns as cfg says, listening on loopback, and
// waits until it answers ProbeName. With UseResolverd, Procs holds
// resolverd first and dnsd second.
func RecursiveShardns(ctx context.Context, e Env, cfg RecurseConfig) (*Server, error) {
	s := &Server{Name: cfg.Name}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	resolve := []string{"-recurse", "-root-hints", cfg.RootHints, "-trust-anchor", cfg.TrustAnchor, "-zones", cfg.Zones}
	args := []string{cfg.Dnsd, "-listen", loopback(port), "-http", "", "-allow", "127.0.0.0/8", "-log-level", "warn", "-min-ttl", "0"}
	if cfg.UseResolverd {
		gport, err := FreePort()
		if err != nil {
			return nil, err
		}
		rargs := append([]string{cfg.Resolverd, "-listen", loopback(gport), "-log-level", "warn"}, resolve...)
		if cfg.Redis != "" {
			rargs = append(rargs, "-redis", cfg.Redis)
		}
		p, err := e.start(procName(cfg.Name, "resolverd"), rargs...)
		if err != nil {
			return nil, err
		}
		s.Procs = append(s.Procs, p)
		args = append(args, "-resolver", loopback(gport))
	} else {
		args = append(args, resolve...)
	}
	p, err := e.start(procName(cfg.Name, "dnsd"), args...)
	if err != nil {
		return nil, err
	}
	s.Procs = append(s.Procs, p)
	s.Addr = loopback(port)
	if err := WaitDNS(ctx, s, ProbeName, dns.TypeA); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// RecursiveUnbound writes conf (an unbound.conf listening on addr port
// 53, such as fakenet's UnboundConfig with UnboundProbeLines) into dir,
// starts unbound -d with it and waits until it answers ProbeName.
func RecursiveUnbound(ctx context.Context, e Env, bin, name, dir, conf, addr string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	p, err := e.start(procName(name, "unbound"), bin, "-d", "-c", path)
	if err != nil {
		return nil, err
	}
	s := &Server{Name: name, Addr: net.JoinHostPort(addr, "53"), Procs: []*proc.Proc{p}}
	if err := WaitDNS(ctx, s, ProbeName, dns.TypeA); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}
