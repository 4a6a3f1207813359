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
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err := f.Exchange(ctx, q)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}
