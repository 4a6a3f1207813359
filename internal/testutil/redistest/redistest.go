// Package redistest runs real redis-server processes on loopback ports for
// tests. Every server is stopped when its test ends, including one left
// paused with SIGSTOP.
package redistest

import (
	"bufio"
	"crypto/tls"
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
	"github.com/redis/go-redis/v9/maintnotifications"

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

	sec Security

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
	return StartSecure(t, Security{}, args...)
}

// StartSecure is Start for a server that asks for the password or TLS
// that sec describes. Its Addr is then the TLS port, and no plain port is
// open.
func StartSecure(t testing.TB, sec Security, args ...string) *Server {
	t.Helper()
	bin := Bin(t)
	s := &Server{t: t, bin: bin, dir: t.TempDir(), args: args, sec: sec}
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
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", "",
	}, s.sec.args(s.Port)...)
	argv = append(argv, s.args...)
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
	if err := waitPing(s.Addr, s.sec, cmd.Process.Pid, done); err != nil {
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
func waitPing(addr string, sec Security, pid int, exited <-chan struct{}) error {
	deadline := time.Now().Add(startWait)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("exited while starting")
		default:
		}
		got, err := serverPID(addr, sec, 200*time.Millisecond)
		if err == nil {
			if got != pid {
				return fmt.Errorf("port taken by process %d", got)
			}
			return nil
		}
		if errors.Is(err, errRefused) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no PONG within %v", startWait)
}

// errRefused is a server that answered, and refused the credentials.
var errRefused = errors.New("credentials refused")

// serverPID asks the server at addr for its process id (INFO server),
// logging in first as sec says.
func serverPID(addr string, sec Security, timeout time.Duration) (int, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if sec.TLS != nil {
		cfg := sec.TLS.ClientTLS()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			return 0, err
		}
		c = tc
	}
	r := bufio.NewReader(c)
	if user, pass := sec.login(); pass != "" {
		auth := command("AUTH", user, pass)
		if user == "" {
			auth = command("AUTH", pass)
		}
		if _, err := c.Write(auth); err != nil {
			return 0, err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if line != "+OK\r\n" {
			return 0, fmt.Errorf("%w: AUTH answered %q", errRefused, strings.TrimSpace(line))
		}
	}
	if _, err := c.Write(command("INFO", "server")); err != nil {
		return 0, err
	}
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

// command is a command in RESP, as an array of bulk strings.
func command(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

// Client returns a client of this server, logged in and over TLS as its
// Security asks, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(s.Options(2 * time.Second))
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Options are the options of a client of this server with timeout on
// every call, logged in and over TLS as its Security asks.
func (s *Server) Options(timeout time.Duration) *redis.Options {
	user, pass := s.sec.login()
	opt := &redis.Options{
		Addr:                     s.Addr,
		Username:                 user,
		Password:                 pass,
		DialTimeout:              timeout,
		ReadTimeout:              timeout,
		WriteTimeout:             timeout,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if s.sec.TLS != nil {
		opt.TLSConfig = s.sec.TLS.ClientTLS()
	}
	return opt
}

// Security is what a server asks of its clients. The zero value asks
// nothing.
type Security struct {
	// Password is the default user's password (requirepass).
	Password string
	// User and UserPassword, when set, add an ACL user allowed every key,
	// channel and command, and turn the default user off.
	User, UserPassword string
	// TLS, when set, makes the server take only TLS connections, with a
	// certificate this CA signed; clients need no certificate.
	TLS *CA
}

// login is the user and password a client gives: the ACL user's, or the
// default user's.
func (sec Security) login() (user, pass string) {
	if sec.User != "" {
		return sec.User, sec.UserPassword
	}
	return "", sec.Password
}

// args are the redis-server arguments that listen on port as sec asks.
func (sec Security) args(port int) []string {
	var a []string
	if sec.TLS != nil {
		a = append(a,
			"--port", "0",
			"--tls-port", strconv.Itoa(port),
			"--tls-cert-file", sec.TLS.ServerCert,
			"--tls-key-file", sec.TLS.ServerKey,
			"--tls-ca-cert-file", sec.TLS.CertFile,
			"--tls-auth-clients", "no",
			"--tls-replication", "yes",
			"--tls-cluster", "yes",
		)
	} else {
		a = append(a, "--port", strconv.Itoa(port))
	}
	if sec.Password != "" {
		a = append(a, "--requirepass", sec.Password, "--masterauth", sec.Password)
	}
	if sec.User != "" {
		a = append(a,
			"--user", sec.User, "on", ">"+sec.UserPassword, "~*", "&*", "+@all",
			"--user", "default", "off",
			"--masteruser", sec.User, "--masterauth", sec.UserPassword,
		)
	}
	return a
}
