package transport

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	udpDropped   prometheus.Counter
	tcpConns     prometheus.Gauge
	tcpRejected  prometheus.Counter
	tcpBadLength prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		udpDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "udp_dropped_total",
			Help: "UDP queries dropped unread because MaxUDPInFlight were being answered.",
		}),
		tcpConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "tcp_connections",
			Help: "Open TCP client connections.",
		}),
		tcpRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "tcp_rejected_total",
			Help: "TCP connections closed at once because MaxTCPConns were open.",
		}),
		tcpBadLength: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "tcp_bad_length_total",
			Help: "TCP connections closed for a length prefix too short for a DNS header.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.udpDropped, m.tcpConns, m.tcpRejected, m.tcpBadLength)
	}
	return m
}
