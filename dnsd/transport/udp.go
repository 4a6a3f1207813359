package transport

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"
)

// udpReader is one socket's reading loop and the buffers it reuses.
type udpReader struct {
	s       *Server
	rd      dgramReader
	w       dgramWriter // where replies leave: a send socket, or the read one
	in      []dgram
	bufs    []*[]byte // in[i].b is *bufs[i]
	ms      []Msg     // the read's messages for the Handler
	at      []int     // ms[j] was read into in[at[j]]
	out     []dgram
	outBufs [][]byte // reply space for the reader's answers, one per slot

	// The datagrams the reader's Serve call left go to answering
	// workers, a read's worth at once: an idle worker takes the next job
	// (jobs is unbuffered), and when none is idle a new one starts.
	// Replies to single datagrams go to the socket's writer, which sends
	// them in batches; workers counts the answering goroutines, so that
	// the writer stops only after the last of them queued its reply.
	jobs    chan udpWork
	quit    chan struct{} // closed when the socket is no longer read: idle workers exit
	replies chan udpReply
	workers sync.WaitGroup

	// When a read leaves udpGateMin datagrams or more, their worker's
	// first wait call reads the cache for all of them together (one MGET
	// per Redis shard), and the reader does not read again until that
	// call has returned, or peekWait has passed. What arrives meanwhile waits in
	// the socket and is read, and looked up, together next: under load
	// a read carries what came during the last cache read, so the cache
	// is asked once per shard for many queries rather than for a few at
	// a time as they trickle in, and one read, one worker and one write
	// serve them all. Fewer leftovers hold nothing up: the reader's own
	// answers (L1 hits) do not wait on a cache read for a few queries,
	// and a lone datagram's wait call runs its whole lookup, a
	// resolver's answer included.
	peeked    chan struct{} // capacity 1: a gated job's first wait call returned
	peekWait  time.Duration
	peekTimer *time.Timer // bounds the reader's wait for peeked
	gated     bool        // the reader's last job is gated: wait before reading
}

// udpJob is a datagram on its way to an answering worker, holding a slot
// of MaxUDPInFlight; buf goes back to the pool once it is answered.
type udpJob struct {
	buf   *[]byte
	n     int
	from  netip.AddrPort
	local netip.Addr // where it came to, on a wildcard socket: the reply's source
	state any        // the Handler's (Msg.State)
}

// udpWork is a worker's job: one datagram, or more (a read's).
type udpWork struct {
	one  udpJob
	more []udpJob // set: the job is these, not one
	gate bool     // the reader waits for the job's first wait call (see peeked)
}

// udpWorkerIdle is how long an answering worker waits for its next
// datagram before it exits. A worker outlives its first answer so that a
// busy socket reuses the stacks its workers have grown: a new goroutine
// per query grows (and copies) its stack on every query, about a sixth of
// dnsd's CPU on Redis hits.
const udpWorkerIdle = 2 * time.Second

// udpPeekWait bounds how long the reader waits for a worker's first wait
// call (a read of the cache) before it reads its socket again: a healthy
// cache answers well within it, and a frozen Redis shard delays the
// reader's next read, and so the answers it would give at once, by no
// more than this.
const udpPeekWait = time.Millisecond

// udpGateMin is the fewest datagrams a read must leave to a worker for
// the reader to wait for their cache read (see udpReader.peeked): L1 off,
// a loaded reader leaves dozens; L1 on, a few that L1 lacks.
const udpGateMin = 8

// udpReply is a reply from an answering goroutine on its way out: buf
// holds it and goes back to the pool once it is sent.
type udpReply struct {
	buf  *[]byte
	msg  []byte
	to   netip.AddrPort
	from netip.Addr // the reply's source, on a wildcard socket
}

// readUDP reads datagrams until the socket closes, as many per call as are
// waiting, up to udpBatch, and hands each read to the Handler as one
// batch: what it answers at once leaves in one write call; the rest go,
// together, to an answering worker while fewer than MaxUDPInFlight are
// being answered, and beyond that are dropped, as a loaded server must
// (the client retries). When many went to the worker, the next read
// waits for its first call on them (see udpReader.peeked). Replies leave
// through w, or pc when w is nil.
// With dstInfo (a wildcard socket) each reply leaves from the address its
// query came to.
func (s *Server) readUDP(pc *net.UDPConn, w dgramWriter, dstInfo bool) {
	defer s.wg.Done()
	if w == nil {
		w = newReplyWriter(pc)
	}
	r := s.newUDPReader(newDgramReader(pc, dstInfo), w)
	s.wg.Add(1)
	go r.writeReplies()
	defer func() {
		for _, bp := range r.bufs {
			s.bufs.Put(bp)
		}
		close(r.quit)
		r.workers.Wait()
		close(r.replies)
	}()
	for {
		if r.gated {
			r.awaitPeek()
		}
		n, err := r.rd.readBatch(r.in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.stopping.Load() {
				return
			}
			s.log.Debug("udp read", "err", err)
			continue
		}
		s.metrics.udpBatch.Observe(float64(n))
		r.serve(n)
	}
}

