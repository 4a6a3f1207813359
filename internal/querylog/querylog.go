// Package querylog writes a query log as JSON lines: one object per query
// answered, for operators without a dnstap collector. An example line:
//
//	{"time":"2026-12-07T02:30:00.123456Z","client":"192.0.2.7:53211","proto":"udp","qname":"www.example.com.","qtype":"A","rcode":"NOERROR","source":"l1","duration_us":41,"size":61}
//
// The query path never waits for the log: each query is copied into a
// bounded queue and a single goroutine parses and writes it. When the queue
// is full the entry is dropped and counted in
// shardns_query_log_dropped_total. Reopen starts a new file after the old
// one was renamed (logrotate).
package querylog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// DefaultQueue bounds the entries waiting to be written by default.
const DefaultQueue = 8192

// Config is what Open needs.
type Config struct {
	// Path is the file the lines are appended to (created when missing),
	// or "-" for standard output.
	Path string
	// Sample logs one query in Sample; 0 or 1: every query.
	Sample int
	// Queue bounds the entries waiting to be written (default
	// DefaultQueue); more are dropped and counted.
	Queue  int
	Logger *slog.Logger
	// Registerer gets shardns_query_log_dropped_total; nil: not registered.
	Registerer prometheus.Registerer
}

// Entry is one line of the log.
type Entry struct {
	Time       time.Time `json:"time"`   // when the query was received
	Client     string    `json:"client"` // address:port
	Proto      string    `json:"proto"`  // udp, tcp, dot, doh, doq
	QName      string    `json:"qname"`  // as the client spelled it; "" when the query did not parse
	QType      string    `json:"qtype"`
	Rcode      string    `json:"rcode"`       // of the reply, extended RCODEs included (BADCOOKIE)
	Source     string    `json:"source"`      // what answered: l1, redis, stale, resolver, local, refused, formerr...
	DurationUS int64     `json:"duration_us"` // from receipt to the reply
	Size       int       `json:"size"`        // reply bytes
}

// item is one answered query as queued: the messages are parsed by the
// writing goroutine, off the query path.
type item struct {
	at, end time.Time
	client  netip.AddrPort
	proto   string
	source  string
	query   []byte
	reply   []byte
}

// Logger writes the query log; its methods are safe for concurrent use.
type Logger struct {
	path    string
	sample  uint64
	n       atomic.Uint64 // queries offered, for sampling
	log     *slog.Logger
	queue   chan item
	dropped prometheus.Counter

	mu     sync.Mutex // guards out, w and closed against Reopen
	out    io.WriteCloser
	w      *bufio.Writer
	closed bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Open opens cfg.Path and starts the writing goroutine.
func Open(cfg Config) (*Logger, error) {
	if cfg.Path == "" {
		return nil, errors.New("query log: no file: give a path or -")
	}
	if cfg.Sample < 0 {
		return nil, fmt.Errorf("query log: sample %d: want 1 or more (1 logs every query)", cfg.Sample)
	}
	l := &Logger{path: cfg.Path, sample: uint64(max(cfg.Sample, 1)), log: cfg.Logger,
		stop: make(chan struct{}), done: make(chan struct{})}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	n := cfg.Queue
	if n <= 0 {
		n = DefaultQueue
	}
	l.queue = make(chan item, n)
	l.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "shardns", Subsystem: "query_log", Name: "dropped_total",
		Help: "Query log lines not written: the queue was full (the disk slower than the queries) or the write failed.",
	})
	out, err := l.openFile()
	if err != nil {
		return nil, err
	}
	l.out, l.w = out, bufio.NewWriterSize(out, 64<<10)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(l.dropped); err != nil {
			out.Close()
			return nil, fmt.Errorf("query log: register metrics: %w", err)
		}
	}
	go l.run()
	return l, nil
}

// stdout is standard output with a Close that leaves it open.
type stdout struct{ *os.File }

func (stdout) Close() error { return nil }

func (l *Logger) openFile() (io.WriteCloser, error) {
	if l.path == "-" {
		return stdout{os.Stdout}, nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("query log: %w", err)
	}
	return f, nil
}

