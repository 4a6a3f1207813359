package rpc_test

import (
	"context"
	"testing"

	"github.com/miekg/dns"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shardns/shardns/proto/resolverv1"
)

// FuzzResolveWire feeds arbitrary bytes to Resolve as the query. The zone
// backend answers in-process (names outside it are REFUSED), so every input
// must end as InvalidArgument or as an answer carrying the query's ID.
func FuzzResolveWire(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		[]byte("garbage"),
		wireQuery(f, 1, "www.example.test.", dns.TypeA),
		wireQuery(f, 2, "nope.example.test.", dns.TypeMX),
		wireQuery(f, 3, "out.example.test.", dns.TypeA),
		wireQuery(f, 4, "elsewhere.invalid.", dns.TypeA),
		wireQuery(f, 5, ".", dns.TypeNS),
	} {
		f.Add(seed)
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeANY)
	m.Opcode = dns.OpcodeUpdate
	f.Add(pack(f, m))
	m.SetEdns0(4096, true)
	m.Opcode = dns.OpcodeQuery
	f.Add(pack(f, m))

	svc := newService(f, writeZone(f))
	f.Fuzz(func(t *testing.T, wire []byte) {
		resp, err := svc.Resolve(context.Background(), &resolverv1.ResolveRequest{Query: wire})
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%x: %v, want an answer or InvalidArgument", wire, err)
			}
			return
		}
		q := new(dns.Msg)
		if err := q.Unpack(wire); err != nil {
			t.Fatalf("%x: unparsable query answered", wire)
		}
		a := new(dns.Msg)
		if err := a.Unpack(resp.GetAnswer()); err != nil {
			t.Fatalf("%x: answer does not parse: %v", wire, err)
		}
		if a.Id != q.Id || !a.Response {
			t.Fatalf("%x: answer ID %d QR %v, want ID %d and QR", wire, a.Id, a.Response, q.Id)
		}
	})
}
