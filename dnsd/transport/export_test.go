package transport

import "time"

// SetUDPPeekWait sets how long s's readers wait for a worker's first wait
// call on a read's datagrams before reading again (udpPeekWait). Call it
// before Listen.
func SetUDPPeekWait(s *Server, d time.Duration) { s.udpPeekWait = d }

// UDPGateMin is udpGateMin.
const UDPGateMin = udpGateMin
