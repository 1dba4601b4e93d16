package ingest

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
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

	incidentToTicket prometheus.Histogram
	breaches         *prometheus.CounterVec
	alerts           *prometheus.CounterVec
	confirmations    *prometheus.CounterVec
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
		incidentToTicket: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kentongan_hub_incident_to_ticket_seconds",
			Help: "Time from an incident on the kiosk (its clock) to its ticket committed at the hub (the hub's clock); includes time the kiosk was offline.",
			// From a fraction of a second on a good link to hours for a kiosk that was cut off.
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600},
		}),
		breaches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_deadline_breaches_total",
			Help: "Tickets found past a deadline, by kind: ack (not acknowledged in time) or resolve (not resolved in time). Each breach counts once.",
		}, []string{"kind"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_alerts_raised_total",
			Help: "Alerts raised, by kind: deadline_breach, kiosk_offline, false_alarm_rate, routing_config.",
		}, []string{"kind"}),
		confirmations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_confirmations_total",
			Help: "RT/RW heads' confirmation of panic-button tickets, by result: asked (tickets whose heads were texted), yes, no.",
		}, []string{"result"}),
	}
	for _, k := range []string{"ack", "resolve"} {
		m.breaches.WithLabelValues(k)
	}
	for _, k := range []hub.AlertKind{hub.AlertDeadlineBreach, hub.AlertKioskOffline, hub.AlertFalseAlarmRate, hub.AlertRoutingConfig} {
		m.alerts.WithLabelValues(string(k))
	}
	for _, r := range []string{"asked", "yes", "no"} {
		m.confirmations.WithLabelValues(r)
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
		m.incidentToTicket, m.breaches, m.alerts, m.confirmations, &ticketCollector{s: s}, &kioskCollector{s: s},
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

var ticketsDesc = prometheus.NewDesc("kentongan_hub_tickets",
	"Tickets in the store, by status and priority.", []string{"status", "priority"}, nil)

// ticketCollector reads the ticket counts from the store at each scrape, so that they are right
// across restarts and whatever changed them.
type ticketCollector struct{ s *Service }

func (c *ticketCollector) Describe(ch chan<- *prometheus.Desc) { ch <- ticketsDesc }

func (c *ticketCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.s.store.TicketCounts(ctx)
	if err != nil {
		c.s.log.Error("ticket counts for metrics", "err", err)
		ch <- prometheus.NewInvalidMetric(ticketsDesc, err)
		return
	}
	seen := map[[2]string]bool{}
	for _, tc := range counts {
		seen[[2]string{string(tc.Status), string(tc.Priority)}] = true
		ch <- prometheus.MustNewConstMetric(ticketsDesc, prometheus.GaugeValue, float64(tc.Count), string(tc.Status), string(tc.Priority))
	}
	// Every open status and priority is reported, 0 too, so that dashboards and alert rules
	// see an empty queue rather than no data.
	for _, st := range hub.OpenStatuses {
		for _, p := range []hub.Priority{hub.PriorityEmergency, hub.PriorityNormal} {
			if !seen[[2]string{string(st), string(p)}] {
				ch <- prometheus.MustNewConstMetric(ticketsDesc, prometheus.GaugeValue, 0, string(st), string(p))
			}
		}
	}
}

var (
	kiosksDesc = prometheus.NewDesc("kentongan_hub_kiosks",
		"Registered kiosks by state: online (connected and heard within its supervision interval) or offline.", []string{"state"}, nil)
	flaggedDesc = prometheus.NewDesc("kentongan_hub_kiosks_false_alarm_flagged",
		"Kiosks whose false-alarm rate is above the configured limit.", nil, nil)
)

type kioskCollector struct{ s *Service }

func (c *kioskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- kiosksDesc
	ch <- flaggedDesc
}

func (c *kioskCollector) Collect(ch chan<- prometheus.Metric) {
	online, offline, flagged := 0, 0, 0
	c.s.devMu.RLock()
	for _, d := range c.s.devices {
		if d.state.Presence == hub.PresenceOnline && !d.state.Silent {
			online++
		} else {
			offline++
		}
		if d.state.FalseAlarmFlagged {
			flagged++
		}
	}
	c.s.devMu.RUnlock()
	ch <- prometheus.MustNewConstMetric(kiosksDesc, prometheus.GaugeValue, float64(online), "online")
	ch <- prometheus.MustNewConstMetric(kiosksDesc, prometheus.GaugeValue, float64(offline), "offline")
	ch <- prometheus.MustNewConstMetric(flaggedDesc, prometheus.GaugeValue, float64(flagged))
}
