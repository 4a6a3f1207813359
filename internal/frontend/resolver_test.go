package frontend

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/testcerts"
	"github.com/shardns/shardns/internal/tlsconf"
	"github.com/shardns/shardns/resolverd/forward"
	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/rpc"
)

func TestWarnPlaintext(t *testing.T) {
	for _, tc := range []struct {
		addrs  []string
		remote string // the addresses the warning lists; "" for none
	}{
		{[]string{"127.0.0.1:50051", "[::1]:50051", "localhost:50051"}, ""},
		{[]string{"127.0.0.1:50051", "10.0.0.5:50051"}, "[10.0.0.5:50051]"},
		{[]string{"resolverd-1:50051", "resolverd-2:50051"}, `"[resolverd-1:50051 resolverd-2:50051]"`},
	} {
		var out strings.Builder
		warnPlaintext(tc.addrs, slog.New(slog.NewTextHandler(&out, nil)))
		if tc.remote == "" {
			if out.Len() > 0 {
				t.Errorf("%v: logged %q; want nothing", tc.addrs, out.String())
			}
			continue
		}
		if s := out.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "plaintext to a non-loopback address") || !strings.Contains(s, "resolvers="+tc.remote) {
			t.Errorf("%v: logged %q; want a warning listing %s", tc.addrs, s, tc.remote)
		}
	}
}

func TestResolverFlags(t *testing.T) {
	var f Flags
	fs := flag.NewFlagSet("dnsd", flag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse([]string{"-resolver-ca", "ca.pem", "-resolver-cert", "c.pem", "-resolver-key", "k.pem", "-resolver-server-name", "resolverd.internal"}); err != nil {
		t.Fatal(err)
	}
	if want := (ResolverTLS{CA: "ca.pem", Cert: "c.pem", Key: "k.pem", ServerName: "resolverd.internal"}); f.ResolverTLS != want {
		t.Errorf("flags parsed into %+v; want %+v", f.ResolverTLS, want)
	}
}

// TestBuildDialsOverTLS builds a frontend whose -resolver is a resolverd
// serving over mutual TLS: with the flags, lookups are answered, with no
// warning; with a bad flag, Build fails naming it.
func TestBuildDialsOverTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "fleet CA")
	server := ca.Server(t, "resolverd", "127.0.0.1")
	client := ca.Client(t, "dnsd", "dnsd")
	srvCfg, err := tlsconf.Server(tlsconf.File{Flag: "tls-cert", Path: server.Cert}, tlsconf.File{Flag: "tls-key", Path: server.Key}, tlsconf.File{Flag: "tls-client-ca", Path: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	res, err := resolve.New(nil, zoneless{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(srvCfg)))
	rpc.New(res).Register(srv)
	go srv.Serve(ln)
	defer srv.Stop()

	var logs procs.Buffer
	fl := Flags{Resolver: ln.Addr().String(), ResolverTLS: ResolverTLS{CA: ca.File, Cert: client.Cert, Key: client.Key}}
	fe, err := Build(fl, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()
	q := new(dns.Msg)
	q.SetQuestion("tls.example.", dns.TypeA)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	ans, err := fe.resolver.Resolve(ctx, wire)
	m := new(dns.Msg)
	if err == nil {
		err = m.Unpack(ans)
	}
	if err != nil || len(m.Answer) != 1 {
		t.Fatalf("resolve over mutual TLS: %v %v", m, err)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warned:\n%s", logs.String())
	}

	fl.ResolverTLS.Key = filepath.Join(t.TempDir(), "missing.key")
	if _, err := Build(fl, nil, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "-resolver-key: open") {
		t.Errorf("Build with a missing -resolver-key: %v", err)
	}
}

// zoneless answers every A query with 192.0.2.1, as an upstream.
type zoneless struct{}

func (zoneless) ExchangeWire(_ context.Context, q *dns.Msg) (forward.Answer, error) {
	m := new(dns.Msg)
	m.SetReply(q)
	rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.1")
	m.Answer = append(m.Answer, rr)
	return forward.Answer{Msg: m, Source: "test"}, nil
}
