//go:build !unix

package transport

import "syscall"

// reusePortWorks says whether reusePort can share a UDP port: not here,
// so every address gets one UDP socket.
const reusePortWorks = false

func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
