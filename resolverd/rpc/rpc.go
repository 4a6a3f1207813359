// Package rpc is resolverd's gRPC face: shardns.resolver.v1.Resolver and
// CoreDNS's coredns.dns.DnsService on one server. DNS outcomes (NXDOMAIN,
// SERVFAIL) are answers; an RPC error means the call itself failed.
package rpc

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/shardns/shardns/proto/codec"
	"github.com/shardns/shardns/proto/corednsv1"
	"github.com/shardns/shardns/proto/resolverv1"
	"github.com/shardns/shardns/resolverd/resolve"
)

// Backend answers one packed query with a packed answer, the source that
// gave it and its RCODE (resolverd/resolve). Errors about the query wrap
// resolve.ErrQuery.
type Backend interface {
	ResolveWire(ctx context.Context, q []byte) (ans []byte, source string, rcode int, err error)
}

// DefaultTimeout bounds a call that arrives without a deadline.
const DefaultTimeout = 5 * time.Second

// Service implements both gRPC services over one Backend.
type Service struct {
	resolverv1.UnimplementedResolverServer
	backend  Backend
	coredns  corednsService
	answers  *prometheus.CounterVec
	duration prometheus.Histogram
	reqs     sync.Pool // *resolverv1.StreamRequest, between streams' calls
	resps    sync.Pool // *resolverv1.StreamResponse
}

var _ resolverv1.ResolverServer = (*Service)(nil)

// Option configures a Service.
type Option func(*Service)

// WithRegisterer registers the service's metrics (answers by RCODE or
// failure, and their latency) on reg.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(s *Service) { reg.MustRegister(s.answers, s.duration) }
}

// New returns the service for backend.
func New(backend Backend, opts ...Option) *Service {
	s := &Service{
		backend: backend,
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "resolver", Name: "answers_total",
			Help: "Queries answered over gRPC, by RCODE, or by gRPC code when no answer was had.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "shardns", Subsystem: "resolver", Name: "duration_seconds",
			Help:    "Time to answer one query, local zone or upstream.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	s.coredns.svc = s
	s.reqs.New = func() any { return new(resolverv1.StreamRequest) }
	s.resps.New = func() any { return new(resolverv1.StreamResponse) }
	for _, o := range opts {
		o(s)
	}
	return s
}

// streamWorkers is how many goroutines serve calls. A call mostly waits on
// its upstream, so there are more than CPUs.
const streamWorkers = 64

// The receive windows (see ServerOptions).
const (
	streamWindow = 1 << 20
	connWindow   = 16 << 20
)

// ServerOptions are the options of a gRPC server for the Service.
//
// Stream workers run calls on goroutines that live across calls, so a call
// does not pay for a new goroutine and its stack growing through the gRPC
// and forwarding frames; when all are busy, gRPC starts a goroutine.
//
// Static receive windows turn off gRPC's bandwidth probe, which sends a
// PING, and has it answered, each time a request arrives while no probe is
// out: on a quiet link, a round trip more for every call. DNS messages are
// at most 64 KiB, so a 1 MiB stream window never holds a call back.
//
// The resolver's messages and CoreDNS's are read and written by package
// codec, in the bytes the generated code gives, without protobuf
// reflection or a buffer of their own.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(codec.New()),
		grpc.NumStreamWorkers(streamWorkers),
		grpc.StaticStreamWindowSize(streamWindow),
		grpc.StaticConnWindowSize(connWindow),
	}
}

// Register puts both services, gRPC health (serving) and reflection on srv.
func (s *Service) Register(srv *grpc.Server) *health.Server {
	resolverv1.RegisterResolverServer(srv, s)
	corednsv1.RegisterDnsServiceServer(srv, &s.coredns)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(resolverv1.Resolver_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return hs
}

// Resolve answers one wire query.
func (s *Service) Resolve(ctx context.Context, req *resolverv1.ResolveRequest) (*resolverv1.ResolveResponse, error) {
	start := time.Now()
	ans, up, err := s.answer(ctx, req.GetQuery())
	if err != nil {
		return nil, err
	}
	return &resolverv1.ResolveResponse{Answer: ans, Upstream: up, RttMicros: time.Since(start).Microseconds()}, nil
}

// maxStreamInFlight bounds the requests of one stream being answered at
// once. Past it the stream is not read until one is answered, and gRPC's
// flow control holds the client back.
const maxStreamInFlight = 1024

// maxStreamTimeout bounds the timeout a stream request may ask for.
const maxStreamTimeout = time.Minute

// maxIdleStreamWorkers bounds the goroutines of one stream that wait for
// its next request once theirs is answered.
const maxIdleStreamWorkers = 64

// ResolveStream answers the requests of one stream concurrently, as gRPC
// answers unary calls, and sends every answer as soon as it is had. It
// returns once the client has closed its side (or the stream broke) and
// every request read is answered.
//
// A request goes to a goroutine of the stream that waits for one, or to a
// new one when none waits. A goroutine that has answered waits for the
// next request, up to maxIdleStreamWorkers of them: its stack has grown
// through the gRPC and forwarding frames, which a new goroutine's would
// have to do again on each request.
func (s *Service) ResolveStream(st grpc.BidiStreamingServer[resolverv1.StreamRequest, resolverv1.StreamResponse]) error {
	w := &streamAnswerers{
		svc:   s,
		st:    st,
		ctx:   st.Context(),
		work:  make(chan *resolverv1.StreamRequest),
		slots: make(chan struct{}, maxStreamInFlight),
	}
	defer w.stop()
	for {
		req := s.reqs.Get().(*resolverv1.StreamRequest)
		if err := st.RecvMsg(req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the client is done; stop answers the rest
			}
			return err
		}
		select {
		case w.slots <- struct{}{}:
		case <-w.ctx.Done():
			return status.FromContextError(w.ctx.Err()).Err()
		}
		select {
		case w.work <- req: // a goroutine was waiting
		default:
			w.wg.Add(1)
			go w.run(req)
		}
	}
}

