package recurse

import (
	"net/netip"
	"sync"
	"time"
)

// Server selection tunables.
const (
	// unknownRTT is the RTT assumed of a server never asked: low, so new
	// servers are tried, but above a fast known one.
	unknownRTT = 50 * time.Millisecond
	// minAttempt and maxAttempt bound one query's timeout.
	minAttempt = 150 * time.Millisecond
	maxAttempt = 1000 * time.Millisecond
	// firstBackoff is how long a server that timed out is passed over;
	// it doubles with each timeout in a row, up to maxBackoff.
	firstBackoff = time.Second
	maxBackoff   = 2 * time.Minute
	// DefaultLameTTL is how long a server lame for a zone is avoided.
	DefaultLameTTL = 15 * time.Minute
	// maxServers bounds the servers whose state is kept.
	maxServers = 20000
)

// serverState is what the resolver knows of one server address.
type serverState struct {
	srtt     time.Duration // 0: never answered
	timeouts int           // in a row
	until    time.Time     // passed over before this time (backoff)
	noEDNS   bool          // answered FORMERR or NOTIMP to EDNS, and answered without
	shared   bool          // what the ServerShare knew of it has been taken
}

// ServerInfo is what one resolver learnt of one server address, as shared
// with the others of the fleet through a ServerShare.
type ServerInfo struct {
	// SRTT is the smoothed round-trip time (0: never answered).
	SRTT time.Duration
	// NoEDNS: the server rejects EDNS and answers plain DNS.
	NoEDNS bool
	// Lame are the zones the server was found lame for, each until when.
	Lame []LameZone
}

// LameZone is one zone a server is lame for, until a time.
type LameZone struct {
	Zone  string
	Until time.Time
}

// ServerShare shares server state with other resolvers. The iterator
// takes what it holds for a server it has no state of its own for yet,
// and publishes what it learns. Neither call may wait on I/O: the query
// path calls both.
type ServerShare interface {
	// Server returns what is shared about addr, from memory; false when
	// nothing is known of it yet (an implementation may fetch it then for
	// a later call).
	Server(addr netip.Addr) (ServerInfo, bool)
	// Publish shares what this resolver learnt of addr: its RTT and EDNS
	// support, and the zones in info.Lame, merged with the zones already
	// shared for it.
	Publish(addr netip.Addr, info ServerInfo)
}

// lameKey is one server for one zone.
type lameKey struct {
	zone string
	addr netip.Addr
}

// servers is the resolver's memory of the servers it asked.
type servers struct {
	lameTTL time.Duration
	share   ServerShare // nil: nothing shared
	mu      sync.Mutex
	state   map[netip.Addr]*serverState
	lame    map[lameKey]time.Time // until when
}

func newServers(lameTTL time.Duration) *servers {
	return &servers{lameTTL: lameTTL, state: map[netip.Addr]*serverState{}, lame: map[lameKey]time.Time{}}
}

// get returns a's state, made on first use, with what s.share knows of
// a taken once it knows anything; under s.mu.
func (s *servers) get(a netip.Addr) *serverState {
	st, ok := s.state[a]
	if ok && (st.shared || s.share == nil) {
		return st
	}
	if !ok {
		if len(s.state) >= maxServers {
			for k := range s.state {
				delete(s.state, k)
				break
			}
		}
		st = &serverState{shared: s.share == nil}
		s.state[a] = st
	}
	if s.share != nil {
		s.takeShared(a, st)
	}
	return st
}

// takeShared merges into st, a's state, what s.share knows of a, once it
// knows anything; under s.mu. What this resolver measured itself wins.
func (s *servers) takeShared(a netip.Addr, st *serverState) {
	info, ok := s.share.Server(a)
	if !ok {
		return
	}
	st.shared = true
	if st.srtt == 0 {
		st.srtt = info.SRTT
	}
	st.noEDNS = st.noEDNS || info.NoEDNS
	for _, l := range info.Lame {
		k := lameKey{l.Zone, a}
		if until := s.lame[k]; until.Before(l.Until) && len(s.lame) < maxServers {
			s.lame[k] = l.Until
		}
	}
}

// publish shares st, a's state, and the zones in lame; under s.mu.
func (s *servers) publish(a netip.Addr, st *serverState, lame ...LameZone) {
	if s.share != nil {
		s.share.Publish(a, ServerInfo{SRTT: st.srtt, NoEDNS: st.noEDNS, Lame: lame})
	}
}

// candidate is a server to ask, with how good a choice it is.
type candidate struct {
	addr  netip.Addr
	rank  int // 0 good, 1 backing off, 2 lame for the zone
	rtt   time.Duration
	edns  bool
	limit time.Duration // this attempt's timeout
}

// rank returns the candidates for zone among addrs, best first: servers
// neither backing off nor lame by smoothed RTT, then backing off, then
// lame.
func (s *servers) rank(zone string, addrs []netip.Addr, now time.Time) []candidate {
	out := make([]candidate, 0, len(addrs))
	s.mu.Lock()
	for _, a := range addrs {
		st := s.get(a)
		c := candidate{addr: a, rtt: st.srtt, edns: !st.noEDNS}
		if c.rtt == 0 {
			c.rtt = unknownRTT
		}
		c.limit = min(max(3*st.srtt+100*time.Millisecond, minAttempt), maxAttempt)
		if st.srtt == 0 {
			c.limit = 4 * minAttempt
		}
		if now.Before(st.until) {
			c.rank = 1
		}
		if until, ok := s.lame[lameKey{zone, a}]; ok {
			if now.Before(until) {
				c.rank = 2
			} else {
				delete(s.lame, lameKey{zone, a})
			}
		}
		out = append(out, c)
	}
	s.mu.Unlock()
	// Insertion sort: a zone has a handful of servers.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && less(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func less(a, b candidate) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.rtt < b.rtt
}

// answered records a reply from a after rtt.
func (s *servers) answered(a netip.Addr, rtt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(a)
	if st.srtt == 0 {
		st.srtt = rtt
	} else {
		st.srtt = st.srtt - st.srtt/8 + rtt/8
	}
	st.timeouts, st.until = 0, time.Time{}
	s.publish(a, st)
}

// timedOut records that a did not answer within limit: its RTT estimate
// takes the whole limit and it is passed over for a backoff that doubles
// with each timeout in a row.
func (s *servers) timedOut(a netip.Addr, limit time.Duration, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(a)
	st.srtt = max(st.srtt, limit)
	b := firstBackoff << min(st.timeouts, 8)
	st.timeouts++
	st.until = now.Add(min(b, maxBackoff))
	s.publish(a, st)
}

// setNoEDNS remembers that a takes queries only without EDNS.
func (s *servers) setNoEDNS(a netip.Addr) {
	s.mu.Lock()
	st := s.get(a)
	st.noEDNS = true
	s.publish(a, st)
	s.mu.Unlock()
}

// setLame remembers that a is lame for zone: it answered REFUSED or
// SERVFAIL, or without authority and without a referral.
func (s *servers) setLame(zone string, a netip.Addr, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lame) >= maxServers {
		for k := range s.lame {
			delete(s.lame, k)
			break
		}
	}
	until := now.Add(s.lameTTL)
	s.lame[lameKey{zone, a}] = until
	s.publish(a, s.get(a), LameZone{Zone: zone, Until: until})
}

// isLame reports whether a is lame for zone now.
func (s *servers) isLame(zone string, a netip.Addr, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.lame[lameKey{zone, a}]
	return ok && now.Before(until)
}
