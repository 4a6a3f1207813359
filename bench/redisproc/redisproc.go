// Package redisproc starts the redis-server processes of bench (cache
// shards, the work queue's Redis, the cache experiments' servers) through
// a proc.Group, so they are measured, logged and stopped like every other
// process bench starts.
package redisproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/shardns/shardns/bench/proc"
	"github.com/shardns/shardns/internal/testutil/freeport"
)

// Bounds of starting one redis-server.
const (
	startWait     = 10 * time.Second // until it answers
	startAttempts = 3                // ports tried, when another process takes the one picked
	probeTimeout  = 500 * time.Millisecond
)

// Config says how to run one redis-server.
type Config struct {
	Group  *proc.Group
	Name   string   // log file name in the group's folder
	Prefix []string // command put before redis-server, e.g. taskset -c 1
	Bin    string   // redis-server
	Dir    string   // its working folder, made if missing
	// Args come after the defaults (port, bind 127.0.0.1, no RDB, no AOF,
	// the folder, log to stdout), so they may override them, e.g.
	// "--appendonly", "yes".
	Args []string
}

// Server is a started redis-server.
type Server struct {
	Addr string // 127.0.0.1:port
	Proc *proc.Proc
}

// Start runs cfg's redis-server on a free 127.0.0.1 port and returns once
// it answers INFO as the process it started (not another program that
// took the port first; then it tries another port). On error nothing it
// started is left running.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	var err error
	for range startAttempts {
		var s *Server
		if s, err = tryStart(ctx, cfg); err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func tryStart(ctx context.Context, cfg Config) (*Server, error) {
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("redisproc: %w", err)
	}
	port, err := freeport.TCP()
	if err != nil {
		return nil, fmt.Errorf("redisproc: %w", err)
	}
	argv := append(append([]string(nil), cfg.Prefix...), cfg.Bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", cfg.Dir, "--logfile", "")
	argv = append(argv, cfg.Args...)
	p, err := cfg.Group.Start(cfg.Name, argv...)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitReady(ctx, addr, p); err != nil {
		p.Stop()
		return nil, fmt.Errorf("redisproc: %s on %s: %w: %s", cfg.Name, addr, err, p.LogTail(1000))
	}
	return &Server{Addr: addr, Proc: p}, nil
}

// waitReady polls addr until the server there answers and is process p,
// p exits, ctx ends or startWait passes.
func waitReady(ctx context.Context, addr string, p *proc.Proc) error {
	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	for {
		if done, err := p.Exited(); done {
			return fmt.Errorf("exited while starting (%v)", err)
		}
		pid, err := serverPID(ctx, addr)
		if err == nil {
			if pid != p.Pid() {
				return fmt.Errorf("port taken by process %d", pid)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer within %v: %w", startWait, err)
		case <-p.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// serverPID asks the Redis at addr for its process ID (INFO server).
func serverPID(ctx context.Context, addr string) (int, error) {
	d := net.Dialer{Timeout: probeTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := io.WriteString(c, "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil || n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("INFO answered %q", strings.TrimSpace(head))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	if v := InfoField(string(body), "process_id"); v != "" {
		return strconv.Atoi(v)
	}
	return 0, errors.New("INFO without process_id")
}

// InfoField returns the value of field in an INFO reply, "" if absent.
func InfoField(info, field string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// Major returns the major version of redis-server bin, from its
// "Redis server v=7.0.15 sha=..." line.
func Major(ctx context.Context, bin string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	b, err := exec.CommandContext(ctx, bin, "--version").Output()
	out := string(b)
	if err != nil {
		return 0, fmt.Errorf("redisproc: %s --version: %w", bin, err)
	}
	_, v, ok := strings.Cut(out, "v=")
	if !ok {
		return 0, fmt.Errorf("redisproc: %s --version: %q", bin, out)
	}
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0, fmt.Errorf("redisproc: %s --version: %q", bin, out)
	}
	return n, nil
}
