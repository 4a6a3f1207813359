package transport_test

import (
	"testing"

	"github.com/shardns/shardns/dnsd/transport"
)

// BenchmarkDoTQuery is BenchmarkTCPQuery over DoT: one query at a time
// on one TLS connection.
func BenchmarkDoTQuery(b *testing.B) {
	e := startEncrypted(b, newHandler(), transport.Config{})
	benchStream(b, e.dialDoT(b))
}

// BenchmarkDoHQuery is one POST at a time over one HTTP/2 connection.
func BenchmarkDoHQuery(b *testing.B) {
	e := startEncrypted(b, newHandler(), transport.Config{})
	req := query(b, "quick", 0)
	b.ReportAllocs()
	for b.Loop() {
		resp, _, err := e.postDoH(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(resp, err)
		}
	}
}

// BenchmarkDoQQuery is one query at a time on one QUIC connection, each
// on a stream of its own.
func BenchmarkDoQQuery(b *testing.B) {
	e := startEncrypted(b, newHandler(), transport.Config{})
	c := e.dialDoQ(b, nil)
	req := query(b, "quick", 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := askDoQ(c, req); err != nil {
			b.Fatal(err)
		}
	}
}
