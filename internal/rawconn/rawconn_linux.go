package rawconn

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// rw makes one socket's reads and writes as raw calls through its
// RawConn: read(2), and sendto(2) with MSG_NOSIGNAL (a peer gone is
// EPIPE, never SIGPIPE). A call with nothing to read or no room to write
// waits in the poller, within the socket's deadlines.
type rw struct {
	rc  syscall.RawConn
	tcp bool                  // a stream: a write may go in parts, a read of 0 is the end
	rfn func(fd uintptr) bool // the read callback, made once
	wfn func(fd uintptr) bool // the write callback, made once

	rmu  sync.Mutex // one read at a time, as net.Conn allows several
	rbuf []byte     // the read in progress
	rn   int
	rerr syscall.Errno

	wmu  sync.Mutex
	wbuf []byte // the write in progress
	wn   int    // how much of wbuf is written
	werr syscall.Errno
}

func (c *rw) init(rc syscall.RawConn, tcp bool) {
	c.rc, c.tcp = rc, tcp
	c.rfn = c.readFD
	c.wfn = c.writeFD
}

// read reads into p (not empty): n bytes, or the call's errno, or err,
// the poller's (a deadline, a close).
func (c *rw) read(p []byte) (n int, e syscall.Errno, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err = c.rc.Read(c.rfn)
	c.rbuf = nil
	return c.rn, c.rerr, err
}

func (c *rw) readFD(fd uintptr) bool {
	for {
		n, e := sysRead(fd, c.rbuf)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			c.rn = n
		default:
			c.rerr = e
		}
		return true
	}
}

// write writes p (not empty): all of it but on an error, the call's errno
// or err, the poller's.
func (c *rw) write(p []byte) (n int, e syscall.Errno, err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = p, 0, 0
	err = c.rc.Write(c.wfn)
	c.wbuf = nil
	return c.wn, c.werr, err
}

func (c *rw) writeFD(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		rest := c.wbuf[c.wn:]
		n, e := sysWrite(fd, rest)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			c.wn += n
			if !c.tcp {
				return true // a datagram goes whole or not at all
			}
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// conn is a TCP or connected UDP socket whose reads and writes are raw.
type conn struct {
	net.Conn
	rw
}

func wrap(c net.Conn) net.Conn {
	var sc syscall.Conn
	tcp := false
	switch t := c.(type) {
	case *net.TCPConn:
		sc, tcp = t, true
	case *net.UDPConn:
		sc = t
	default:
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	w := &conn{Conn: c}
	w.init(rc, tcp)
	return w
}

// Read reads as net.Conn does: at least one byte, io.EOF when a TCP peer
// has closed, the wrapped conn's error on a deadline or Close.
func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, e, err := c.read(p)
	switch {
	case err != nil:
		return 0, err
	case e != 0:
		return 0, c.opError("read", e)
	case n == 0 && c.tcp:
		return 0, io.EOF
	}
	return n, nil
}

// opError is the error net.Conn gives for a failed call.
func (c *conn) opError(op string, e syscall.Errno) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, e)}
}

// Write writes all of p or returns an error, as net.Conn does.
func (c *conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, e, err := c.write(p)
	if err == nil && e != 0 {
		err = c.opError("write", e)
	}
	return n, err
}

// Datagram is a connected datagram socket held as an *os.File on the
// runtime's poller (see NewDatagram), read and written with raw calls.
// Deadlines and Close are the file's.
type Datagram struct {
	*os.File
	rw
}

// NewDatagram reads and writes f, a non-blocking connected datagram
// socket (os.NewFile of a descriptor made with SOCK_NONBLOCK), with raw
// calls. Closing the Datagram closes f.
func NewDatagram(f *os.File) (*Datagram, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	d := &Datagram{File: f}
	d.init(rc, false)
	return d, nil
}

// Read reads one datagram into p, cut to len(p); an empty one reads as
// 0 bytes and no error. A deadline or Close gives the file's error.
func (d *Datagram) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, e, err := d.read(p)
	switch {
	case err != nil:
		return 0, err
	case e != 0:
		return 0, &os.PathError{Op: "read", Path: d.Name(), Err: e}
	}
	return n, nil
}

// Write sends p as one datagram.
func (d *Datagram) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, e, err := d.write(p)
	if err == nil && e != 0 {
		err = &os.PathError{Op: "write", Path: d.Name(), Err: e}
	}
	return n, err
}
