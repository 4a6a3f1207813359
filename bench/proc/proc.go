// Package proc starts the processes of a load run, each in its own process
// group so that its children go with it, measures their CPU time from
// /proc, and stops them all, on success, error or interrupt alike.
package proc

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopWait is how long a process has to exit after SIGTERM before SIGKILL.
const stopWait = 5 * time.Second

// Group starts processes and remembers them until they are stopped.
type Group struct {
	dir string
	log *slog.Logger

	mu    sync.Mutex
	procs []*Proc
}

// NewGroup returns a Group that writes each process's output to
// <dir>/<name>.log.
func NewGroup(dir string, log *slog.Logger) *Group {
	return &Group{dir: dir, log: log}
}

// Proc is one started process and its process group.
type Proc struct {
	Name    string
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
	once sync.Once
}

// Start runs argv as a new process group, its output appended to its log
// file. The process is stopped by Stop or by the Group's StopAll.
func (g *Group) Start(name string, argv ...string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, errors.New("proc: empty command")
	}
	logPath := filepath.Join(g.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proc: start %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	g.log.Debug("started", "name", name, "pid", cmd.Process.Pid, "cmd", strings.Join(argv, " "))
	return p, nil
}

// Pid is the process's ID, which is also its process group's ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, waits up to five seconds, then
// sends SIGKILL. It is safe to call more than once.
func (p *Proc) Stop() {
	p.once.Do(func() {
		pgid := p.Pid()
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopWait):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
		// Children that outlived their parent go too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

// LogTail returns up to the last n bytes of the process's output.
func (p *Proc) LogTail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// StopAll stops every process the group started, the last started first.
func (g *Group) StopAll() {
	g.mu.Lock()
	procs := g.procs
	g.procs = nil
	g.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
}