// newUDPReader is the reading loop's state for a socket read by rd, its
// replies leaving through w.
func (s *Server) newUDPReader(rd dgramReader, w dgramWriter) *udpReader {
	r := &udpReader{s: s, rd: rd, w: w,
		in: make([]dgram, udpBatch), bufs: make([]*[]byte, udpBatch),
		ms: make([]Msg, 0, udpBatch), at: make([]int, 0, udpBatch),
		out: make([]dgram, udpBatch), outBufs: make([][]byte, udpBatch),
		jobs: make(chan udpWork), quit: make(chan struct{}), replies: make(chan udpReply, 4*udpBatch),
		peeked: make(chan struct{}, 1), peekWait: s.udpPeekWait, peekTimer: time.NewTimer(time.Hour)}
	r.peekTimer.Stop()
	for i := range r.in {
		r.bufs[i] = s.bufs.Get().(*[]byte)
		r.in[i].b = *r.bufs[i]
		r.outBufs[i] = make([]byte, 0, udpReadSize)
	}
	return r
}

// serve answers the n datagrams just read into r.in.
func (r *udpReader) serve(n int) {
	s := r.s
	ms, at := r.ms[:0], r.at[:0]
	for i := range n {
		m := &r.in[i]
		if !m.peer.IsValid() {
			continue
		}
		ms = append(ms, Msg{Req: (*r.bufs[i])[:m.n], From: Peer{Addr: m.peer}, Dst: r.outBufs[len(ms)][:0]})
		at = append(at, i)
	}
	if len(ms) == 0 {
		return
	}
	s.cfg.Handler.Serve(s.ctx, ms, false)
	k := 0 // replies in r.out
	var w udpWork
	left := 0
	for j := range ms {
		m, i := &ms[j], at[j]
		if m.Done {
			if m.Reply != nil {
				r.out[k] = dgram{b: m.Reply, peer: m.From.Addr, local: r.in[i].local}
				k++
			}
			continue
		}
		if s.udpInFlight.Add(1) > int64(s.cfg.MaxUDPInFlight) {
			s.udpInFlight.Add(-1)
			s.metrics.udpDropped.Inc()
			continue
		}
		job := udpJob{buf: r.bufs[i], n: r.in[i].n, from: m.From.Addr, local: r.in[i].local, state: m.State}
		switch left++; left {
		case 1:
			w.one = job
		case 2:
			w.more = append(make([]udpJob, 0, len(ms)-j+1), w.one, job)
			w.one = udpJob{}
		default:
			w.more = append(w.more, job)
		}
		// A worker owns the buffer now: the slot takes a new one.
		r.bufs[i] = s.bufs.Get().(*[]byte)
		r.in[i].b = *r.bufs[i]
	}
	r.write(r.out[:k])
	clear(ms) // hold no request, reply or state past the call
	if left >= udpGateMin {
		select {
		case <-r.peeked: // a late token, from a job the reader stopped waiting for
		default:
		}
		w.gate, r.gated = true, true
	}
	if left > 0 {
		r.dispatch(w)
	}
}

// awaitPeek waits until the first wait call of the reader's gated job has
// returned, at most peekWait.
func (r *udpReader) awaitPeek() {
	r.gated = false
	select {
	case <-r.peeked:
		return
	default:
	}
	r.peekTimer.Reset(r.peekWait)
	select {
	case <-r.peeked:
		r.peekTimer.Stop()
	case <-r.peekTimer.C:
	}
}

// dispatch hands w to an idle worker, or to a new one if none is idle.
// A worker may dispatch too (what its Serve call left): its own count in
// workers keeps the total above zero while it adds to it.
func (r *udpReader) dispatch(w udpWork) {
	select {
	case r.jobs <- w:
	default:
		r.workers.Add(1)
		go r.work(w)
	}
}

