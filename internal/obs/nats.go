package obs

import (
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// natsConn is what NATSCollector needs of a connection.
type natsConn interface {
	Stats() nats.Statistics
	Status() nats.Status
}

var _ natsConn = (*nats.Conn)(nil)

// natsStatuses are the states of nats.Status, in its order, with the label value each
// has in tickstash_nats_status.
var natsStatuses = []struct {
	s    nats.Status
	name string
}{
	{nats.DISCONNECTED, "disconnected"},
	{nats.CONNECTED, "connected"},
	{nats.CLOSED, "closed"},
	{nats.RECONNECTING, "reconnecting"},
	{nats.CONNECTING, "connecting"},
	{nats.DRAINING_SUBS, "draining_subs"},
	{nats.DRAINING_PUBS, "draining_pubs"},
}

var (
	descNATSConnected = prometheus.NewDesc("tickstash_nats_connected",
		"1 if the NATS connection is connected, 0 in any other state.", nil, nil)
	descNATSStatus = prometheus.NewDesc("tickstash_nats_status",
		"State of the NATS connection: 1 for the current state, 0 for the others.", []string{"status"}, nil)
	descNATSInMsgs = prometheus.NewDesc("tickstash_nats_in_messages_total",
		"Messages received on the NATS connection.", nil, nil)
	descNATSOutMsgs = prometheus.NewDesc("tickstash_nats_out_messages_total",
		"Messages sent on the NATS connection.", nil, nil)
	descNATSInBytes = prometheus.NewDesc("tickstash_nats_in_bytes_total",
		"Payload bytes received on the NATS connection.", nil, nil)
	descNATSOutBytes = prometheus.NewDesc("tickstash_nats_out_bytes_total",
		"Payload bytes sent on the NATS connection.", nil, nil)
	descNATSReconnects = prometheus.NewDesc("tickstash_nats_reconnects_total",
		"Times the NATS connection was re-established after it was lost.", nil, nil)
)

// NATSCollector exports a NATS connection's state and traffic counters, read at scrape
// time from nats.Conn.Status and nats.Conn.Stats. It does no I/O.
type NATSCollector struct {
	nc natsConn
}

// NewNATSCollector returns a collector for nc.
func NewNATSCollector(nc *nats.Conn) *NATSCollector { return &NATSCollector{nc: nc} }

// RegisterNATS registers a NATSCollector for nc on reg. It returns reg's error when the
// tickstash_nats_* metrics are already registered.
func RegisterNATS(reg prometheus.Registerer, nc *nats.Conn) error {
	return reg.Register(NewNATSCollector(nc))
}

// Describe implements prometheus.Collector.
func (c *NATSCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNATSConnected, descNATSStatus, descNATSInMsgs,
		descNATSOutMsgs, descNATSInBytes, descNATSOutBytes, descNATSReconnects} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *NATSCollector) Collect(ch chan<- prometheus.Metric) {
	status := c.nc.Status()
	connected := 0.0
	if status == nats.CONNECTED {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(descNATSConnected, prometheus.GaugeValue, connected)
	for _, st := range natsStatuses {
		v := 0.0
		if st.s == status {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descNATSStatus, prometheus.GaugeValue, v, st.name)
	}
	s := c.nc.Stats()
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{
		{descNATSInMsgs, s.InMsgs}, {descNATSOutMsgs, s.OutMsgs},
		{descNATSInBytes, s.InBytes}, {descNATSOutBytes, s.OutBytes},
		{descNATSReconnects, s.Reconnects},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
}