// streamAnswerers are the goroutines that answer one stream's requests.
type streamAnswerers struct {
	svc   *Service
	st    grpc.BidiStreamingServer[resolverv1.StreamRequest, resolverv1.StreamResponse]
	ctx   context.Context
	work  chan *resolverv1.StreamRequest // unbuffered: a send reaches only a waiting goroutine
	slots chan struct{}                  // one per request being answered

	sendMu sync.Mutex     // Send is not safe for concurrent use
	wg     sync.WaitGroup // the goroutines
	idle   atomic.Int32   // goroutines waiting on work, or about to
}

// run answers req, then each request handed to it on work, until work is
// closed or enough others wait.
func (w *streamAnswerers) run(req *resolverv1.StreamRequest) {
	defer w.wg.Done()
	for {
		w.answer(req)
		if w.idle.Add(1) > maxIdleStreamWorkers {
			w.idle.Add(-1)
			return
		}
		var ok bool
		req, ok = <-w.work
		w.idle.Add(-1)
		if !ok {
			return
		}
	}
}

// answer answers req and sends the response.
func (w *streamAnswerers) answer(req *resolverv1.StreamRequest) {
	s := w.svc
	resp := s.resps.Get().(*resolverv1.StreamResponse)
	s.streamAnswer(w.ctx, req, resp)
	s.release(req)
	w.sendMu.Lock()
	// A failed Send means the stream is gone: RecvMsg says so too and
	// ends the receiving loop.
	_ = w.st.Send(resp) // encodes resp before it returns
	w.sendMu.Unlock()
	s.release(resp)
	<-w.slots
}

// stop lets the waiting goroutines go and waits for the answers still
// being made.
func (w *streamAnswerers) stop() {
	close(w.work)
	w.wg.Wait()
}

// release empties m, a stream request or response done with, and gives
// it back to its pool.
func (s *Service) release(m any) {
	switch m := m.(type) {
	case *resolverv1.StreamRequest:
		m.Reset()
		s.reqs.Put(m)
	case *resolverv1.StreamResponse:
		m.Reset()
		s.resps.Put(m)
	}
}

// streamAnswer answers one stream request within its timeout (or
// DefaultTimeout) in resp: an answer, or the status code and message
// Resolve would have failed with.
func (s *Service) streamAnswer(ctx context.Context, req *resolverv1.StreamRequest, resp *resolverv1.StreamResponse) {
	start := time.Now()
	timeout := DefaultTimeout
	if t := req.GetTimeoutMicros(); t > 0 && t <= maxStreamTimeout.Microseconds() {
		timeout = time.Duration(t) * time.Microsecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ans, up, err := s.answer(ctx, req.GetQuery())
	if err != nil {
		st := status.Convert(err)
		// A proto3 string must be UTF-8; the message may quote a name.
		resp.Id, resp.Code, resp.Message = req.GetId(), int32(st.Code()), strings.ToValidUTF8(st.Message(), "\uFFFD")
		return
	}
	resp.Id, resp.Answer, resp.Upstream, resp.RttMicros = req.GetId(), ans, up, time.Since(start).Microseconds()
}

func (s *Service) answer(ctx context.Context, wire []byte) ([]byte, string, error) {
	start := time.Now()
	out, up, rcode, err := s.resolve(ctx, wire)
	s.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.answers.WithLabelValues(status.Code(err).String()).Inc()
		return nil, "", err
	}
	s.answers.WithLabelValues(dns.RcodeToString[rcode]).Inc()
	return out, up, nil
}

func (s *Service) resolve(ctx context.Context, wire []byte) ([]byte, string, int, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	out, up, rcode, err := s.backend.ResolveWire(ctx, wire)
	if err != nil {
		code := codes.Unavailable
		switch {
		case errors.Is(err, resolve.ErrQuery):
			code = codes.InvalidArgument
		case errors.Is(err, context.DeadlineExceeded):
			code = codes.DeadlineExceeded
		}
		return nil, "", 0, status.Error(code, "rpc: "+err.Error())
	}
	return out, up, rcode, nil
}

// corednsService is CoreDNS's DnsService over the same backend, so CoreDNS's
// grpc plugin can forward to resolverd.
type corednsService struct {
	corednsv1.UnimplementedDnsServiceServer
	svc *Service
}

// Query answers one DnsPacket.
func (c *corednsService) Query(ctx context.Context, p *corednsv1.DnsPacket) (*corednsv1.DnsPacket, error) {
	ans, _, err := c.svc.answer(ctx, p.GetMsg())
	if err != nil {
		return nil, err
	}
	return &corednsv1.DnsPacket{Msg: ans}, nil
}
