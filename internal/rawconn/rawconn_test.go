package rawconn_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/rawconn"
)

// pair is a TCP connection over loopback: the dialled end wrapped by
// Dial, the accepted end wrapped by Listener.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = rawconn.Listener(ln)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err = rawconn.WrapDial(new(net.Dialer).DialContext)(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func wrapped(c net.Conn) bool {
	_, plain := c.(*net.TCPConn)
	return !plain
}

// A stream larger than the socket buffers goes through whole and in order
// both ways at once: writes that fill the buffer wait in the poller and go
// on where they stopped.
func TestStreamBothWays(t *testing.T) {
	client, server := pair(t)
	if runtime.GOOS == "linux" && (!wrapped(client) || !wrapped(server)) {
		t.Fatalf("not wrapped: %T %T", client, server)
	}
	const size = 8 << 20
	up, down := make([]byte, size), make([]byte, size)
	rand.Read(up)
	rand.Read(down)
	var wg sync.WaitGroup
	send := func(c net.Conn, b []byte) {
		defer wg.Done()
		if n, err := c.Write(b); n != len(b) || err != nil {
			t.Errorf("write: %d of %d, %v", n, len(b), err)
		}
	}
	recv := func(c net.Conn, want []byte) {
		defer wg.Done()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Errorf("read: %v", err)
			return
		}
		if !bytes.Equal(got, want) {
			t.Error("stream corrupted")
		}
	}
	wg.Add(4)
	go send(client, up)
	go send(server, down)
	go recv(server, up)
	go recv(client, down)
	wg.Wait()
}

func TestEOFAndClosed(t *testing.T) {
	client, server := pair(t)
	if _, err := server.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	server.Close()
	b, err := io.ReadAll(client)
	if err != nil || string(b) != "bye" {
		t.Fatalf("ReadAll = %q, %v; want \"bye\", nil (io.EOF at the end)", b, err)
	}
	client.Close()
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := client.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v, want net.ErrClosed", err)
	}
}

// Writing to a peer that has gone fails with an error, not a signal.
func TestWriteToResetPeer(t *testing.T) {
	client, server := pair(t)
	server.Close()
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		_, err = client.Write(make([]byte, 1024))
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "write" {
		t.Errorf("err = %v, want a write *net.OpError", err)
	}
}

func TestDeadline(t *testing.T) {
	client, _ := pair(t)
	client.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := client.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
}

// Connected UDP: each Read is one datagram, each Write one datagram.
func TestUDP(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	c := rawconn.Wrap(uc)
	defer c.Close()
	if runtime.GOOS == "linux" && c == net.Conn(uc) {
		t.Fatal("UDP conn not wrapped")
	}
	for _, msg := range []string{"one", "two"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	for _, want := range []string{"one", "two"} {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := pc.ReadFromUDP(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("server got %q, %v; want %q", buf[:n], err, want)
		}
		if _, err := pc.WriteToUDP([]byte(want+"!"), from); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"one!", "two!"} {
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("client got %q, %v; want %q", buf[:n], err, want)
		}
	}
}

// A conn that is neither TCP nor UDP is returned as it is.
func TestWrapOther(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if rawconn.Wrap(a) != a {
		t.Error("net.Pipe conn was wrapped")
	}
}
