package config

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lifecycle"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/redisopt"
)

// The flags two or more daemons take are defined here, once each, in
// groups a daemon's Config embeds (so its fields read as cfg.Redis,
// cfg.LogLevel): a flag of the same name has the same default and the same
// meaning in every daemon. Flags whose meaning is a daemon's own (-listen)
// stay with that daemon.

// Tiers are the Redis servers a daemon uses, with their security
// settings: the cache shards the fleet shares and the work queue's Redis.
type Tiers struct {
	Redis        string
	RedisCluster bool
	RedisTimeout time.Duration
	QueueRedis   string
	Queue        string
	// RedisAuth is who the cache's and the queue's clients log in as, and
	// whether over TLS.
	RedisAuth redisopt.Flags
}

// Register defines -redis, -redis-cluster, -redis-timeout, -queue-redis,
// -queue and redisopt's security flags on fs.
//
// -redis-timeout is 50 ms for every daemon: it bounds each call to a cache
// shard, and a shard that cannot take a call in that time is one the
// frontends already count as a miss, so a longer budget for resolverd's
// workers would only hold a worker on a shard nobody can read from.
func (t *Tiers) Register(fs *flag.FlagSet) {
	fs.StringVar(&t.Redis, "redis", "", "comma list of Redis cache shards (host:port) the fleet shares: dnsd and cacheapi read and write answers there, resolverd's workers write them, its iterator shares its state there and its reloads flush its local zones from them; empty: a frontend keeps its in-process cache only")
	fs.BoolVar(&t.RedisCluster, "redis-cluster", false, "treat -redis as the seed nodes of a Redis Cluster instead of Ring shards")
	fs.DurationVar(&t.RedisTimeout, "redis-timeout", cache.DefaultRedisTimeout, "budget for one call to a cache shard, dial included: a slower read counts as a miss, a slower write fails (a worker's task is then retried)")
	fs.StringVar(&t.QueueRedis, "queue-redis", "", "the work queue's Redis (host:port; never a cache shard): dnsd and cacheapi count their hits there for the fleet's prefetch; resolverd's -workers take warm and refresh tasks from it")
	fs.StringVar(&t.Queue, "queue", queue.DefaultName, "the work queue's name")
	t.RedisAuth.Register(fs)
}

// CacheRules are how answers are stored and kept fresh: the TTL bounds,
// serve-stale and prefetch. Every daemon that stores answers takes them,
// and a fleet's daemons should be given the same values.
type CacheRules struct {
	MinTTL       time.Duration
	MaxTTL       time.Duration
	MaxNegTTL    time.Duration
	Stale        time.Duration
	PrefetchHits int
}

// Register defines -min-ttl, -max-ttl, -max-negative-ttl, -stale and
// -prefetch-hits on fs.
func (r *CacheRules) Register(fs *flag.FlagSet) {
	fs.DurationVar(&r.MinTTL, "min-ttl", 0, "lowest TTL the cache stores (shorter TTLs are raised)")
	fs.DurationVar(&r.MaxTTL, "max-ttl", 86400*time.Second, "highest TTL the cache stores (longer TTLs are lowered)")
	fs.DurationVar(&r.MaxNegTTL, "max-negative-ttl", dnsmsg.DefaultMaxNegativeTTL, "highest TTL of a negative answer (NXDOMAIN, NODATA) the cache stores, as Unbound's cache-max-negative-ttl; 0: -max-ttl alone")
	fs.DurationVar(&r.Stale, "stale", 24*time.Hour, "serve-stale window past the TTL (RFC 8767); 0 turns serve-stale off")
	fs.IntVar(&r.PrefetchHits, "prefetch-hits", 2, "hits (across the fleet, with -queue-redis) that make an entry popular enough to be refreshed before it expires; 0 turns prefetch off")
}

// Resolving are the upstreams and local zones of a resolver: resolverd's,
// or the in-process one of a dnsd without -resolver.
type Resolving struct {
	Upstream string
	Trusted  string
	Zones    string
	Forward  string
	// Recurse turns on iterative resolution from the root; RootHints
	// replaces the built-in root hints.
	Recurse   bool
	RootHints string
	// TrustAnchor is the -trust-anchor file: DS or DNSKEY records that
	// replace the built-in root trust anchors of DNSSEC validation.
	TrustAnchor string
	// DNSSEC is the -dnssec mode: validate or off (see ValidateDNSSEC).
	DNSSEC string
}