// Sampled says whether the next query is one to log: every Sample-th.
// Call it once per query, before Log.
func (l *Logger) Sampled() bool {
	if l.sample == 1 {
		return true
	}
	return l.n.Add(1)%l.sample == 1%l.sample
}

// Log queues one answered query: received when it came, answered when
// its reply left, query and reply the messages (copied: the caller may
// reuse them once Log returns), source what answered it.
func (l *Logger) Log(proto string, client netip.AddrPort, received, answered time.Time, source string, query, reply []byte) {
	if len(l.queue) == cap(l.queue) { // full: drop before copying
		l.dropped.Inc()
		return
	}
	buf := make([]byte, len(query)+len(reply))
	n := copy(buf, query)
	copy(buf[n:], reply)
	it := item{at: received, end: answered, client: client, proto: proto, source: source, query: buf[:n:n], reply: buf[n:]}
	select {
	case l.queue <- it:
	default:
		l.dropped.Inc()
	}
}

// Dropped is the count of lines dropped so far.
func (l *Logger) Dropped() uint64 {
	var m dto.Metric
	if err := l.dropped.Write(&m); err != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}

// Reopen flushes the lines written so far to the file and opens Path
// again: after logrotate renamed the file, new lines go to a new file at
// Path. When the file cannot be opened, the old one is kept and the error
// says why.
func (l *Logger) Reopen() error {
	if l.path == "-" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("query log: reopen: the log is closed")
	}
	out, err := l.openFile()
	if err != nil {
		return err
	}
	ferr := l.w.Flush()
	cerr := l.out.Close()
	l.out = out
	l.w.Reset(out)
	if err := errors.Join(ferr, cerr); err != nil {
		return fmt.Errorf("query log: the old file: %w", err)
	}
	return nil
}

// Close writes what is queued and closes the file.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return errors.Join(l.w.Flush(), l.out.Close())
}

// run is the writing goroutine: it writes the queue and flushes when the
// queue runs dry.
func (l *Logger) run() {
	defer close(l.done)
	var line []byte
	failing := false
	for {
		select {
		case it := <-l.queue:
			line = AppendLine(line[:0], entryOf(&it))
			l.mu.Lock()
			_, err := l.w.Write(line)
			if err == nil && len(l.queue) == 0 {
				err = l.w.Flush()
			}
			if err != nil {
				// bufio keeps the error: start afresh on the same file.
				l.w.Reset(l.out)
			}
			l.mu.Unlock()
			if err != nil {
				l.dropped.Inc()
				if !failing {
					l.log.Error("query log: write failed; lines are dropped", "file", l.path, "err", err)
				}
			}
			failing = err != nil
		case <-l.stop:
			for {
				select {
				case it := <-l.queue:
					line = AppendLine(line[:0], entryOf(&it))
					l.mu.Lock()
					_, _ = l.w.Write(line) // Close flushes, and reports a failure
					l.mu.Unlock()
					continue
				default:
				}
				return
			}
		}
	}
}

// entryOf is it as a line says it: the question read from the query (or
// the reply, for a query that did not parse), the RCODE from the reply.
func entryOf(it *item) Entry {
	e := Entry{
		Time: it.at.UTC(), Client: it.client.String(), Proto: it.proto, Source: it.source,
		DurationUS: it.end.Sub(it.at).Microseconds(), Size: len(it.reply),
	}
	var r dns.Msg
	if err := r.Unpack(it.reply); err == nil {
		e.Rcode = rcodeString(r.Rcode)
		if len(r.Question) > 0 {
			e.QName, e.QType = r.Question[0].Name, typeString(r.Question[0].Qtype)
		}
	} else if len(it.reply) >= 4 {
		e.Rcode = rcodeString(int(it.reply[3] & 0x0F))
	}
	if e.QName == "" {
		var q dns.Msg
		if q.Unpack(it.query) == nil && len(q.Question) > 0 {
			e.QName, e.QType = q.Question[0].Name, typeString(q.Question[0].Qtype)
		}
	}
	return e
}

func rcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rc)
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// AppendLine appends e as one JSON line to b.
func AppendLine(b []byte, e Entry) []byte {
	out, err := json.Marshal(e)
	if err != nil { // an Entry of strings, numbers and a time always encodes
		return b
	}
	b = append(b, out...)
	return append(b, '\n')
}
