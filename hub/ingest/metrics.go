package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus side of the counters; Stats is the JSON side. Both are updated
// together in count* methods so that they never disagree.
type metrics struct {
	incidents     *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	unanswered    *prometheus.CounterVec
	queueWaits    prometheus.Counter
	batchSize     prometheus.Histogram
	commitSeconds prometheus.Histogram
	deviceMsgs    *prometheus.CounterVec
	ignored       *prometheus.CounterVec
	acks          *prometheus.CounterVec
	ackErrors     prometheus.Counter
	smsCommands   *prometheus.CounterVec
	requests      *prometheus.CounterVec
}

func newMetrics(s *Service) *metrics {
	m := &metrics{
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_incidents_total",
			Help: "Incidents answered with a ticket, by result: accepted (new ticket) or replay (existing ticket).",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_incidents_rejected_total",
			Help: "Incidents refused, by reason; each was answered with a rejected ack where the topic named a device.",
		}, []string{"reason"}),
		unanswered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_incidents_unanswered_total",
			Help: "Incidents neither acked nor rejected (the device re-sends them), by reason: store_error or stopping.",
		}, []string{"reason"}),
		queueWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kentongan_hub_ingest_queue_full_total",
			Help: "Times an incident waited for room in the full ingest queue, holding back its publisher.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kentongan_hub_ingest_batch_size",
			Help:    "Incidents per store commit (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kentongan_hub_ingest_commit_seconds",
			Help:    "Time to commit one batch of incidents to the store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		deviceMsgs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_device_messages_total",
			Help: "Presence and heartbeat messages applied to device state, by kind.",
		}, []string{"kind"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_device_messages_ignored_total",
			Help: "Presence and heartbeat messages ignored, by kind and reason.",
		}, []string{"kind", "reason"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_acks_published_total",
			Help: "Acks published to devices, by status.",
		}, []string{"status"}),
		ackErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kentongan_hub_ack_publish_errors_total",
			Help: "Acks the bus would not take; the device re-sends and gets the ack again.",
		}),
		smsCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_sms_commands_total",
			Help: "SMS replies handed to kiosks as sms_send commands, by result: sent or error (repeated on reconnect).",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_requests_total",
			Help: "Requests about existing tickets (status, cancel) answered, by request and outcome.",
		}, []string{"request", "outcome"}),
	}
	for _, r := range []string{"sent", "error"} {
		m.smsCommands.WithLabelValues(r)
	}
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{"accepted", "replay"} {
		m.incidents.WithLabelValues(r)
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer, s *Service) error {
	cs := []prometheus.Collector{
		m.incidents, m.rejected, m.unanswered, m.queueWaits, m.batchSize, m.commitSeconds,
		m.deviceMsgs, m.ignored, m.acks, m.ackErrors, m.smsCommands, m.requests,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kentongan_hub_ingest_queue_depth",
			Help: "Incidents waiting in the ingest queue for the store.",
		}, func() float64 { return float64(len(s.queue)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kentongan_hub_ingest_queue_capacity",
			Help: "Size of the ingest queue; when depth reaches it, publishers are held back.",
		}, func() float64 { return float64(cap(s.queue)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kentongan_hub_devices_online",
			Help: "Registered devices whose last presence was online.",
		}, func() float64 { return float64(s.onlineCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kentongan_hub_devices_registered",
			Help: "Devices in the registry.",
		}, func() float64 { return float64(s.registeredCount()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
