// Command fixeddns is the smallest DNS server miekg/dns makes: it answers
// every A question with one fixed record (192.0.2.1, TTL 300) and every
// other question with an empty NOERROR, over UDP and TCP on a loopback
// address. In bench/ it stands for what any miekg/dns server (CoreDNS
// among them) pays per query before doing any work of its own. With
// -delay it holds every answer that long first (each query in its own
// goroutine, so answers overlap), as a distant upstream would: the queue
// workload's upstream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5300", "loopback address to serve DNS on, UDP and TCP")
	delay := flag.Duration("delay", 0, "hold every answer this long before sending it (at most "+maxDelay.String()+")")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*listen, *delay, log); err != nil {
		log.Error("fixeddns", "err", err)
		os.Exit(1)
	}
}

// maxDelay bounds -delay: a query held longer has been given up on by any
// client.
const maxDelay = 10 * time.Second

func run(listen string, delay time.Duration, log *slog.Logger) error {
	if delay < 0 || delay > maxDelay {
		return fmt.Errorf("fixeddns: -delay %v is not in [0, %v]", delay, maxDelay)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("fixeddns: -listen: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("fixeddns: -listen %q is not a loopback address", listen)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := fixed(net.IPv4(192, 0, 2, 1).To4(), delay)
	servers := []*dns.Server{
		{Addr: listen, Net: "udp", Handler: h},
		{Addr: listen, Net: "tcp", Handler: h},
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.ListenAndServe() }()
	}
	log.Info("fixeddns ready", "listen", listen, "delay", delay)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.ShutdownContext(sctx)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("fixeddns: %w", err)
	}
	return nil
}

// fixed answers every A question with addr, every other with no records,
// each after delay.
func fixed(addr net.IP, delay time.Duration) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		if delay > 0 {
			time.Sleep(delay)
		}
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{
				Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A:   addr,
			}}
		}
		_ = w.WriteMsg(m)
	})
}
