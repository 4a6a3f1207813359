// Package dnstaptest reads dnstap back for tests: a file with the dnstap
// library and with BIND's dnstap-read, and a Frame Streams collector on a
// Unix socket (the library's reader side) that a test can stop and start.
package dnstaptest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"go.yaml.in/yaml/v4"
	"google.golang.org/protobuf/proto"
)

// Frame is one dnstap message read back, its DNS message unpacked.
type Frame struct {
	*dnstap.Dnstap
	Msg *dns.Msg // the query or the response message, whichever the frame holds; nil when it does not unpack
}

// Type is the frame's message type, e.g. CLIENT_QUERY.
func (f Frame) Type() string { return f.Message.GetType().String() }

// ReadFile reads every dnstap message of the Frame Streams file path with
// the library.
func ReadFile(t testing.TB, path string) []Frame {
	t.Helper()
	in, err := dnstap.NewFrameStreamInputFromFilename(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	ch := make(chan []byte, 1)
	go func() { in.ReadInto(ch); close(ch) }()
	var out []Frame
	for b := range ch {
		f, err := decode(b)
		if err != nil {
			t.Error(err)
		}
		out = append(out, f)
	}
	return out
}

// decode is the dnstap message b; an error when b is not one.
func decode(b []byte) (Frame, error) {
	var d dnstap.Dnstap
	if err := proto.Unmarshal(b, &d); err != nil {
		return Frame{}, fmt.Errorf("a frame is not a dnstap message: %w", err)
	}
	f := Frame{Dnstap: &d}
	wire := d.Message.GetQueryMessage()
	if len(d.Message.GetResponseMessage()) > 0 {
		wire = d.Message.GetResponseMessage()
	}
	if len(wire) > 0 {
		m := new(dns.Msg)
		if m.Unpack(wire) == nil { // a client's garbage is logged as sent
			f.Msg = m
		}
	}
	return f, nil
}

// ToolDoc is one message as `dnstap-read -y` prints it (the fields the
// tests read).
type ToolDoc struct {
	Type     string `yaml:"type"`
	Identity string `yaml:"identity"`
	Version  string `yaml:"version"`
	Message  struct {
		Type            string    `yaml:"type"`
		SocketFamily    string    `yaml:"socket_family"`
		SocketProtocol  string    `yaml:"socket_protocol"`
		QueryAddress    string    `yaml:"query_address"`
		QueryPort       int       `yaml:"query_port"`
		ResponseAddress string    `yaml:"response_address"`
		ResponsePort    int       `yaml:"response_port"`
		Query           *ToolData `yaml:"query_message_data"`
		Response        *ToolData `yaml:"response_message_data"`
	} `yaml:"message"`
}

// ToolData is a DNS message as dnstap-read prints it.
type ToolData struct {
	Opcode   string   `yaml:"opcode"`
	Status   string   `yaml:"status"`
	ID       uint16   `yaml:"id"`
	Flags    string   `yaml:"flags"`
	Question []string `yaml:"QUESTION_SECTION"`
	Answer   []string `yaml:"ANSWER_SECTION"`
}

// ReadTool reads the file path with `dnstap-read -y` (bind9-dnsutils).
func ReadTool(t testing.TB, path string) []ToolDoc {
	t.Helper()
	bin, err := exec.LookPath("dnstap-read")
	if err != nil {
		t.Fatalf("dnstap-read (Debian's bind9-dnsutils) is needed: %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-y", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dnstap-read -y %s: %v: %s", path, err, stderr.String())
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var docs []ToolDoc
	for {
		var d ToolDoc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("dnstap-read's YAML: %v\n%s", err, out)
		}
		docs = append(docs, d)
	}
	return docs
}

// Collector takes dnstap from daemons on a Unix socket, as `dnstap -u`
// does, with the library's Frame Streams reader (a bidirectional
// handshake with each connection).
type Collector struct {
	t      testing.TB
	path   string
	frames chan Frame

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// NewCollector is a collector for path, not yet listening: see Start.
// Stop is called when the test ends.
func NewCollector(t testing.TB, path string) *Collector {
	c := &Collector{t: t, path: path, frames: make(chan Frame, 1<<16), conns: map[net.Conn]bool{}}
	t.Cleanup(c.Stop)
	return c
}

// Start listens on the socket and reads every connection to it.
func (c *Collector) Start() {
	c.t.Helper()
	ln, err := net.Listen("unix", c.path)
	if err != nil {
		c.t.Fatalf("collector: %v", err)
	}
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns[conn] = true
			c.mu.Unlock()
			c.wg.Add(1)
			go c.read(conn)
		}
	}()
}

func (c *Collector) read(conn net.Conn) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		delete(c.conns, conn)
		c.mu.Unlock()
		conn.Close()
	}()
	in, err := dnstap.NewFrameStreamInputTimeout(conn, true, 5*time.Second)
	if err != nil {
		return // the daemon went away during the handshake
	}
	ch := make(chan []byte)
	go func() { in.ReadInto(ch); close(ch) }()
	for b := range ch {
		f, err := decode(b)
		if err != nil {
			c.t.Error(err)
			continue
		}
		c.frames <- f
	}
}

// Stop closes the socket and every connection, as a collector that exits
// does, and waits for its readers. It may be started again.
func (c *Collector) Stop() {
	c.mu.Lock()
	if c.ln != nil {
		c.ln.Close() // removes the socket file
		c.ln = nil
	}
	for conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// Frames are the frames read, in the order each connection sent them.
func (c *Collector) Frames() <-chan Frame { return c.frames }

// Next returns the next frame, failing the test if none comes within
// wait.
func (c *Collector) Next(wait time.Duration) Frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-time.After(wait):
		c.t.Fatalf("collector: no frame within %v", wait)
		return Frame{}
	}
}
