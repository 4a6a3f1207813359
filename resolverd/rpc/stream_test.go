package rpc_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc/codes"

	"github.com/shardns/shardns/proto/resolverv1"
)

// TestResolveStreamAnswersEachByID sends, on one stream, a query answered
// from a zone, a bad query and one answered by the upstream: each response
// carries its request's id, the bad query gets Resolve's code while the
// stream goes on, and the stream ends with OK once the client has closed
// its side and every request is answered.
func TestResolveStreamAnswersEachByID(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			conn, _ := tr.dial(t, newService(t, writeZone(t), startUpstream(t)))

			st, err := resolverv1.NewResolverClient(conn).ResolveStream(callCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			reqs := []*resolverv1.StreamRequest{
				{Id: 7, Query: wireQuery(t, 0x1007, "www.example.test.", dns.TypeA)},
				{Id: 8, Query: []byte{1, 2, 3}},
				{Id: 9, Query: wireQuery(t, 0x1009, "www.example.net.", dns.TypeA), TimeoutMicros: time.Second.Microseconds()},
			}
			for _, r := range reqs {
				if err := st.Send(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.CloseSend(); err != nil {
				t.Fatal(err)
			}
			got := map[uint64]*resolverv1.StreamResponse{}
			for {
				resp, err := st.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("stream ended with %v, want OK after every answer", err)
				}
				if got[resp.GetId()] != nil {
					t.Fatalf("id %d answered twice", resp.GetId())
				}
				got[resp.GetId()] = resp
			}
			if len(got) != len(reqs) {
				t.Fatalf("%d responses for %d requests", len(got), len(reqs))
			}
			for id, want := range map[uint64]struct {
				dnsID uint16
				addr  string
			}{7: {0x1007, "192.0.2.1"}, 9: {0x1009, "192.0.2.7"}} {
				resp := got[id]
				if resp.GetCode() != 0 {
					t.Errorf("id %d: code %d %q, want an answer", id, resp.GetCode(), resp.GetMessage())
					continue
				}
				m := unpack(t, resp.GetAnswer())
				if m.Id != want.dnsID || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != want.addr {
					t.Errorf("id %d: answer %v, want ID %#x with %s", id, m, want.dnsID, want.addr)
				}
			}
			if c := codes.Code(got[8].GetCode()); c != codes.InvalidArgument || len(got[8].GetAnswer()) != 0 {
				t.Errorf("bad query: code %v answer %x, want InvalidArgument and none", c, got[8].GetAnswer())
			}
		})
	}
}

// TestResolveStreamTimeoutPerRequest checks that a request's own timeout
// bounds it, and that the answer to a later request on the same stream is
// not held back by it.
func TestResolveStreamTimeoutPerRequest(t *testing.T) {
	conn, _ := serveTCP(t, newService(t, writeZone(t), blackhole(t)))
	st, err := resolverv1.NewResolverClient(conn).ResolveStream(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const timeout = 300 * time.Millisecond
	if err := st.Send(&resolverv1.StreamRequest{Id: 1, Query: wireQuery(t, 1, "www.example.net.", dns.TypeA), TimeoutMicros: timeout.Microseconds()}); err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&resolverv1.StreamRequest{Id: 2, Query: wireQuery(t, 2, "www.example.test.", dns.TypeA)}); err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetId() != 2 || first.GetCode() != 0 {
		t.Fatalf("first response id %d code %d, want the zone answer (2) before the blackholed query", first.GetId(), first.GetCode())
	}
	second, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// As Resolve says for a call whose upstream never answers (see
	// TestUpstreamDownIsAnRPCError): the read timed out, or the deadline.
	if c := codes.Code(second.GetCode()); second.GetId() != 1 || c != codes.Unavailable && c != codes.DeadlineExceeded {
		t.Fatalf("second response id %d code %v %q, want 1, Unavailable or DeadlineExceeded", second.GetId(), c, second.GetMessage())
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Errorf("blackholed query ended after %v with a %v timeout", took, timeout)
	}
}

// TestResolveStreamManyInFlight keeps more requests waiting on one stream
// than the stream keeps goroutines for between requests: they are answered
// together (within a few of their timeouts, not one after another), a
// second wave on the same stream is answered too, each request once, and
// the stream ends with OK after the client closes its side.
func TestResolveStreamManyInFlight(t *testing.T) {
	conn, _ := serveTCP(t, newService(t, writeZone(t), blackhole(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := resolverv1.NewResolverClient(conn).ResolveStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const (
		waiting = 150 // more than the goroutines a stream keeps idle
		timeout = 300 * time.Millisecond
	)
	start := time.Now()
	for i := range waiting {
		q := wireQuery(t, uint16(i), "www.example.net.", dns.TypeA)
		if err := st.Send(&resolverv1.StreamRequest{Id: uint64(i), Query: q, TimeoutMicros: timeout.Microseconds()}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[uint64]bool{}
	recv := func(want func(*resolverv1.StreamResponse) bool) {
		t.Helper()
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("after %d answers: %v", len(got), err)
		}
		if got[resp.GetId()] {
			t.Fatalf("id %d answered twice", resp.GetId())
		}
		got[resp.GetId()] = true
		if !want(resp) {
			t.Fatalf("id %d: code %v %q answer %d bytes", resp.GetId(), codes.Code(resp.GetCode()), resp.GetMessage(), len(resp.GetAnswer()))
		}
	}
	timedOut := func(r *resolverv1.StreamResponse) bool {
		c := codes.Code(r.GetCode())
		return r.GetId() < waiting && (c == codes.Unavailable || c == codes.DeadlineExceeded)
	}
	for range waiting {
		recv(timedOut)
	}
	if took := time.Since(start); took > 4*timeout+2*time.Second {
		t.Errorf("%d requests with a %v timeout took %v: not answered together", waiting, timeout, took)
	}
	const second = 2 * waiting
	for i := waiting; i < second; i++ {
		q := wireQuery(t, uint16(i), "www.example.test.", dns.TypeA)
		if err := st.Send(&resolverv1.StreamRequest{Id: uint64(i), Query: q}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for range second - waiting {
		recv(func(r *resolverv1.StreamResponse) bool {
			return r.GetId() >= waiting && r.GetCode() == 0 && unpack(t, r.GetAnswer()).Id == uint16(r.GetId())
		})
	}
	if resp, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after every answer: %v %v, want the stream to end with OK", resp, err)
	}
}
