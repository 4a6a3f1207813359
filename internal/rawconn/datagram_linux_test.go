package rawconn_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/rawconn"
)

// A socket connected with ConnectDatagram and read through a Datagram
// exchanges datagrams with its peer alone, reads an empty datagram as 0
// bytes, stops at its read deadline and fails after Close.
func TestDatagram(t *testing.T) {
	for _, tc := range []struct {
		listen string
		family int
	}{{"127.0.0.1:0", syscall.AF_INET}, {"[::1]:0", syscall.AF_INET6}} {
		t.Run(tc.listen, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", tc.listen)
			if err != nil {
				t.Fatal(err) // CI has IPv6 loopback
			}
			defer pc.Close()
			peer := pc.LocalAddr().(*net.UDPAddr).AddrPort()
			fd, err := syscall.Socket(tc.family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := rawconn.ConnectDatagram(fd, peer); err != nil {
				syscall.Close(fd)
				t.Fatal(err)
			}
			d, err := rawconn.NewDatagram(os.NewFile(uintptr(fd), "test"))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := d.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := pc.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("peer got %q, %v", buf[:n], err)
			}
			// A stranger's datagram never reaches a connected socket.
			stranger, err := net.ListenPacket("udp", tc.listen)
			if err != nil {
				t.Fatal(err)
			}
			defer stranger.Close()
			for _, m := range [][]byte{[]byte("forged")} {
				if _, err := stranger.WriteTo(m, from); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range [][]byte{{}, []byte("pong")} {
				if _, err := pc.WriteTo(m, from); err != nil {
					t.Fatal(err)
				}
			}
			d.SetDeadline(time.Now().Add(5 * time.Second))
			for _, want := range []string{"", "pong"} {
				n, err := d.Read(buf)
				if err != nil || string(buf[:n]) != want {
					t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
				}
			}
			d.SetDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := d.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read past the deadline: %v", err)
			}
			d.Close()
			if n, err := d.Read(buf); err == nil {
				t.Fatalf("read %d bytes after Close", n)
			}
		})
	}
}

// ConnectDatagram refuses what it cannot connect to, saying why.
func TestConnectDatagramRefused(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := rawconn.ConnectDatagram(fd, netip.MustParseAddrPort("[fe80::1%lo]:53")); err == nil {
		t.Error("zoned address connected")
	}
	// An IPv6 address on an IPv4 socket: the kernel's error comes back.
	if err := rawconn.ConnectDatagram(fd, netip.MustParseAddrPort("[::1]:53")); !errors.Is(err, syscall.EAFNOSUPPORT) && !errors.Is(err, syscall.EINVAL) {
		t.Errorf("IPv6 address on an IPv4 socket: %v", err)
	}
}
