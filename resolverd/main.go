// Command resolverd is shardns's resolver service: gRPC on -listen
// (shardns.resolver.v1.Resolver and coredns.dns.DnsService), answering from
// local zone files and forwarding the rest to -upstream.
package main

import (
	"os"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/daemons"
	"github.com/shardns/shardns/internal/gctune"
	"github.com/shardns/shardns/resolverd/service"
)

func main() {
	gctune.Start(os.Getenv)
	os.Exit(config.Main("resolverd", os.Args[1:], os.Getenv, os.Stderr, daemons.Schema(), service.Serve))
}
