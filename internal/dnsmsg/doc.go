// Package dnsmsg holds the DNS message rules every shardns component shares:
// the cache key, query validation, TTL policy (positive, negative per RFC
// 2308, clamps), the wire layout of a stored answer and the patching that
// turns it into a reply for one client (ID, flags, name case, aged TTLs, OPT,
// Extended DNS Errors), fitting a reply to the client's UDP size, and
// scrubbing a reply of the records unrelated to its question. It imports
// only miekg/dns.
package dnsmsg
