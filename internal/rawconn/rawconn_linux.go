package rawconn

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// conn is a TCP or connected UDP socket read with read(2) and written with
// sendto(2) and MSG_NOSIGNAL (a peer gone is EPIPE, never SIGPIPE), both
// raw.
type conn struct {
	net.Conn
	rc  syscall.RawConn
	tcp bool
	rfn func(fd uintptr) bool // the read callback, made once
	wfn func(fd uintptr) bool // the write callback, made once

	rmu  sync.Mutex // one Read at a time, as net.Conn allows several
	rbuf []byte     // the read in progress
	rn   int
	rerr syscall.Errno

	wmu  sync.Mutex
	wbuf []byte // the write in progress
	wn   int    // how much of wbuf is written
	werr syscall.Errno
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
	w := &conn{Conn: c, rc: rc, tcp: tcp}
	w.rfn = w.readFD
	w.wfn = w.writeFD
	return w
}

// Read reads as net.Conn does: at least one byte, io.EOF when a TCP peer
// has closed, the wrapped conn's error on a deadline or Close.
func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.rfn)
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case c.rerr != 0:
		return 0, c.opError("read", c.rerr)
	case c.rn == 0 && c.tcp:
		return 0, io.EOF
	}
	return c.rn, nil
}

// opError is the error net.Conn gives for a failed call.
func (c *conn) opError(op string, e syscall.Errno) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, e)}
}

func (c *conn) readFD(fd uintptr) bool {
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

// Write writes all of p or returns an error, as net.Conn does.
func (c *conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.wfn)
	c.wbuf = nil
	if err == nil && c.werr != 0 {
		err = c.opError("write", c.werr)
	}
	return c.wn, err
}

func (c *conn) writeFD(fd uintptr) bool {
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
