package transport

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	udpDropped   prometheus.Counter
	udpBatch     prometheus.Histogram
	udpOutBatch  prometheus.Histogram
	tcpConns     prometheus.Gauge
	tcpRejected  *prometheus.CounterVec
	tcpBadLength prometheus.Counter

	// tcpRejected's reasons, looked up once.
	tcpRejectedFull, tcpRejectedPerClient, tcpRejectedACL prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		udpDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "udp_dropped_total",
			Help: "UDP queries dropped unread because MaxUDPInFlight were being answered.",
		}),
		udpBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "udp_read_batch_datagrams",
			Help:    "Datagrams returned by one UDP read call (recvmmsg on Linux): how much batching the load allows.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		udpOutBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "udp_write_batch_datagrams",
			Help:    "Replies sent by one UDP write call (sendmmsg on Linux).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		tcpConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "tcp_connections",
			Help: "Open TCP client connections.",
		}),
		tcpRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "tcp_rejected_total",
			Help: "TCP connections closed as soon as they were accepted, before anything was read, by reason: " +
				"max_conns (every slot taken), per_client (the client's cap reached), acl (client outside the allow list).",
		}, []string{"reason"}),
		tcpBadLength: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shardns", Subsystem: "dns", Name: "tcp_bad_length_total",
			Help: "TCP connections closed for a length prefix too short for a DNS header.",
		}),
	}
	m.tcpRejectedFull = m.tcpRejected.WithLabelValues("max_conns")
	m.tcpRejectedPerClient = m.tcpRejected.WithLabelValues("per_client")
	m.tcpRejectedACL = m.tcpRejected.WithLabelValues("acl")
	if reg != nil {
		reg.MustRegister(m.udpDropped, m.udpBatch, m.udpOutBatch, m.tcpConns, m.tcpRejected, m.tcpBadLength)
	}
	return m
}
