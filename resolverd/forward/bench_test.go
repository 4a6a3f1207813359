package forward

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func BenchmarkExchangeUDP(b *testing.B) {
	addr, _ := startUDP(b, "127.0.0.1:0", answerA("127.0.0.7"))
	f := newForwarder(b, Config{Upstreams: []string{addr}, HealthInterval: -1})
	q := query("bench.example.", dns.TypeA)
	b.ReportAllocs()
	defer reportCPU(b, cpuTime(b))
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err := f.Exchange(ctx, q)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExchangeUDPParallel asks from several goroutines at once, as a
// busy resolverd does.
func BenchmarkExchangeUDPParallel(b *testing.B) {
	addr, _ := startUDP(b, "127.0.0.1:0", answerA("127.0.0.7"))
	f := newForwarder(b, Config{Upstreams: []string{addr}, HealthInterval: -1})
	b.ReportAllocs()
	defer reportCPU(b, cpuTime(b))
	b.RunParallel(func(pb *testing.PB) {
		q := query("bench.example.", dns.TypeA)
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _, err := f.Exchange(ctx, q)
			cancel()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkExchangeUDPPaced asks one query every millisecond, a quiet
// server's load: the process sleeps between queries, so each one pays for
// waking it (threads, the runtime's monitor). It reports CPU time and the
// process's context switches per query; its ns/op is mostly the pause.
func BenchmarkExchangeUDPPaced(b *testing.B) {
	addr, _ := startUDP(b, "127.0.0.1:0", answerA("127.0.0.7"))
	f := newForwarder(b, Config{Upstreams: []string{addr}, HealthInterval: -1})
	q := query("bench.example.", dns.TypeA)
	cpu0, sw0 := usage(b)
	for b.Loop() {
		time.Sleep(time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err := f.Exchange(ctx, q)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	cpu1, sw1 := usage(b)
	b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(sw1-sw0)/float64(b.N), "ctxsw/op")
}

// BenchmarkRoute picks the group of a name four labels below the
// deepest of eight zones, and of one in none of them: the cost -forward
// adds to each forwarded query. "default-only" is a router of the "."
// group alone, as -upstream without -forward builds.
func BenchmarkRoute(b *testing.B) {
	spec := ".=127.0.0.1:1"
	for _, z := range []string{"a.example", "b.example", "c.example", "corp.example", "lab.corp.example", "d.example", "e.example", "f.example"} {
		spec += ";" + z + "=127.0.0.2:1"
	}
	for _, tc := range []struct {
		name, spec, qname string
	}{
		{"default-only", ".=127.0.0.1:1", "w.x.y.host.lab.corp.example."},
		{"8-zones-hit", spec, "w.x.y.host.lab.corp.example."},
		{"8-zones-miss", spec, "w.x.y.host.lab.corp.example.org."},
	} {
		b.Run(tc.name, func(b *testing.B) {
			routes, err := ParseRoutes(tc.spec)
			if err != nil {
				b.Fatal(err)
			}
			rt, err := NewRouter(RouterConfig{Routes: routes, HealthInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			b.ReportAllocs()
			for b.Loop() {
				if rt.Route(tc.qname) == nil {
					b.Fatal("no group")
				}
			}
		})
	}
}

// BenchmarkExchangeUDPRouted is BenchmarkExchangeUDP through a Router of
// nine groups, the name in the deepest: compare the two in one run.
func BenchmarkExchangeUDPRouted(b *testing.B) {
	addr, _ := startUDP(b, "127.0.0.1:0", answerA("127.0.0.7"))
	spec := ".=127.0.0.1:1"
	for _, z := range []string{"a.example", "b.example", "c.example", "d.example", "e.example", "f.example", "g.example"} {
		spec += ";" + z + "=127.0.0.2:1"
	}
	routes, err := ParseRoutes(spec + ";bench.example=" + addr)
	if err != nil {
		b.Fatal(err)
	}
	rt, err := NewRouter(RouterConfig{Routes: routes, HealthInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	q := query("www.bench.example.", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err := rt.Exchange(ctx, q)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}
