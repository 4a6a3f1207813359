// Package redistest runs real redis-server processes on loopback ports for
// tests. Every server is stopped when its test ends, including one left
// paused with SIGSTOP.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/testutil/freeport"
)

// startWait bounds how long Start and Restart wait for PING to answer.
const startWait = 10 * time.Second

// startAttempts bounds how often Start picks a new port when the one it
// picked was taken before redis-server could bind it.
const startAttempts = 3

// Server is one redis-server process listening on 127.0.0.1.
type Server struct {
	// Addr is host:port of the server, e.g. "127.0.0.1:41234".
	Addr string
	// Port is the port part of Addr.
	Port int

	t    testing.TB
	bin  string
	dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited and been waited for
	paused bool
	log    string
}

// Start runs redis-server on a free loopback port with persistence off and
// its working directory in t.TempDir(), plus args (e.g. "--maxmemory",
// "1mb"), waits until it answers PING and stops it when the test ends.
// Without redis-server on PATH the test is skipped, or fails when the
// environment variable CI is set.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := Bin(t)
	s := &Server{t: t, bin: bin, dir: t.TempDir(), args: args}
	t.Cleanup(s.Kill)
	var err error
	for range startAttempts {
		s.Port, err = FreePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", err)
	return nil
}

// StartN starts n servers with the same args.
func StartN(t testing.TB, n int, args ...string) []*Server {
	t.Helper()
	srv := make([]*Server, n)
	for i := range srv {
		srv[i] = Start(t, args...)
	}
	return srv
}

// Addrs returns the addresses of servers.
func Addrs(servers []*Server) []string {
	a := make([]string, len(servers))
	for i, s := range servers {
		a[i] = s.Addr
	}
	return a
}

// Bin returns the path of redis-server. Without it on PATH the test is
// skipped, or fails when the environment variable CI is set.
func Bin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		const msg = "redis-server not found: apt-get install redis-server"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) { return freeport.TCP() }

// start runs the process on s.Port and waits for PING. On failure the
// process is gone and the error carries the tail of its log.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	s.log = filepath.Join(s.dir, "redis-"+strconv.Itoa(s.Port)+".log")
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	argv := append([]string{
		"--port", strconv.Itoa(s.Port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", "",
	}, s.args...)
	cmd := exec.Command(s.bin, argv...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := waitPing(s.Addr, cmd.Process.Pid, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server on %s: %w\n%s", s.Addr, err, tail(s.log))
	}
	s.cmd = cmd
	s.done = done
	s.paused = false
	return nil
}

// waitPing polls addr until the server there answers and is process pid
// (not another test's server that took the port first), the process
// exits, or startWait passes.
func waitPing(addr string, pid int, exited <-chan struct{}) error {
	deadline := time.Now().Add(startWait)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("exited while starting")
		default:
		}
		if got, err := serverPID(addr, 200*time.Millisecond); err == nil {
			if got != pid {
				return fmt.Errorf("port taken by process %d", got)
			}
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no PONG within %v", startWait)
}

// serverPID asks the server at addr for its process id (INFO server).
func serverPID(addr string, timeout time.Duration) (int, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil {
		return 0, fmt.Errorf("INFO answered %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO without process_id")
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Kill stops the server with SIGKILL (resuming it first if paused) and
// waits for it to exit. It may be called any number of times.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if s.paused {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		s.paused = false
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Pause freezes the server with SIGSTOP: its socket still accepts
// connections but nothing is answered, like a blackholed host.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.paused {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Errorf("redistest: pause %s: %v", s.Addr, err)
		return
	}
	s.paused = true
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || !s.paused {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Errorf("redistest: resume %s: %v", s.Addr, err)
		return
	}
	s.paused = false
}

// Restart starts the server again on the same port (after Kill, or kills
// it first) and waits until it answers PING. Data is not kept.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// Client returns a plain client of this server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:            s.Addr,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     2 * time.Second,
		WriteTimeout:    2 * time.Second,
		DisableIdentity: true,
	})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}