// Register defines -upstream, -trusted-upstream, -zones, -forward,
// -recurse, -root-hints, -trust-anchor and -dnssec on fs.
func (r *Resolving) Register(fs *flag.FlagSet) {
	fs.StringVar(&r.Upstream, "upstream", "", "comma list of upstreams: host:port (UDP, TCP on truncation), tcp://host:port, tls://host:port[#name]; dnsd: for its in-process resolver (without -resolver), empty: the servers of -resolv-conf, never dnsd itself")
	fs.StringVar(&r.Trusted, "trusted-upstream", "", "comma list of upstreams, written as in -upstream, whose AD bit is passed on (tls:// upstreams always are); AD from any other is cleared")
	fs.StringVar(&r.Zones, "zones", "", "folder of RFC 1035 zone files (*.zone, *.db) answered locally (dnsd: by its in-process resolver)")
	fs.StringVar(&r.Forward, "forward", "", "per-zone forwarding: zone=upstream,upstream;zone=upstream, upstreams written as in -upstream; a name goes to the group of the longest zone it lies in, \".\" being the default group (-upstream, if given, is the \".\" group, and giving both is an error); local -zones answer first")
	fs.BoolVar(&r.Recurse, "recurse", false, "resolve iteratively from the root the names that neither -zones nor a -forward group (nor -upstream, when given) covers")
	fs.StringVar(&r.RootHints, "root-hints", "", "root hints file (named.root syntax: NS records of the root, A and AAAA records of the servers) replacing the built-in IANA hints; with -recurse")
	fs.StringVar(&r.TrustAnchor, "trust-anchor", "", "file of DS or DNSKEY records in zone-file syntax that replace the built-in root trust anchors (IANA's root KSKs 20326 and 38696) of DNSSEC validation")
	fs.StringVar(&r.DNSSEC, "dnssec", DNSSECValidate, "DNSSEC validation of the answers a resolver resolves from the root: validate or off")
}

// The values -dnssec takes.
const (
	DNSSECValidate = "validate"
	DNSSECOff      = "off"
)

// ValidateDNSSEC reports whether -dnssec asks for validation, or an error
// naming a value that is neither validate nor off.
func (r *Resolving) ValidateDNSSEC() (bool, error) {
	switch r.DNSSEC {
	case DNSSECValidate:
		return true, nil
	case DNSSECOff:
		return false, nil
	}
	return false, fmt.Errorf("-dnssec %q: want %s or %s", r.DNSSEC, DNSSECValidate, DNSSECOff)
}

// Rules checks the TTL bounds and returns the policy and serve-stale
// window answers are stored under (lookup.Rules), at start and on reload.
func (r *CacheRules) Rules() (lookup.Rules, error) {
	if r.MaxTTL > 0 && r.MinTTL > r.MaxTTL {
		return lookup.Rules{}, fmt.Errorf("-min-ttl %v above -max-ttl %v", r.MinTTL, r.MaxTTL)
	}
	if r.MaxNegTTL < 0 {
		return lookup.Rules{}, fmt.Errorf("-max-negative-ttl %v is negative", r.MaxNegTTL)
	}
	return lookup.Rules{
		Policy: dnsmsg.Policy{MinTTL: r.MinTTL, MaxTTL: r.MaxTTL, MaxNegativeTTL: r.MaxNegTTL},
		Stale:  r.Stale,
	}, nil
}

// Logging is where a daemon's log goes and how much of it.
type Logging struct {
	LogFormat string
	LogLevel  string
}

