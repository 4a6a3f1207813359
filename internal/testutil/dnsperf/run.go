package dnsperf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Run is one dnsperf invocation. Every run is bounded by Duration; Exec
// adds a deadline past it in case dnsperf itself hangs.
type Run struct {
	Bin         string        // path to dnsperf
	Prefix      []string      // command put before dnsperf, e.g. taskset -c 0
	Server      string        // host:port, loopback
	File        string        // query file, "name TYPE" per line
	Duration    time.Duration // -l: stop sending after this long (required)
	Once        bool          // -n 1: stop at the end of the file
	MaxQPS      int           // -Q: at most this many queries per second; 0 = as fast as it can
	Clients     int           // -c: client sockets
	Outstanding int           // -q: queries in flight at most
	Timeout     time.Duration // -t: a query unanswered this long is lost
	Verbose     bool          // -v: report each query, for latency percentiles
}

// Args is the command line of r, prefix included.
func (r Run) Args() ([]string, error) {
	host, port, err := net.SplitHostPort(r.Server)
	if err != nil {
		return nil, fmt.Errorf("dnsperf: server %q: %w", r.Server, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("dnsperf: server %q is not a loopback address", r.Server)
	}
	if r.Duration <= 0 || r.File == "" || r.Bin == "" {
		return nil, errors.New("dnsperf: Bin, File and Duration are required")
	}
	secs := strconv.FormatFloat(r.Duration.Seconds(), 'f', -1, 64)
	args := append(append([]string(nil), r.Prefix...), r.Bin,
		"-s", host, "-p", port, "-d", r.File, "-l", secs, "-T", "1")
	if r.Once {
		args = append(args, "-n", "1")
	}
	if r.MaxQPS > 0 {
		args = append(args, "-Q", strconv.Itoa(r.MaxQPS))
	}
	if r.Clients > 0 {
		args = append(args, "-c", strconv.Itoa(r.Clients))
	}
	if r.Outstanding > 0 {
		args = append(args, "-q", strconv.Itoa(r.Outstanding))
	}
	if r.Timeout > 0 {
		args = append(args, "-t", strconv.FormatFloat(r.Timeout.Seconds(), 'f', -1, 64))
	}
	if r.Verbose {
		args = append(args, "-v")
	}
	return args, nil
}

// Exec runs dnsperf in its own process group and parses its report. On
// error the output is returned too, for the log.
func Exec(ctx context.Context, r Run) (Stats, string, error) {
	args, err := r.Args()
	if err != nil {
		return Stats{}, "", err
	}
	limit := r.Duration + max(r.Timeout, 5*time.Second) + 30*time.Second
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return Stats{}, out.String() + errOut.String(), fmt.Errorf("dnsperf: run: %w", err)
	}
	st, err := Parse(out.String())
	if err != nil {
		return Stats{}, out.String() + errOut.String(), err
	}
	return st, "", nil
}
