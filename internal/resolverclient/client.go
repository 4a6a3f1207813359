// Package resolverclient is the gRPC client of resolverd that dnsd and
// cacheapi ask on a cache miss: one connection and one ResolveStream per
// resolverd, round-robin over the healthy ones, with TLS and mutual TLS.
package resolverclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking for round_robin
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/rawconn"
	"github.com/shardns/shardns/internal/tlsconf"
	"github.com/shardns/shardns/proto/codec"
	"github.com/shardns/shardns/proto/resolverv1"
)

// serviceConfig is that of each resolverd's connection: round_robin (over
// its one address) is a policy under which gRPC runs client-side health
// checks, which keep the connection from READY, so out of Client's
// rotation, while the resolverd does not say SERVING.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "shardns.resolver.v1.Resolver"}
}`

// Client asks resolverd over gRPC: it is the lookup chain's Resolver when
// -resolver is set. Each resolverd has a
// connection of its own, and on it one ResolveStream that carries every
// query sent there: a query costs a message each way, not a call of its
// own. Queries go round-robin over the resolverds whose connection is
// ready, which, with gRPC health checking on, means serving.
type Client struct {
	backends []*backend
	next     atomic.Uint32
	cancel   context.CancelFunc // ends the watchers
	wg       sync.WaitGroup     // watchers and receive loops
	reqs     sync.Pool          // *resolverv1.StreamRequest
	waits    sync.Pool          // chan *resolverv1.StreamResponse, empty, buffered 1
}

// Dial connects to the resolverd instances at addrs (host:port). Calls are
// spread round-robin over the healthy ones; a call fails fast when none is
// ready rather than waiting (it waits while they connect). Connections are
// plaintext unless opts carry credentials (TLSOptions); the gRPC health
// checks that take a resolverd out of rotation go over the same
// connections, so under the same credentials.
func Dial(addrs []string, opts ...grpc.DialOption) (*Client, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolverclient: no resolver address")
	}
	// A lost resolverd is redialled with backoff. gRPC's default grows to
	// two minutes, so one back after a long outage would wait that long for
	// its frontends; capped at 5 s, it is used again within 5 s.
	reconnect := grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
		MinConnectTimeout: 2 * time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Client{cancel: cancel}
	r.reqs.New = func() any { return new(resolverv1.StreamRequest) }
	r.waits.New = func() any { return make(chan *resolverv1.StreamResponse, 1) }
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		// The name TLS verifies, unless the tls.Config names one: the
		// host each address was given with. (Without it gRPC would verify
		// the target's placeholder authority.)
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("resolverclient: resolver address %q: %w", a, err)
		}
		res := manual.NewBuilderWithScheme("shardns")
		res.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: a, ServerName: host}}})
		all := append([]grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithResolvers(res),
			grpc.WithDefaultServiceConfig(serviceConfig),
			grpc.WithConnectParams(reconnect),
			grpc.WithContextDialer(dial),
			// Static receive windows turn off gRPC's bandwidth probe, a
			// PING and its answer each time a reply arrives while no probe
			// is out: on a quiet link, a round trip more per call. Answers
			// are at most 64 KiB, so a 1 MiB stream window never holds one
			// back.
			grpc.WithStaticStreamWindowSize(1 << 20),
			grpc.WithStaticConnWindowSize(16 << 20),
			// The resolver's messages without protobuf reflection, in
			// the same bytes (package codec).
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(codec.New())),
		}, opts...)
		conn, err := grpc.NewClient(res.Scheme()+":///resolverd", all...)
		if err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("resolverclient: dial resolver: %w", err)
		}
		conn.Connect()
		b := &backend{remote: r, conn: conn, client: resolverv1.NewResolverClient(conn)}
		r.backends = append(r.backends, b)
		r.wg.Add(1)
		go b.watch(ctx)
	}
	return r, nil
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

// WithFailureLog logs, at Warn and at most once per interval, a query
// that failed because no resolverd could be used (gRPC Unavailable: a
// stream that could not be opened, or one that broke), with the reason
// gRPC gives: a refused connection, a TLS handshake that failed and why,
// no resolverd serving. The query path only counts such failures; this
// says what they are.
func WithFailureLog(log *slog.Logger, interval time.Duration) grpc.DialOption {
	l := &failureLog{log: log, interval: int64(interval)}
	return grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			l.note(err)
			return nil, err
		}
		return loggedStream{cs, l}, nil
	})
}

// failureLog is WithFailureLog's state.
type failureLog struct {
	log      *slog.Logger
	interval int64
	next     atomic.Int64 // unix nanoseconds before which nothing is logged
}

// note logs err if it is Unavailable and the interval has passed.
func (l *failureLog) note(err error) {
	if status.Code(err) != codes.Unavailable {
		return
	}
	now := time.Now().UnixNano()
	if n := l.next.Load(); now >= n && l.next.CompareAndSwap(n, now+l.interval) {
		l.log.Warn("resolverd unavailable", "err", status.Convert(err).Message())
	}
}

// loggedStream notes the error that ends a stream.
type loggedStream struct {
	grpc.ClientStream
	l *failureLog
}

func (s loggedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.l.note(err)
	}
	return err
}

// dial connects to one resolverd: a TCP connection whose reads and writes
// are raw calls (package rawconn), where those of gRPC's own dialer are
// calls the scheduler is told of.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	return rawconn.WrapDial(new(net.Dialer).DialContext)(ctx, "tcp", addr)
}

// Resolve sends q, a packed query, to a resolverd and returns its packed
// answer, checked to answer q (same ID and question). The caller's
// context carries the deadline, which goes with the query. A query that
// could not be sent on a stream (it had just ended) is sent once more,
// on the stream open then; one whose stream breaks after it was sent
// fails, as a call would.
func (r *Client) Resolve(ctx context.Context, q []byte) ([]byte, error) {
	var err error
	for range 2 {
		var (
			ans  []byte
			sent bool
		)
		ans, sent, err = r.resolve(ctx, q)
		if err == nil {
			if !dnsmsg.AnswersQuery(q, ans) {
				return nil, fmt.Errorf("resolverclient: resolverd answered another question")
			}
			return ans, nil
		}
		if sent || ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("resolverclient: resolverd: %w", err)
}

// resolve asks one resolverd once. sent reports that the query went out.
func (r *Client) resolve(ctx context.Context, q []byte) (ans []byte, sent bool, err error) {
	b, err := r.pick(ctx)
	if err != nil {
		return nil, false, err
	}
	if b.unary.Load() {
		return b.call(ctx, q)
	}
	s, err := b.stream(ctx)
	if err != nil {
		return nil, false, err
	}
	ans, sent, err = s.ask(ctx, q)
	if status.Code(err) == codes.Unimplemented {
		// A resolverd from before ResolveStream: it did not take the
		// query, which goes again by Resolve, as will the next ones.
		b.unary.Store(true)
		return nil, false, err
	}
	return ans, sent, err
}

// call asks b by the unary Resolve, for a resolverd without ResolveStream.
func (b *backend) call(ctx context.Context, q []byte) (ans []byte, sent bool, err error) {
	resp, err := b.client.Resolve(ctx, &resolverv1.ResolveRequest{Query: q})
	if err != nil {
		return nil, true, err
	}
	return resp.GetAnswer(), true, nil
}

// pick returns the next ready resolverd in turn. When none is ready but
// some are connecting, it waits for them (within ctx); when every one is
// failing, it returns one, whose stream then fails at once saying why.
func (r *Client) pick(ctx context.Context) (*backend, error) {
	n := uint32(len(r.backends))
	for {
		first := r.next.Add(1)
		var (
			waitOn *backend
			state  connectivity.State
		)
		for i := range n {
			b := r.backends[(first+i)%n]
			switch st := b.conn.GetState(); st {
			case connectivity.Ready:
				return b, nil
			case connectivity.Idle, connectivity.Connecting:
				if st == connectivity.Idle {
					b.conn.Connect()
				}
				if waitOn == nil {
					waitOn, state = b, st
				}
			}
		}
		if waitOn == nil {
			return r.backends[first%n], nil
		}
		// Wait for a change, briefly, so that another that gets ready
		// first is seen too.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		waitOn.conn.WaitForStateChange(wctx, state)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, status.FromContextError(err).Err()
		}
	}
}

// Close ends every stream and connection and waits for their goroutines.
func (r *Client) Close() error {
	r.cancel()
	var errs []error
	for _, b := range r.backends {
		if err := b.conn.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	r.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("resolverclient: close: %w", err)
	}
	return nil
}

// backend is one resolverd: its connection and the stream open on it.
type backend struct {
	remote *Client
	conn   *grpc.ClientConn
	client resolverv1.ResolverClient

	mu   sync.Mutex
	open *stream // nil when none is open

	// unary is set once b answered a stream Unimplemented: a resolverd
	// from before ResolveStream, asked by Resolve until Client is dialled
	// again.
	unary atomic.Bool
}

// watch closes b's stream whenever b's connection is not ready (lost, or
// its resolverd not serving), so that a draining resolverd sees it end and
// queries go elsewhere. It returns when ctx ends.
func (b *backend) watch(ctx context.Context) {
	defer b.remote.wg.Done()
	for {
		st := b.conn.GetState()
		if st != connectivity.Ready {
			b.retire()
			b.unary.Store(false) // it may come back another version
		}
		if !b.conn.WaitForStateChange(ctx, st) {
			return
		}
	}
}

// retire closes the sending side of b's stream, if any: the resolverd
// answers what it has and ends it.
func (b *backend) retire() {
	b.mu.Lock()
	s := b.open
	b.open = nil
	b.mu.Unlock()
	if s != nil {
		s.closeSend()
	}
}

// stream returns b's open stream, opening one when there is none or it
// has ended. The stream outlives the query that opens it; the query's ctx
// bounds only the opening, which waits while b connects.
func (b *backend) stream(qctx context.Context) (*stream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.open; s != nil && s.usable() {
		return s, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(qctx, cancel)
	st, err := b.client.ResolveStream(ctx)
	if !stop() { // qctx ended while the stream opened: it is cancelled
		cancel()
		return nil, status.FromContextError(qctx.Err()).Err()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	s := &stream{remote: b.remote, st: st, cancel: cancel, pending: make(map[uint64]chan *resolverv1.StreamResponse)}
	b.open = s
	b.remote.wg.Add(1)
	go s.receive()
	return s, nil
}

// stream is one ResolveStream and the queries waiting on it.
type stream struct {
	remote *Client
	st     grpc.BidiStreamingClient[resolverv1.StreamRequest, resolverv1.StreamResponse]
	cancel context.CancelFunc

	sendMu     sync.Mutex // one Send at a time; CloseSend after the last
	sendClosed bool

	mu      sync.Mutex
	pending map[uint64]chan *resolverv1.StreamResponse // nil once the stream ended
	err     error                                      // why it ended
	nextID  uint64
}

// errStreamEnded is the error of queries left waiting on a stream the
// resolverd ended with OK, which it does only after answering all it read.
var errStreamEnded = status.Error(codes.Unavailable, "resolverd ended the stream")

// usable reports whether queries may still be sent on s.
func (s *stream) usable() bool {
	s.mu.Lock()
	ended := s.pending == nil
	s.mu.Unlock()
	s.sendMu.Lock()
	closed := s.sendClosed
	s.sendMu.Unlock()
	return !ended && !closed
}

// ask sends q on s and waits for its answer or ctx. sent reports whether
// the query went out.
func (s *stream) ask(ctx context.Context, q []byte) (ans []byte, sent bool, err error) {
	var timeout int64
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl).Microseconds(); timeout <= 0 {
			return nil, false, status.FromContextError(context.DeadlineExceeded).Err()
		}
	}
	ch := s.remote.waits.Get().(chan *resolverv1.StreamResponse)
	s.mu.Lock()
	if s.pending == nil {
		err := s.err
		s.mu.Unlock()
		s.remote.waits.Put(ch)
		return nil, false, err
	}
	s.nextID++
	id := s.nextID
	s.pending[id] = ch
	s.mu.Unlock()

	req := s.remote.reqs.Get().(*resolverv1.StreamRequest)
	req.Id, req.Query, req.TimeoutMicros = id, q, timeout
	s.sendMu.Lock()
	if s.sendClosed {
		err = errStreamEnded
	} else if err = s.st.Send(req); err != nil {
		s.sendClosed = true // broken: the next query opens another
	}
	s.sendMu.Unlock()
	req.Query = nil
	s.remote.reqs.Put(req)
	if err != nil {
		// Send says io.EOF when the stream broke; the receive loop has
		// the reason, or will have.
		s.forget(id, ch)
		return nil, false, status.Error(codes.Unavailable, "stream closed: "+err.Error())
	}

	select {
	case resp := <-ch:
		s.remote.waits.Put(ch) // emptied: the one value sent to it is read
		if resp == nil {
			s.mu.Lock()
			err := s.err
			s.mu.Unlock()
			return nil, true, err
		}
		if resp.GetCode() != 0 {
			return nil, true, status.Error(codes.Code(resp.GetCode()), resp.GetMessage())
		}
		return resp.GetAnswer(), true, nil
	case <-ctx.Done():
		s.forget(id, ch)
		return nil, true, status.FromContextError(ctx.Err()).Err()
	}
}

// forget stops waiting on ch for the answer to id. ch goes back to the
// pool only if nothing can be sent to it any more: once the receive loop
// has taken it, a value may be on its way, and ch is left to the
// collector.
func (s *stream) forget(id uint64, ch chan *resolverv1.StreamResponse) {
	s.mu.Lock()
	_, waiting := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if waiting {
		s.remote.waits.Put(ch)
	}
}

// closeSend tells the resolverd no more queries come on s.
func (s *stream) closeSend() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if !s.sendClosed {
		s.sendClosed = true
		_ = s.st.CloseSend()
	}
}

// receive hands each answer to the query waiting for it, until the stream
// ends; then every query still waiting fails with the reason.
func (s *stream) receive() {
	defer s.remote.wg.Done()
	defer s.cancel()
	for {
		resp := new(resolverv1.StreamResponse)
		err := s.st.RecvMsg(resp)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errStreamEnded
			}
			s.mu.Lock()
			pending := s.pending
			s.pending, s.err = nil, err
			s.mu.Unlock()
			for _, ch := range pending {
				ch <- nil
			}
			return
		}
		s.mu.Lock()
		ch := s.pending[resp.GetId()]
		delete(s.pending, resp.GetId())
		s.mu.Unlock()
		if ch != nil {
			ch <- resp // buffered: never blocks
		}
	}
}
