// Command healthcheck probes one shardns daemon from inside its container
// image, which has no shell, curl or grpc_health_probe. It exits 0 when the
// daemon answers and 1 when it does not (Docker reserves 2), which is all
// Docker's HEALTHCHECK and Kubernetes exec probes read:
//
//	healthcheck http http://127.0.0.1:8080/healthz   # a 2xx status (cacheapi, dnsd -http)
//	healthcheck grpc 127.0.0.1:50051 [service]       # grpc.health.v1 says SERVING (resolverd)
//	healthcheck dns 127.0.0.1:5353                   # a DNS reply over UDP and over TCP (dnsd)
//
// -timeout bounds the whole probe (default 2s).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run probes what args name and returns the exit code.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Second, "bound on the whole probe")
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := probe(ctx, fs.Args()); err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	return 0
}

const usage = "usage: healthcheck [-timeout 2s] http URL | grpc HOST:PORT [SERVICE] | dns HOST:PORT"

func probe(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return errors.New(usage)
	}
	mode, target, rest := args[0], args[1], args[2:]
	switch {
	case mode == "http" && len(rest) == 0:
		return probeHTTP(ctx, target)
	case mode == "grpc" && len(rest) <= 1:
		service := ""
		if len(rest) == 1 {
			service = rest[0]
		}
		return probeGRPC(ctx, target, service)
	case mode == "dns" && len(rest) == 0:
		return probeDNS(ctx, target)
	}
	return errors.New(usage)
}