// work is an answering worker: it answers w, then the jobs handed to it
// while it waits, until it has waited udpWorkerIdle in vain or the socket
// is no longer read.
func (r *udpReader) work(w udpWork) {
	defer r.workers.Done()
	idle := time.NewTimer(udpWorkerIdle)
	defer idle.Stop()
	sc := &workScratch{ms: make([]Msg, 0, udpBatch), outs: make([]*[]byte, 0, udpBatch), wm: make([]dgram, udpBatch)}
	for {
		for more := true; more; {
			g := w.more
			if g == nil {
				sc.one[0] = w.one
				g = sc.one[:]
			}
			w, more = r.answer(g, sc, w.gate)
		}
		idle.Reset(udpWorkerIdle)
		select {
		case w = <-r.jobs:
		case <-idle.C:
			return
		case <-r.quit:
			return
		}
	}
}

// workScratch is what a worker reuses from one job to the next.
type workScratch struct {
	one  [1]udpJob
	ms   []Msg
	outs []*[]byte
	wm   []dgram
}

// answer makes a wait call of the Handler on the datagrams of g, and
// tells the reader when it returned if gate is set. A single
// datagram's reply goes to the socket's writer; the replies to several
// leave together in one write call. Of those the call left, each but the
// last goes to a worker of its own, and the last is returned (more true),
// for this worker to answer next.
func (r *udpReader) answer(g []udpJob, sc *workScratch, gate bool) (next udpWork, more bool) {
	s := r.s
	ms, outs := sc.ms[:0], sc.outs[:0]
	for _, j := range g {
		out := s.bufs.Get().(*[]byte)
		outs = append(outs, out)
		ms = append(ms, Msg{Req: (*j.buf)[:j.n], From: Peer{Addr: j.from}, Dst: (*out)[:0], State: j.state})
	}
	s.cfg.Handler.Serve(s.ctx, ms, true)
	if gate {
		select {
		case r.peeked <- struct{}{}:
		default:
		}
	}
	if len(g) == 1 {
		j, m := g[0], &ms[0]
		s.bufs.Put(j.buf)
		if m.Done && m.Reply != nil {
			r.replies <- udpReply{buf: outs[0], msg: m.Reply, to: j.from, from: j.local}
		} else {
			s.bufs.Put(outs[0])
		}
		ms[0], outs[0], g[0] = Msg{}, nil, udpJob{}
		s.udpInFlight.Add(-1)
		return udpWork{}, false
	}
	k := 0
	var left []udpJob
	for i := range ms {
		m := &ms[i]
		if !m.Done {
			j := g[i]
			j.state = m.State
			left = append(left, j)
			continue
		}
		if m.Reply != nil {
			sc.wm[k] = dgram{b: m.Reply, peer: g[i].from, local: g[i].local}
			k++
		}
	}
	r.write(sc.wm[:k])
	for i := range ms {
		if ms[i].Done {
			s.bufs.Put(g[i].buf)
			s.udpInFlight.Add(-1)
		}
		s.bufs.Put(outs[i])
		ms[i], outs[i] = Msg{}, nil
	}
	for i, j := range left {
		if i == len(left)-1 {
			return udpWork{one: j}, true
		}
		r.dispatch(udpWork{one: j})
	}
	return udpWork{}, false
}

// writeReplies sends the replies of answering goroutines, as many per
// call as have queued, until the reader closes the queue: after the
// socket stopped being read and the last answer was queued.
func (r *udpReader) writeReplies() {
	defer r.s.wg.Done()
	ms := make([]dgram, udpBatch)
	bufs := make([]*[]byte, udpBatch)
	for rep := range r.replies {
		if len(r.replies) == 0 {
			// Let workers that are ready to run queue their replies
			// first, so that they leave in this call: with nothing
			// else runnable this returns at once.
			runtime.Gosched()
		}
		k := 0
		for more := true; more; {
			ms[k], bufs[k] = dgram{b: rep.msg, peer: rep.to, local: rep.from}, rep.buf
			k++
			more = false
			if k < len(ms) {
				select {
				case rep, more = <-r.replies:
				default:
				}
			}
		}
		r.write(ms[:k])
		for i := range k {
			r.s.bufs.Put(bufs[i])
			bufs[i] = nil
		}
	}
}

// write sends ms in as few calls as the kernel allows. A reply the kernel
// refuses (an unreachable peer, say) is skipped; the rest still go. It
// clears ms: no reply or client address is held past its sending.
func (r *udpReader) write(ms []dgram) {
	defer clear(ms)
	for sent := 0; sent < len(ms); {
		n, err := r.w.writeBatch(ms[sent:])
		r.s.metrics.udpOutBatch.Observe(float64(max(n, 1)))
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n = max(n, 0) // sent before the one that failed
			r.s.log.Debug("udp write", "to", ms[sent+n].peer, "err", err)
			n++ // skip it
		}
		sent += n
	}
}
