// Command dnsd is shardns's DNS daemon: UDP and TCP on -listen, answers from
// the shared cache, misses through resolverd. With no -resolver and no
// -redis it runs everything in one process: `go run ./dnsd`.
package main

import (
	"os"

	"github.com/shardns/shardns/dnsd/app"
	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/daemons"
	"github.com/shardns/shardns/internal/gctune"
)

func main() {
	gctune.Start(os.Getenv)
	os.Exit(config.Main("dnsd", os.Args[1:], os.Getenv, os.Stderr, daemons.Schema(), app.Serve))
}
