package lookup

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking for round_robin
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/rawconn"
	"github.com/shardns/shardns/internal/tlsconf"
	"github.com/shardns/shardns/proto/resolverv1"
)

// serviceConfig spreads calls over every resolverd and takes out of rotation
// one whose gRPC health check does not say SERVING.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "shardns.resolver.v1.Resolver"}
}`

// Remote is a Resolver that asks resolverd over gRPC.
type Remote struct {
	conn   *grpc.ClientConn
	client resolverv1.ResolverClient
}

var _ Resolver = (*Remote)(nil)

// Dial connects to the resolverd instances at addrs (host:port). Calls are
// spread round-robin over the healthy ones; a call fails fast when none is
// ready rather than waiting. Connections are plaintext unless opts carry
// credentials (TLSOptions); the gRPC health checks that take a resolverd out
// of rotation go over the same connections, so under the same credentials.
func Dial(addrs []string, opts ...grpc.DialOption) (*Remote, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("lookup: no resolver address")
	}
	r := manual.NewBuilderWithScheme("shardns")
	state := resolver.State{}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		// The name TLS verifies, unless the tls.Config names one: the
		// host each address was given with. (Without it gRPC would verify
		// the target's placeholder authority.)
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("lookup: resolver address %q: %w", a, err)
		}
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
	}
	r.InitialState(state)
	// A lost resolverd is redialled with backoff. gRPC's default grows to
	// two minutes, so one back after a long outage would wait that long for
	// its frontends; capped at 5 s, it is used again within 5 s.
	reconnect := grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
		MinConnectTimeout: 2 * time.Second,
	}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithConnectParams(reconnect),
		grpc.WithContextDialer(dial),
		// Static receive windows turn off gRPC's bandwidth probe, a PING
		// and its answer each time a reply arrives while no probe is out:
		// on a quiet link, a round trip more per call. Answers are at most
		// 64 KiB, so a 1 MiB stream window never holds one back.
		grpc.WithStaticStreamWindowSize(1 << 20),
		grpc.WithStaticConnWindowSize(16 << 20),
	}, opts...)
	conn, err := grpc.NewClient(r.Scheme()+":///resolverd", opts...)
	if err != nil {
		return nil, fmt.Errorf("lookup: dial resolver: %w", err)
	}
	conn.Connect()
	return &Remote{conn: conn, client: resolverv1.NewResolverClient(conn)}, nil
}

// TLSOptions are the options that make Dial's connections TLS under cfg
// (see package tlsconf); a nil cfg leaves them plaintext. A cfg.ServerName
// is the name verified on every resolverd (and the calls' :authority);
// without it, each resolverd's certificate must name the host its address
// was given with.
func TLSOptions(cfg *tls.Config) []grpc.DialOption {
	if cfg == nil {
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(tlsconf.GRPCClient(cfg))}
	if cfg.ServerName != "" {
		// gRPC verifies the name an address carries over the one in
		// the tls.Config; the channel's authority goes over both.
		opts = append(opts, grpc.WithAuthority(cfg.ServerName))
	}
	return opts
}

// WithFailureLog logs, at Warn and at most once per interval, a call that
// failed because no resolverd could be used (gRPC Unavailable), with the
// reason gRPC gives: a refused connection, a TLS handshake that failed and
// why, no resolverd serving. The query path only counts such failures;
// this says what they are.
func WithFailureLog(log *slog.Logger, interval time.Duration) grpc.DialOption {
	var next atomic.Int64 // unix nanoseconds before which nothing is logged
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil || status.Code(err) != codes.Unavailable {
			return err
		}
		now := time.Now().UnixNano()
		if n := next.Load(); now >= n && next.CompareAndSwap(n, now+int64(interval)) {
			log.Warn("resolverd unavailable", "err", status.Convert(err).Message())
		}
		return err
	})
}

// dial connects to one resolverd: a TCP connection whose reads and writes
// are raw calls (package rawconn), where those of gRPC's own dialer are
// calls the scheduler is told of.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	return rawconn.WrapDial(new(net.Dialer).DialContext)(ctx, "tcp", addr)
}

// Resolve sends q, a packed query, to a resolverd and returns its packed
// answer, checked to answer q (same ID and question). The caller's
// context carries the deadline.
func (r *Remote) Resolve(ctx context.Context, q []byte) ([]byte, error) {
	resp, err := r.client.Resolve(ctx, &resolverv1.ResolveRequest{Query: q})
	if err != nil {
		return nil, fmt.Errorf("lookup: resolverd: %w", err)
	}
	ans := resp.GetAnswer()
	if !dnsmsg.AnswersQuery(q, ans) {
		return nil, fmt.Errorf("lookup: resolverd answered another question")
	}
	return ans, nil
}

// Close closes the connection.
func (r *Remote) Close() error { return r.conn.Close() }
