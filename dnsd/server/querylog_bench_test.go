package server_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/internal/dnstaplog"
	"github.com/shardns/shardns/internal/querylog"
)

// The query log benchmarks are the hit and miss benchmarks above with
// -dnstap or -query-log on, writing to a file: the cost a logged query
// adds. A log whose writer falls behind drops (the query path does not
// wait): dropped/op says how many of the queries were not logged.

// logConfig is a server.Config with the logger kind ("dnstap" or
// "querylog") on, writing under b's temporary folder; the returned func
// reports the share dropped and closes the logger.
func logConfig(b *testing.B, kind string) (server.Config, func()) {
	b.Helper()
	path := filepath.Join(b.TempDir(), kind)
	var cfg server.Config
	var dropped func() uint64
	var closeLog func() error
	switch kind {
	case "dnstap":
		l, err := dnstaplog.Open(dnstaplog.Config{Target: path})
		if err != nil {
			b.Fatal(err)
		}
		cfg.Dnstap, dropped, closeLog = l, func() uint64 { return l.Dropped() / 2 }, l.Close
	case "querylog":
		l, err := querylog.Open(querylog.Config{Path: path})
		if err != nil {
			b.Fatal(err)
		}
		cfg.QueryLog, dropped, closeLog = l, l.Dropped, l.Close
	default:
		b.Fatalf("no logger %q", kind)
	}
	b.Cleanup(func() { _ = closeLog() })
	return cfg, func() {
		b.ReportMetric(float64(dropped())/float64(b.N), "dropped/op")
	}
}

func benchL1HitWireLogged(b *testing.B, kind string) {
	auth := startAuth(b)
	cfg, report := logConfig(b, kind)
	cfg.Chain = newChain(options{}, newResolver(b, auth.addr, 0))
	benchHitsWire(b, server.New(cfg), auth, ednsQuery("wire.example.com.", dns.TypeA, 1, 1232, false))
	report()
}

// BenchmarkServeMessageL1HitWireDnstap is BenchmarkServeMessageL1HitWire
// with -dnstap on.
func BenchmarkServeMessageL1HitWireDnstap(b *testing.B) { benchL1HitWireLogged(b, "dnstap") }

// BenchmarkServeMessageL1HitWireQueryLog is BenchmarkServeMessageL1HitWire
// with -query-log on.
func BenchmarkServeMessageL1HitWireQueryLog(b *testing.B) { benchL1HitWireLogged(b, "querylog") }

func benchUDPL1HitLogged(b *testing.B, kind string) {
	auth := startAuth(b)
	cfg, report := logConfig(b, kind)
	cfg.Chain = newChain(options{}, newResolver(b, auth.addr, 0))
	srv := server.New(cfg)
	if err := srv.Listen([]string{"127.0.0.1:0"}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	driveUDPHits(b, auth, srv.Addrs()[0].String())
	report()
}

// BenchmarkUDPL1HitDnstap is BenchmarkUDPL1Hit with -dnstap on.
func BenchmarkUDPL1HitDnstap(b *testing.B) { benchUDPL1HitLogged(b, "dnstap") }

// BenchmarkUDPL1HitQueryLog is BenchmarkUDPL1Hit with -query-log on.
func BenchmarkUDPL1HitQueryLog(b *testing.B) { benchUDPL1HitLogged(b, "querylog") }

func benchMissLogged(b *testing.B, kind string) {
	up := startBareUpstream(b)
	cfg, report := logConfig(b, kind)
	benchMissResolverd(b, up.addr, func() int { return int(up.total.Load()) }, cfg)
	report()
}

// BenchmarkServeMessageMissResolverdBareUpstreamDnstap is
// BenchmarkServeMessageMissResolverdBareUpstream with -dnstap on.
func BenchmarkServeMessageMissResolverdBareUpstreamDnstap(b *testing.B) {
	benchMissLogged(b, "dnstap")
}

// BenchmarkServeMessageMissResolverdBareUpstreamQueryLog is
// BenchmarkServeMessageMissResolverdBareUpstream with -query-log on.
func BenchmarkServeMessageMissResolverdBareUpstreamQueryLog(b *testing.B) {
	benchMissLogged(b, "querylog")
}