// Register defines -log-format and -log-level on fs.
func (l *Logging) Register(fs *flag.FlagSet) {
	fs.StringVar(&l.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// LogSettings are the -log-format and -log-level values (see Daemon).
func (l *Logging) LogSettings() (format, level string) { return l.LogFormat, l.LogLevel }

// Diagnostics are a daemon's side HTTP servers for its operators.
type Diagnostics struct {
	Metrics string
	Pprof   string
}

// Register defines -metrics and -pprof on fs.
func (d *Diagnostics) Register(fs *flag.FlagSet) {
	fs.StringVar(&d.Metrics, "metrics", "", "serve Prometheus /metrics on this address")
	fs.StringVar(&d.Pprof, "pprof", "", "serve Go's profiler (net/http/pprof, /debug/pprof/) on this address; keep it on loopback")
}

// ClientACL is who may look names up through a frontend.
type ClientACL struct {
	Allow string
}

// Register defines -allow on fs.
func (a *ClientACL) Register(fs *flag.FlagSet) {
	fs.StringVar(&a.Allow, "allow", "", "comma list of client CIDRs allowed to look names up (DNS queries, the REST API's /lookup and /dns-query), or \"any\"; default loopback, RFC 1918, RFC 6598, RFC 4193 and link-local; others get REFUSED with EDE 18 over UDP, their TCP connections are closed at accept, and HTTP answers 403")
}

// Drain bounds a daemon's stop.
type Drain struct {
	DrainTimeout time.Duration
}

// Register defines -drain-timeout on fs.
func (d *Drain) Register(fs *flag.FlagSet) {
	fs.DurationVar(&d.DrainTimeout, "drain-timeout", lifecycle.DefaultDrain, "on SIGINT or SIGTERM, how long the queries, requests and tasks in flight may take to finish before they are cut off and the daemon exits")
}

// DnstapOutput is where a daemon writes dnstap: dnsd its clients' queries
// and responses, resolverd (and dnsd's in-process resolver) its queries to
// upstreams and their responses.
type DnstapOutput struct {
	Dnstap         string
	DnstapIdentity string
	DnstapVersion  string
}

// Register defines -dnstap, -dnstap-identity and -dnstap-version on fs.
func (d *DnstapOutput) Register(fs *flag.FlagSet) {
	fs.StringVar(&d.Dnstap, "dnstap", "", "write dnstap to this file, or to unix:PATH, the Frame Streams socket of a collector (dnstap -u PATH, fstrm_capture), reconnected to with backoff; messages are dropped (shardns_dnstap_dropped_total) rather than slow a query; empty: off")
	fs.StringVar(&d.DnstapIdentity, "dnstap-identity", "", "the server's name in dnstap messages; empty: the host name")
	fs.StringVar(&d.DnstapVersion, "dnstap-version", "", "the software's name in dnstap messages; empty: shardns and its version")
}

// QueryLogOutput is a frontend's JSON-lines query log.
type QueryLogOutput struct {
	QueryLog       string
	QueryLogSample int
}

// Register defines -query-log and -query-log-sample on fs.
func (q *QueryLogOutput) Register(fs *flag.FlagSet) {
	fs.StringVar(&q.QueryLog, "query-log", "", "append one JSON line per query answered (time, client, proto, qname, qtype, rcode, source, duration_us, size) to this file, or - for standard output; lines are dropped (shardns_query_log_dropped_total) rather than slow a query; empty: off")
	fs.IntVar(&q.QueryLogSample, "query-log-sample", 1, "log one query in N in -query-log; 1: every query")
}

// OpenShards opens the cache shards t names (-redis, as a Ring or, with
// -redis-cluster, a Cluster, with t's credentials), or returns nil when it
// names none. Each server is asked once (redisopt.Check): one that refuses
// the credentials or the TLS settings is logged at error level, without
// failing the open. The caller closes the client.
func (t Tiers) OpenShards(ctx context.Context, reg prometheus.Registerer, log *slog.Logger) (*cache.Redis, error) {
	addrs := List(t.Redis)
	if len(addrs) == 0 {
		return nil, nil
	}
	cacheAuth, _, err := t.RedisAuth.Load()
	if err != nil {
		return nil, err
	}
	shards, err := cache.Open(t.RedisCluster, cache.RedisConfig{
		Addrs: addrs, Timeout: t.RedisTimeout,
		Username: cacheAuth.User, Password: cacheAuth.Password, TLS: cacheAuth.TLS,
		Registerer: reg, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	redisopt.Check(ctx, log, "cache shard", addrs, cacheAuth)
	return shards, nil
}
