package forward

import (
	"net"
	"sync"

	"github.com/shardns/shardns/internal/rawconn"
)

// udpAhead is how many connected UDP sockets each UDP upstream keeps open
// ahead of its queries; spent ones wait, up to twice that, to be closed.
const udpAhead = 32

// udpSockets hands out connected UDP sockets to one upstream, each for one
// query only, so every query still has a socket, and a random source port,
// of its own. Opening and closing a socket are system calls the Go
// scheduler is told of; made on a query's path, the first of them woke
// resolverd's runtime monitor thread whenever resolverd had been idle,
// two or three context switches per query on a quiet server. Here one
// goroutine opens sockets in bursts ahead of the queries and closes the
// spent ones in bursts behind them. When the ready ones run out (a burst
// of queries) a query opens its own, as before. The sockets are wrapped
// for raw reads and writes (package rawconn) when opened, off the query's
// path.
type udpSockets struct {
	addr  *net.UDPAddr
	ready chan net.Conn // opened, never used
	kick  chan struct{} // wakes keep (capacity 1)

	mu     sync.Mutex // orders put against the end of keep
	spent  chan net.Conn
	closed bool
}

func newUDPSockets(addr *net.UDPAddr) *udpSockets {
	return &udpSockets{
		addr:  addr,
		ready: make(chan net.Conn, udpAhead),
		spent: make(chan net.Conn, 2*udpAhead),
		kick:  make(chan struct{}, 1),
	}
}

// get returns a socket no query has used.
func (s *udpSockets) get() (net.Conn, error) {
	select {
	case c := <-s.ready:
		if len(s.ready) <= udpAhead/2 {
			s.wake()
		}
		return c, nil
	default:
		s.wake()
		return s.open()
	}
}

// open opens a connected socket to the upstream.
func (s *udpSockets) open() (net.Conn, error) {
	c, err := net.DialUDP("udp", nil, s.addr)
	if err != nil {
		return nil, err
	}
	return rawconn.Wrap(c), nil
}

// put takes back a socket after its query, to be closed.
func (s *udpSockets) put(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		select {
		case s.spent <- c:
			return
		default:
		}
	}
	c.Close()
}

func (s *udpSockets) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// keep opens and closes sockets until stop is closed, then closes every
// socket it holds; get and put go on working without it.
func (s *udpSockets) keep(stop <-chan struct{}) {
	s.fill()
	for {
		select {
		case <-stop:
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
			s.drain(s.spent)
			s.drain(s.ready)
			return
		case <-s.kick:
			s.drain(s.spent)
			s.fill()
		}
	}
}

func (s *udpSockets) fill() {
	for len(s.ready) < cap(s.ready) { // only keep sends: this never blocks
		c, err := s.open()
		if err != nil {
			return // get opens its own, and reports the error
		}
		s.ready <- c
	}
}

func (s *udpSockets) drain(ch chan net.Conn) {
	for {
		select {
		case c := <-ch:
			c.Close()
		default:
			return
		}
	}
}
