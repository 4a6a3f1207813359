package redisstate

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/resolverd/recurse"
)

// Server state in Redis: one hash per address, rs:srv:{<address>}, with
// the fields
//
//	v            the layout's version ("1")
//	addr         the address (checked against the key's)
//	rtt          smoothed RTT in microseconds
//	noedns       "1" when the server rejects EDNS
//	lame:<zone>  unix milliseconds until which it is lame for zone
//
// each write refreshing the hash's Redis TTL to ServerTTL.
const (
	// ServerTTL is how long a server's hash lives after its last write.
	ServerTTL = 15 * time.Minute
	// serverFields bounds the fields of a hash: a write that would leave
	// more drops the hash's lame fields, and a larger one read is refused.
	serverFields = 256
	// serverRefresh is how long a server's state read is used before it
	// is read again.
	serverRefresh = 30 * time.Second
	// flushEvery is how often the state learnt is written: RTTs change
	// with every reply, and each server is written once per period.
	flushEvery = time.Second
	// maxKnown bounds the servers whose shared state is held in memory,
	// and the pending reads and writes.
	maxKnown = 20000
)

// Servers is recurse.ServerShare over Redis. Server answers from memory;
// an address not in memory (or read more than serverRefresh ago) is read
// in the background, for a later call. Publish merges into memory what
// goes out in the next write, at most once per flushEvery per server.
type Servers struct {
	c       redis.UniversalClient
	timeout time.Duration
	now     func() time.Time
	m       *metrics
	log     *slog.Logger
	lastLog atomic.Int64

	mu      sync.Mutex
	known   map[netip.Addr]knownServer
	reading map[netip.Addr]bool
	writes  map[netip.Addr]*recurse.ServerInfo
	kick    chan struct{}
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

var _ recurse.ServerShare = (*Servers)(nil)

type knownServer struct {
	info  recurse.ServerInfo
	found bool // Redis held a hash for it
	read  time.Time
}

func newServers(cfg Config, m *metrics) *Servers {
	s := &Servers{c: cfg.Client, timeout: cfg.Timeout, now: cfg.Now, m: m, log: cfg.Logger,
		known: map[netip.Addr]knownServer{}, reading: map[netip.Addr]bool{},
		writes: map[netip.Addr]*recurse.ServerInfo{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
	s.wg.Add(1)
	go s.loop()
	return s
}

// Server implements recurse.ServerShare.
func (s *Servers) Server(addr netip.Addr) (recurse.ServerInfo, bool) {
	now := s.now()
	s.mu.Lock()
	k, ok := s.known[addr]
	stale := !ok || now.Sub(k.read) > serverRefresh
	if stale && !s.reading[addr] && len(s.reading) < maxKnown {
		s.reading[addr] = true
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	if !ok || !k.found {
		return recurse.ServerInfo{}, false
	}
	return k.info, true
}

// Publish implements recurse.ServerShare.
func (s *Servers) Publish(addr netip.Addr, info recurse.ServerInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.writes[addr]
	if !ok {
		if len(s.writes) >= maxKnown {
			s.m.writes.WithLabelValues("dropped").Inc()
			return
		}
		w = &recurse.ServerInfo{}
		s.writes[addr] = w
	}
	w.SRTT, w.NoEDNS = info.SRTT, info.NoEDNS
	if len(w.Lame)+len(info.Lame) <= serverFields {
		w.Lame = append(w.Lame, info.Lame...)
	}
}

// loop reads the servers asked for and writes those published, until
// Close.
func (s *Servers) loop() {
	defer s.wg.Done()
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
			s.read()
		case <-t.C:
			s.write()
		}
	}
}

// read fetches the hashes of the servers waiting to be read, in one
// pipeline within the Timeout.
func (s *Servers) read() {
	s.mu.Lock()
	addrs := make([]netip.Addr, 0, len(s.reading))
	for a := range s.reading {
		addrs = append(addrs, a)
		if len(addrs) == writeBatch {
			break
		}
	}
	s.mu.Unlock()
	if len(addrs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	cmds := make([]*redis.MapStringStringCmd, len(addrs))
	_, _ = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, a := range addrs {
			cmds[i] = p.HGetAll(ctx, ServerKey(a))
		}
		return nil
	})
	cancel()
	now := s.now()
	s.mu.Lock()
	for i, a := range addrs {
		delete(s.reading, a)
		fields, err := cmds[i].Result()
		if err != nil {
			s.m.reads.WithLabelValues("server", "error").Inc()
			continue // read again when next asked
		}
		k := knownServer{read: now}
		if len(fields) > 0 {
			info, err := decodeServer(a, fields, now)
			if err != nil {
				s.m.reads.WithLabelValues("server", "rejected").Inc()
				var re *RejectError
				if errors.As(err, &re) {
					s.m.rejected.WithLabelValues(re.Reason).Inc()
				}
				logRefusal(s.log, &s.lastLog, err)
			} else {
				k.info, k.found = info, true
				s.m.reads.WithLabelValues("server", "hit").Inc()
			}
		} else {
			s.m.reads.WithLabelValues("server", "miss").Inc()
		}
		if _, ok := s.known[a]; !ok && len(s.known) >= maxKnown {
			for old := range s.known {
				delete(s.known, old)
				break
			}
		}
		s.known[a] = k
	}
	more := len(s.reading) > 0
	s.mu.Unlock()
	if more {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// write sends what was published since the last write, in one pipeline
// within the Timeout.
func (s *Servers) write() {
	s.mu.Lock()
	if len(s.writes) == 0 {
		s.mu.Unlock()
		return
	}
	writes := s.writes
	s.writes = map[netip.Addr]*recurse.ServerInfo{}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	now := strconv.FormatInt(s.now().UnixMilli(), 10)
	cmds, _ := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for a, w := range writes {
			args := []any{now, ServerTTL.Milliseconds(), serverFields}
			for k, v := range encodeServer(a, w) {
				args = append(args, k, v)
			}
			writeServer.Eval(ctx, p, []string{ServerKey(a)}, args...)
		}
		return nil
	})
	for i := range cmds {
		if cmds[i].Err() == nil {
			s.m.writes.WithLabelValues("ok").Inc()
		} else {
			s.m.writes.WithLabelValues("error").Inc()
		}
	}
}

// writeServer sets a server's hash fields (ARGV[4…], name and value
// pairs), drops its lame fields past ARGV[1] (Unix ms), all of them when
// more than ARGV[3] fields would be left, and sets its expiry to ARGV[2]
// ms: one atomic call per server, whose hash stays bounded.
var writeServer = redis.NewScript(`
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local f = redis.call('HGETALL', KEYS[1])
local n = #f / 2
for i = 1, #f, 2 do
  if string.sub(f[i], 1, 5) == 'lame:' then
    local t = tonumber(f[i + 1])
    if t == nil or t < now then redis.call('HDEL', KEYS[1], f[i]); n = n - 1 end
  end
end
if n > limit then
  for i = 1, #f, 2 do
    if string.sub(f[i], 1, 5) == 'lame:' then redis.call('HDEL', KEYS[1], f[i]) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// encodeServer is the hash fields of w, addr's state.
func encodeServer(addr netip.Addr, w *recurse.ServerInfo) map[string]any {
	f := map[string]any{"v": "1", "addr": addr.String()}
	if w.SRTT > 0 {
		f["rtt"] = strconv.FormatInt(w.SRTT.Microseconds(), 10)
	}
	if w.NoEDNS {
		f["noedns"] = "1"
	}
	for _, l := range w.Lame {
		f["lame:"+l.Zone] = strconv.FormatInt(l.Until.UnixMilli(), 10)
	}
	return f
}

// decodeServer reads addr's state from its hash's fields, checking them
// against the key: version, address, sizes and numbers. Lameness past
// now is left out.
func decodeServer(addr netip.Addr, f map[string]string, now time.Time) (recurse.ServerInfo, error) {
	key := ServerKey(addr)
	var info recurse.ServerInfo
	if len(f) > serverFields {
		return info, reject(key, RejectSize, "%d fields, more than %d", len(f), serverFields)
	}
	if f["v"] != "1" {
		return info, reject(key, RejectVersion, "version %q, want \"1\"", f["v"])
	}
	if f["addr"] != addr.String() {
		return info, reject(key, RejectKey, "address %q is not %s", f["addr"], addr)
	}
	for name, v := range f {
		switch {
		case name == "v" || name == "addr":
		case name == "rtt":
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil || us < 0 || us > int64(time.Minute/time.Microsecond) {
				return info, reject(key, RejectMalformed, "field rtt: %q is not microseconds under a minute", v)
			}
			info.SRTT = time.Duration(us) * time.Microsecond
		case name == "noedns":
			info.NoEDNS = v == "1"
		case strings.HasPrefix(name, "lame:"):
			zone := name[len("lame:"):]
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || zone == "" || zone[len(zone)-1] != '.' {
				return info, reject(key, RejectMalformed, "field %q: %q is not a zone and unix milliseconds", name, v)
			}
			if until := time.UnixMilli(ms); until.After(now) {
				// Never longer than a lame server is avoided at most.
				info.Lame = append(info.Lame, recurse.LameZone{Zone: zone, Until: minTime(until, now.Add(ServerTTL))})
			}
		default:
			return info, reject(key, RejectMalformed, "unknown field %q", name)
		}
	}
	return info, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Flush writes at once what was published.
func (s *Servers) Flush() { s.write() }

// Close stops the reads and writes, writing what was published first.
func (s *Servers) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		s.write()
	})
	return nil
}
