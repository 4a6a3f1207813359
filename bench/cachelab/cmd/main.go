// Command cmd runs the cache experiments of package cachelab on its own
// and prints their Markdown:
//
//	cd bench && go run ./cachelab/cmd -quick -out /tmp/cachelab
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shardns/shardns/bench/cachelab"
)

func main() {
	quick := flag.Bool("quick", false, "smaller traces and fewer sizes (about 2 minutes)")
	out := flag.String("out", "cachelab-plots", "folder for the PNG plots")
	md := flag.String("md", "", "write the Markdown to this file instead of stdout")
	bin := flag.String("redis-server", "", "path to redis-server (default: from PATH)")
	names := flag.String("names", "", "file of domain names, one per line, for the key space (default: generated)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*quick, *out, *md, *bin, *names, log); err != nil {
		log.Error("cachelab failed", "err", err)
		os.Exit(1)
	}
}

func run(quick bool, out, md, bin, namesFile string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var names []string
	if namesFile != "" {
		var err error
		if names, err = readNames(namesFile); err != nil {
			return err
		}
	}
	rep, err := cachelab.Run(ctx, cachelab.Config{Quick: quick, OutDir: out, RedisServer: bin, Names: names, Log: log})
	if err != nil {
		return err
	}
	if md == "" {
		_, err = fmt.Print(rep.Markdown)
		return err
	}
	return os.WriteFile(md, []byte(rep.Markdown), 0o644)
}

// readNames reads one name a line, skipping blank lines and # comments.
func readNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			names = append(names, line)
		}
	}
	return names, sc.Err()
}
