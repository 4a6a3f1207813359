package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shardns/shardns/bench/peers"
)

// Row labels of the servers compared.
const (
	nameNSD     = "NSD (authoritative, no cache)"
	nameFixed   = "fixed answer (miekg/dns)"
	nameCoreDNS = "CoreDNS (cache, forward)"
	nameUnbound = "Unbound"
	nameDnsmasq = "dnsmasq"
	nameAIO     = "shardns all-in-one (L1, in-process resolver)"
	nameFleet   = "shardns L1 + Redis×4 + resolverd"
	nameRedis   = "shardns Redis×4, L1 off"
	nameChain   = "Unbound ×3 chain (a fleet miss's hops)"
)

// fleetHops is how many processes a miss through the fleet passes before
// nsd, each handing it on once: dnsd, a Redis shard, resolverd. The
// Unbound chain of the misses workload has as many.
const fleetHops = 3

// baseline is the server every ratio divides by.
const baseline = nameUnbound

// target is one server a workload is run against.
type target struct {
	name   string
	caches bool // has a cache to warm before a warm-cache run
	shared bool // the upstream nsd itself: neither started nor stopped per run
	start  func(ctx context.Context) (*peers.Server, error)
}

// shardnsConfig is an arrangement of shardns with the run's binaries.
func (b *bench) shardnsConfig(name string, shards int, resolverd bool, l1 int) peers.ShardnsConfig {
	return peers.ShardnsConfig{
		Name: name, Dnsd: b.bins.dnsd, Resolverd: b.bins.resolverd, Redis: b.tools.redis,
		Shards: shards, UseResolverd: resolverd, L1: l1, MinTTL: 0,
		RedisMaxMemory: "1gb", RedisPolicy: "allkeys-lfu",
	}
}

// l1Size is an L1 with room for every question of the run.
func (b *bench) l1Size() int { return max(100_000, 10*len(b.data.zone.Names)) }

func (b *bench) shardnsTarget(cfg peers.ShardnsConfig) target {
	return target{name: cfg.Name, caches: true, start: func(ctx context.Context) (*peers.Server, error) {
		return peers.Shardns(ctx, b.env, cfg, b.nsd, b.data.probe)
	}}
}

// peerTargets are the servers of the warm-cache and cold-cache workloads.
func (b *bench) peerTargets() []target {
	ts := []target{
		{name: nameNSD, shared: true, start: func(context.Context) (*peers.Server, error) { return b.nsd, nil }},
		{name: nameFixed, start: func(ctx context.Context) (*peers.Server, error) {
			return peers.Fixed(ctx, b.env, b.bins.fixed)
		}},
		{name: nameCoreDNS, caches: true, start: func(ctx context.Context) (*peers.Server, error) {
			return peers.CoreDNS(ctx, b.env, b.tools.coredns, b.nsd, b.l1Size(), b.data.probe)
		}},
		{name: nameUnbound, caches: true, start: func(ctx context.Context) (*peers.Server, error) {
			return peers.Unbound(ctx, b.env, b.tools.unbound, b.nsd, b.data.probe)
		}},
		{name: nameDnsmasq, caches: true, start: func(ctx context.Context) (*peers.Server, error) {
			return peers.Dnsmasq(ctx, b.env, b.tools.dnsmasq, b.nsd, b.dnsmasqCache(), b.data.probe)
		}},
		b.shardnsTarget(b.shardnsConfig(nameAIO, 0, false, b.l1Size())),
		b.shardnsTarget(b.shardnsConfig(nameFleet, 4, true, b.l1Size())),
		b.shardnsTarget(b.shardnsConfig(nameRedis, 4, true, 0)),
	}
	if b.tools.coredns == "" {
		ts = slices.DeleteFunc(ts, func(t target) bool { return t.name == nameCoreDNS })
	}
	return b.filter(ts)
}

// shardTargets sweep the Redis shard count with L1 off.
func (b *bench) shardTargets() []target {
	var ts []target
	for _, n := range shardCounts() {
		ts = append(ts, b.shardnsTarget(b.shardnsConfig(shardName(n), n, true, 0)))
	}
	return b.filter(ts)
}

// shardCounts are the shard counts swept.
func shardCounts() []int { return []int{1, 2, 4, 8} }

func shardName(n int) string { return fmt.Sprintf("shardns Redis×%d, L1 off", n) }

// filter keeps the targets -servers names.
func (b *bench) filter(ts []target) []target {
	if b.o.servers == "" {
		return ts
	}
	var out []target
	for _, t := range ts {
		for w := range strings.SplitSeq(b.o.servers, ",") {
			if w = strings.TrimSpace(w); w != "" && strings.Contains(strings.ToLower(t.name), strings.ToLower(w)) {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// perRunOverhead is a generous allowance for starting and stopping one
// server, used in the time estimate.
const perRunOverhead = 3 * time.Second
