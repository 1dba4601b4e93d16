// Package ingest turns kiosk messages into tickets and device state, and answers kiosks.
//
// The path of an incident: the bus hands the message to a handler (in the publisher's goroutine
// for the embedded broker), which decodes and checks it and puts it on a bounded queue, waiting
// when the queue is full so that a burst holds back publishers instead of losing reports. One
// worker takes everything queued (up to BatchMax), commits it with a single Store.Ingest, and
// only then publishes the "received" acks. Bad input is answered at once with a "rejected" ack
// and never reaches the queue, so it cannot slow other devices down.
package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/deadline"
	"github.com/kentongan/kentongan/hub/route"
	"github.com/kentongan/kentongan/mqtt"
)

// rejectReasons are every reason an incident can be rejected for, so that counters start at 0.
var rejectReasons = []string{
	"too_large", "malformed", "unknown_version", "device_mismatch", "invalid",
	hub.ReasonUnknownDevice, hub.ReasonBadTopic, hub.ReasonConflict, hub.ReasonStore,
}

// Options configure a Service. New fills zero fields with the defaults documented on each.
type Options struct {
	Store   hub.Store // required
	Bus     hub.Bus   // required
	Devices []hub.Device
	Clock   hub.Clock    // default hub.SystemClock
	Logger  *slog.Logger // default slog.Default()
	// Registerer receives the Prometheus metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer

	QueueSize int // incidents waiting for the store; default 4096
	BatchMax  int // incidents per commit; default 256
	// AckParallel bounds concurrent ack publishes after a commit; an external broker's PUBACK
	// round trips then overlap. Default 16.
	AckParallel int
	// DrainTimeout bounds how long Close waits for queued incidents to be committed; default 30s.
	DrainTimeout time.Duration
	// SMSLang is the language of SMS replies to reporters: "id" (default) or "en".
	SMSLang string

	// Routes routes new tickets to agencies and sets their priority; nil leaves every ticket
	// in triage with hub.PriorityFor's priority.
	Routes *route.Router
	// Deadlines computes tickets' deadlines; default deadline.Default().
	Deadlines *deadline.Policy
	// Supervision is how long a kiosk may be unheard before it is reported offline, unless its
	// Device.SupervisionSec says otherwise; default 90s, three of the kiosk's 30 s heartbeats.
	Supervision time.Duration
	// ScanInterval is how often deadlines, kiosks' silence and false-alarm rates are checked;
	// default 5s.
	ScanInterval time.Duration
	// FalseAlarms sets when a kiosk is flagged for false alarms.
	FalseAlarms FalseAlarmPolicy
	// Notify is told of every alert raised, for the supervisor (a webhook.Notifier); nil: only
	// the log, the event feed and the dashboard show alerts.
	Notify func(hub.Alert)
	// Leading reports whether this hub leads its replicas (hub/leader). Only the leader marks
	// deadline breaches, so that one replica notifies each; the others show the breaches the
	// leader stored. nil: this hub always leads.
	Leading func() bool
}

// FalseAlarmPolicy flags a kiosk whose share of false alarms is too high: a button children
// play with, or a post that needs a visit. Zero fields take the defaults.
type FalseAlarmPolicy struct {
	Window     time.Duration // tickets made this far back count; default 30 days
	MaxRate    float64       // flagged above this share of false alarms; default 0.5
	MinTickets int           // not flagged on fewer tickets than this in the window; default 4
}

func (o *Options) fill() {
	if o.Clock == nil {
		o.Clock = hub.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.BatchMax <= 0 {
		o.BatchMax = 256
	}
	if o.AckParallel <= 0 {
		o.AckParallel = 16
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.SMSLang == "" {
		o.SMSLang = "id"
	}
	if o.Deadlines == nil {
		o.Deadlines = deadline.Default()
	}
	if o.Supervision <= 0 {
		o.Supervision = 90 * time.Second
	}
	if o.ScanInterval <= 0 {
		o.ScanInterval = 5 * time.Second
	}
	if o.FalseAlarms.Window <= 0 {
		o.FalseAlarms.Window = 30 * 24 * time.Hour
	}
	if o.FalseAlarms.MaxRate <= 0 {
		o.FalseAlarms.MaxRate = 0.5
	}
	if o.FalseAlarms.MinTickets <= 0 {
		o.FalseAlarms.MinTickets = 4
	}
}

type device struct {
	dev   hub.Device
	state hub.DeviceState
}

// Service is the hub's ingest and the operator actions that answer devices. It implements
// hub.TicketService, hub.DeviceService, hub.StatsService, hub.AlertService and hub.EventFeed.
type Service struct {
	store   hub.Store
	bus     hub.Bus
	clock   hub.Clock
	log     *slog.Logger
	opts    Options
	metrics *metrics
	started time.Time

	queue chan hub.NewTicket
	// intake guards sends on queue against Close: senders hold it for reading, Close takes it
	// for writing once stopping has released any sender waiting on a full queue.
	intake       sync.RWMutex
	intakeClosed bool
	stopping     chan struct{}
	workerDone   chan struct{}
	workerCtx    context.Context
	cancelWorker context.CancelFunc
	startOnce    sync.Once
	closeOnce    sync.Once

	devMu   sync.RWMutex
	devices map[string]*device

	// Counters for Stats; the same events feed the Prometheus metrics.
	accepted, replays, unanswered, batches atomic.Uint64
	presence, heartbeats, ignored          atomic.Uint64
	rejMu                                  sync.Mutex
	rejected                               map[string]uint64

	resyncs sync.WaitGroup

	feed   *feed
	alerts *alertBook
	// superviseCancel stops the supervision loop; superviseDone is closed when it has.
	superviseCancel context.CancelFunc
	superviseDone   chan struct{}
	scanMu          sync.Mutex
	ratesAt         time.Time // when false-alarm rates were last computed by Scan
}

var (
	_ hub.TicketService = (*Service)(nil)
	_ hub.DeviceService = (*Service)(nil)
	_ hub.StatsService  = (*Service)(nil)
	_ hub.AlertService  = (*Service)(nil)
	_ hub.EventFeed     = (*Service)(nil)
)

// New builds a Service. It does not subscribe until Start.
func New(opts Options) (*Service, error) {
	opts.fill()
	if opts.Store == nil || opts.Bus == nil {
		return nil, errors.New("ingest: Store and Bus are required")
	}
	if err := checkLang(opts.SMSLang); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	s := &Service{
		store:         opts.Store,
		bus:           opts.Bus,
		clock:         opts.Clock,
		log:           opts.Logger,
		opts:          opts,
		started:       opts.Clock.Now(),
		queue:         make(chan hub.NewTicket, opts.QueueSize),
		stopping:      make(chan struct{}),
		workerDone:    make(chan struct{}),
		devices:       map[string]*device{},
		rejected:      map[string]uint64{},
		feed:          newFeed(),
		superviseDone: make(chan struct{}),
	}
	s.alerts = newAlertBook(s)
	s.workerCtx, s.cancelWorker = context.WithCancel(context.Background())
	for _, r := range rejectReasons {
		s.rejected[r] = 0
	}
	for _, d := range opts.Devices {
		if err := s.RegisterDevice(d); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
	}
	s.metrics = newMetrics(s)
	if opts.Registerer != nil {
		if err := s.metrics.register(opts.Registerer, s); err != nil {
			return nil, fmt.Errorf("ingest: register metrics: %w", err)
		}
	}
	return s, nil
}

// RegisterDevice adds a device to the registry, so that its incidents are accepted.
func (s *Service) RegisterDevice(d hub.Device) error {
	if err := mqtt.ValidateDeviceID(d.ID); err != nil {
		return hub.Errorf(hub.CodeInvalid, "register device: %v", err)
	}
	heads, err := normalizeHeads(d.RTRWHeads)
	if err != nil {
		return hub.Errorf(hub.CodeInvalid, "register device %s: %v", d.ID, err)
	}
	d.RTRWHeads = heads
	s.devMu.Lock()
	defer s.devMu.Unlock()
	if _, ok := s.devices[d.ID]; ok {
		return hub.Errorf(hub.CodeConflict, "device %q is already registered", d.ID)
	}
	s.devices[d.ID] = &device{dev: d, state: hub.DeviceState{Presence: hub.PresenceUnknown}}
	return nil
}

// Start subscribes to the device topics and starts the worker. With the embedded broker, call
// it before the broker accepts connections so that no early message finds nobody listening.
func (s *Service) Start() error {
	var err error
	s.startOnce.Do(func() {
		go s.work()
		ctx, cancel := context.WithCancel(context.Background())
		s.superviseCancel = cancel
		go s.supervise(ctx)
		subs := []struct {
			kind mqtt.Kind
			qos  byte
			h    hub.Handler
		}{
			{mqtt.KindIncident, mqtt.QoSIncident, s.onIncident},
			{mqtt.KindPresence, mqtt.QoSPresence, s.onPresence},
			{mqtt.KindHeartbeat, mqtt.QoSHeartbeat, s.onHeartbeat},
		}
		for _, sub := range subs {
			if e := s.bus.Subscribe(mqtt.Filter(sub.kind), sub.qos, sub.h); e != nil {
				err = fmt.Errorf("ingest: %w", e)
				return
			}
		}
	})
	return err
}

// Close stops taking incidents, commits and acks everything already queued, and stops the
// worker. Incidents arriving meanwhile get no answer, so their devices re-send them later. It is
// safe to call more than once, and before Start.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopping)
		s.intake.Lock()
		s.intakeClosed = true
		s.intake.Unlock()
		close(s.queue)

		s.startOnce.Do(func() { // never started: nothing to drain or supervise
			close(s.workerDone)
			close(s.superviseDone)
		})
		timer := time.NewTimer(s.opts.DrainTimeout)
		defer timer.Stop()
		select {
		case <-s.workerDone:
		case <-timer.C:
			// A store stuck this long is not coming back; cancelling fails the batch in hand,
			// which is then left unanswered like the rest, and devices re-send.
			s.log.Error("ingest queue not drained in time; abandoning it, devices will re-send", "left", len(s.queue))
			s.cancelWorker()
			<-s.workerDone
		}
		s.cancelWorker()
		if s.superviseCancel != nil {
			s.superviseCancel()
		}
		<-s.superviseDone
		s.resyncs.Wait()
		s.feed.close()
	})
	return nil
}

// onIncident runs in the bus's delivery goroutine. It must not fail silently and must not block
// except on a full queue.
func (s *Service) onIncident(m hub.Message) {
	dev, kind, err := mqtt.ParseTopic(m.Topic)
	if err != nil || kind != mqtt.KindIncident {
		s.reject("", "", hub.ReasonBadTopic, fmt.Sprintf("bad topic %q", m.Topic))
		return
	}
	in, err := mqtt.DecodeIncident(dev, m.Payload)
	if err != nil {
		reason, incidentID := "malformed", ""
		if de, ok := errors.AsType[*mqtt.DecodeError](err); ok {
			reason, incidentID = de.Reason(), de.IncidentID
		}
		s.reject(dev, incidentID, reason, err.Error())
		return
	}
	if !s.known(dev) {
		s.reject(dev, in.ID, hub.ReasonUnknownDevice, fmt.Sprintf("device %q is not registered at this hub", dev))
		return
	}
	s.heard(dev)
	if in.Request != "" {
		s.handleRequest(in)
		return
	}
	nt := hub.NewTicketFromIncident(in)
	s.route(&nt, in)
	s.enqueue(nt)
}

func (s *Service) enqueue(nt hub.NewTicket) {
	s.intake.RLock()
	defer s.intake.RUnlock()
	if s.intakeClosed {
		s.countUnanswered("stopping", 1)
		return
	}
	select {
	case s.queue <- nt:
		return
	default:
	}
	s.metrics.queueWaits.Inc()
	select {
	case s.queue <- nt:
	case <-s.stopping:
		s.countUnanswered("stopping", 1)
	}
}

// reject counts, logs and answers a refused incident. device is "" when the topic names none,
// and then there is nobody to answer.
func (s *Service) reject(device, incidentID, reason, msg string) {
	s.rejMu.Lock()
	s.rejected[reason]++
	s.rejMu.Unlock()
	s.metrics.rejected.WithLabelValues(reason).Inc()
	s.log.Warn("incident rejected", "device", device, "incident", incidentID, "reason", reason, "err", msg)
	if device == "" {
		return
	}
	s.publishAck(context.Background(), device, mqtt.Ack{IncidentID: incidentID, Status: mqtt.AckRejected, Error: msg})
}

func (s *Service) countUnanswered(reason string, n int) {
	s.unanswered.Add(uint64(n))
	s.metrics.unanswered.WithLabelValues(reason).Add(float64(n))
}

// publishAck publishes one ack. A failure is counted and logged but not returned: the device
// keeps the incident and re-sends it, and the replay is answered again.
func (s *Service) publishAck(ctx context.Context, device string, a mqtt.Ack) {
	a.V = mqtt.SchemaVersion
	a.At = s.clock.Now()
	payload, err := mqtt.Encode(a)
	if err == nil {
		err = s.bus.Publish(ctx, mqtt.Topic(device, mqtt.KindAck), payload, mqtt.QoSAck, false)
	}
	if err != nil {
		s.metrics.ackErrors.Inc()
		s.log.Error("ack not published", "device", device, "incident", a.IncidentID, "status", a.Status, "err", err)
		return
	}
	s.metrics.acks.WithLabelValues(string(a.Status)).Inc()
}

// work is the single writer: group commit, then acks.
//
// While incidents wait, the acks of one batch go out while the next batch commits: one waits
// on the network, the other on the disk, and an ack still never precedes its own commit. At
// most one batch's acks are in flight, so a slow bus holds back commits after one batch.
func (s *Service) work() {
	defer close(s.workerDone)
	var acking chan struct{} // closed when the previous batch's acks are out
	waitAcks := func() {
		if acking != nil {
			<-acking
			acking = nil
		}
	}
	defer waitAcks()
	batch := make([]hub.NewTicket, 0, s.opts.BatchMax)
	for {
		nt, ok := <-s.queue
		if !ok {
			return
		}
		batch = append(batch[:0], nt)
	fill:
		for len(batch) < s.opts.BatchMax {
			select {
			case nt, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, nt)
			default:
				break fill
			}
		}
		jobs := s.commit(batch)
		waitAcks()
		if len(jobs) == 0 {
			continue
		}
		if len(s.queue) == 0 {
			s.publishJobs(jobs) // nothing to commit meanwhile: spare the press its goroutine hop
			continue
		}
		done := make(chan struct{})
		acking = done
		go func() {
			defer close(done)
			s.publishJobs(jobs)
		}()
	}
}

// ackJob is what one incident of a batch is answered with, in order.
type ackJob struct {
	device string
	acks   []mqtt.Ack
	ticket *hub.Ticket // whose reporter is then told by SMS, if it came by SMS
	fresh  bool        // the ticket was made by this commit
}

// commit stores a batch and returns the acks to send, none if nothing was committed.
func (s *Service) commit(batch []hub.NewTicket) []ackJob {
	// Deadlines count from now, within a commit's time of the store's CreatedAt.
	now := s.clock.Now()
	for i := range batch {
		if !batch[i].Test {
			batch[i].Deadlines = s.opts.Deadlines.For(batch[i].Priority, now)
		}
	}
	start := time.Now()
	results, err := s.store.Ingest(s.workerCtx, batch)
	s.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	s.metrics.batchSize.Observe(float64(len(batch)))
	s.batches.Add(1)
	if err != nil {
		// Nothing was committed, so nothing may be acked; the devices re-send.
		s.countUnanswered("store_error", len(batch))
		s.log.Error("ingest batch not committed; devices will re-send", "incidents", len(batch), "err", err)
		return nil
	}

	jobs := make([]ackJob, 0, len(results))
	for i, r := range results {
		nt := batch[i]
		if r.Err != nil {
			reason := hub.ReasonStore
			if hub.ErrorCode(r.Err) == hub.CodeConflict {
				reason = hub.ReasonConflict
			}
			s.rejMu.Lock()
			s.rejected[reason]++
			s.rejMu.Unlock()
			s.metrics.rejected.WithLabelValues(reason).Inc()
			s.log.Warn("incident rejected", "device", nt.DeviceID, "incident", nt.IncidentID, "reason", reason, "err", r.Err)
			jobs = append(jobs, ackJob{nt.DeviceID, []mqtt.Ack{{IncidentID: nt.IncidentID, Status: mqtt.AckRejected, Error: hub.ErrorMessage(r.Err)}}, nil, false})
			continue
		}
		t := r.Ticket
		if r.Existing {
			s.replays.Add(1)
			s.metrics.incidents.WithLabelValues("replay").Inc()
		} else {
			s.accepted.Add(1)
			s.metrics.incidents.WithLabelValues("accepted").Inc()
			s.metrics.incidentToTicket.Observe(max(t.CreatedAt.Sub(t.OccurredAt).Seconds(), 0))
			s.log.Info("ticket created", "ticket", t.Number, "id", t.ID, "device", t.DeviceID, "incident", t.IncidentID,
				"source", t.Source, "category", t.Category, "priority", t.Priority, "agency", t.Agency, "unit", t.Unit, "test", t.Test)
		}
		job := ackJob{t.DeviceID, []mqtt.Ack{{IncidentID: t.IncidentID, TicketID: t.ID, TicketNumber: t.Number, Status: mqtt.AckReceived}}, t, !r.Existing}
		if r.Existing && t.Status != hub.StatusNew {
			// The device re-sent because it missed "received"; it may have missed the later
			// status too, and "received" alone would set its LED back.
			job.acks = append(job.acks, mqtt.Ack{IncidentID: t.IncidentID, TicketID: t.ID, TicketNumber: t.Number, Status: t.Status.AckStatus()})
		}
		jobs = append(jobs, job)
	}
	return jobs
}

// publishJobs publishes acks with bounded parallelism; one incident's acks stay in order.
func (s *Service) publishJobs(jobs []ackJob) {
	ctx := context.Background()
	run := func(j ackJob) {
		for _, a := range j.acks {
			s.publishAck(ctx, j.device, a)
		}
		if j.ticket != nil {
			s.sendTicketSMS(ctx, j.ticket)
		}
		if j.fresh {
			s.feed.publish(hub.FeedEvent{Kind: hub.FeedTicketCreated, At: j.ticket.CreatedAt, Ticket: j.ticket})
			s.askConfirmation(ctx, j.ticket)
		}
	}
	if len(jobs) == 1 {
		run(jobs[0])
		return
	}
	sem := make(chan struct{}, s.opts.AckParallel)
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			run(j)
		})
	}
	wg.Wait()
}

func (s *Service) known(id string) bool {
	s.devMu.RLock()
	defer s.devMu.RUnlock()
	_, ok := s.devices[id]
	return ok
}

// ignore counts a presence or heartbeat that changes nothing.
func (s *Service) ignore(kind mqtt.Kind, reason, topic string, err error) {
	s.ignored.Add(1)
	s.metrics.ignored.WithLabelValues(string(kind), reason).Inc()
	s.log.Debug("device message ignored", "kind", kind, "reason", reason, "topic", topic, "err", err)
}

// updateDevice applies f to a registered device's state; false if the device is unknown.
func (s *Service) updateDevice(id string, f func(*hub.DeviceState)) bool {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	d, ok := s.devices[id]
	if ok {
		f(&d.state)
	}
	return ok
}

func decodeReason(err error) string {
	if de, ok := errors.AsType[*mqtt.DecodeError](err); ok {
		return de.Reason()
	}
	return "malformed"
}

func (s *Service) onPresence(m hub.Message) {
	dev, _, err := mqtt.ParseTopic(m.Topic)
	if err != nil {
		s.ignore(mqtt.KindPresence, hub.ReasonBadTopic, m.Topic, err)
		return
	}
	p, err := mqtt.DecodePresence(dev, m.Payload)
	if err != nil {
		s.ignore(mqtt.KindPresence, decodeReason(err), m.Topic, err)
		return
	}
	now := s.clock.Now()
	if !s.updateDevice(dev, func(st *hub.DeviceState) {
		st.Presence, st.PresenceAt = p.State, &now
		if p.Firmware != "" {
			st.Firmware = p.Firmware
		}
	}) {
		s.ignore(mqtt.KindPresence, hub.ReasonUnknownDevice, m.Topic, nil)
		return
	}
	s.presence.Add(1)
	s.metrics.deviceMsgs.WithLabelValues(string(mqtt.KindPresence)).Inc()
	s.log.Info("device presence", "device", dev, "state", p.State)
	if p.State == mqtt.Online {
		s.heard(dev)
	}
	s.deviceChanged(dev)
	if p.State == mqtt.Online {
		s.resyncs.Add(1)
		go func() {
			defer s.resyncs.Done()
			s.resync(dev)
		}()
	}
}

// resyncWindow is how far back a reconnecting device is told its tickets' states; it matches
// how long a kiosk keeps a received incident in its own records.
const resyncWindow = 24 * time.Hour

// resync tells a device that has just come online the current state of its recent tickets that
// have moved past "new". An ack such as "acknowledged" is sent once and is lost if the device is
// offline then; without this its LED would keep showing "received". Acks never move a kiosk's
// LED backwards, so repeating one is harmless.
func (s *Service) resync(device string) {
	ctx, cancel := context.WithTimeout(s.workerCtx, 30*time.Second)
	defer cancel()
	ts, err := s.store.Tickets(ctx, hub.TicketFilter{DeviceID: device, Limit: hub.MaxLimit})
	if err != nil {
		s.log.Error("resync of ticket states failed", "device", device, "err", err)
		return
	}
	since := s.clock.Now().Add(-resyncWindow)
	n := 0
	for _, t := range ts {
		if t.CreatedAt.Before(since) {
			continue
		}
		// A reporter's SMS about the ticket's current status is repeated too: the kiosk sends
		// each reply once, so a repeat costs nothing but a message, and one lost to a hub
		// restart or a kiosk's power cut is sent after all.
		s.sendTicketSMS(ctx, t)
		s.askConfirmation(ctx, t)
		if t.Status == hub.StatusNew {
			continue
		}
		s.publishAck(ctx, device, mqtt.Ack{IncidentID: t.IncidentID, TicketID: t.ID, TicketNumber: t.Number, Status: t.Status.AckStatus()})
		n++
	}
	if n > 0 {
		s.log.Info("ticket states resent to reconnected device", "device", device, "tickets", n)
	}
}

func (s *Service) onHeartbeat(m hub.Message) {
	dev, _, err := mqtt.ParseTopic(m.Topic)
	if err != nil {
		s.ignore(mqtt.KindHeartbeat, hub.ReasonBadTopic, m.Topic, err)
		return
	}
	h, err := mqtt.DecodeHeartbeat(dev, m.Payload)
	if err != nil {
		s.ignore(mqtt.KindHeartbeat, decodeReason(err), m.Topic, err)
		return
	}
	now := s.clock.Now()
	if !s.updateDevice(dev, func(st *hub.DeviceState) {
		st.LastHeartbeat, st.HeartbeatSeq, st.UptimeSec = &now, h.Seq, h.UptimeSec
		st.QueueDepth, st.LEDState, st.Fault = h.QueueDepth, h.LEDState, h.Fault
		st.Modem = h.Modem
		if h.Firmware != "" {
			st.Firmware = h.Firmware
		}
		// A heartbeat proves the device is up even if its presence was missed; it does not
		// override an explicit offline, which the broker sends only after the device is gone.
		if st.Presence == hub.PresenceUnknown {
			st.Presence = hub.PresenceOnline
		}
	}) {
		s.ignore(mqtt.KindHeartbeat, hub.ReasonUnknownDevice, m.Topic, nil)
		return
	}
	s.heartbeats.Add(1)
	s.metrics.deviceMsgs.WithLabelValues(string(mqtt.KindHeartbeat)).Inc()
	s.heard(dev)
	s.deviceChanged(dev)
}

// Ping implements hub.DeviceService.
func (s *Service) Ping(ctx context.Context, deviceID string) (string, error) {
	if !s.known(deviceID) {
		return "", hub.Errorf(hub.CodeNotFound, "device %q is not registered", deviceID)
	}
	id, err := mqtt.NewIncidentID() // a UUIDv7 serves as well for commands
	if err != nil {
		return "", err
	}
	payload, err := mqtt.Encode(mqtt.Command{V: mqtt.SchemaVersion, ID: id, Name: mqtt.CommandPing, At: s.clock.Now()})
	if err != nil {
		return "", err
	}
	if err := s.bus.Publish(ctx, mqtt.Topic(deviceID, mqtt.KindCommand), payload, mqtt.QoSCommand, false); err != nil {
		return "", hub.Errorf(hub.CodeUnavailable, "ping %s: %v", deviceID, err)
	}
	s.log.Info("ping sent", "device", deviceID, "command", id)
	return id, nil
}

// Devices implements hub.DeviceService: the registry sorted by ID, with live state.
func (s *Service) Devices(context.Context) []hub.DeviceStatus {
	s.devMu.RLock()
	out := make([]hub.DeviceStatus, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, d.status())
	}
	s.devMu.RUnlock()
	slices.SortFunc(out, func(a, b hub.DeviceStatus) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (s *Service) onlineCount() int {
	s.devMu.RLock()
	defer s.devMu.RUnlock()
	n := 0
	for _, d := range s.devices {
		if d.state.Presence == hub.PresenceOnline {
			n++
		}
	}
	return n
}

func (s *Service) registeredCount() int {
	s.devMu.RLock()
	defer s.devMu.RUnlock()
	return len(s.devices)
}

// Stats implements hub.StatsService.
func (s *Service) Stats(context.Context) hub.Stats {
	s.rejMu.Lock()
	rejected := maps.Clone(s.rejected)
	s.rejMu.Unlock()
	var total uint64
	for _, n := range rejected {
		total += n
	}
	return hub.Stats{
		StartedAt: s.started,
		Incidents: hub.IncidentCounts{
			Accepted:      s.accepted.Load(),
			Replays:       s.replays.Load(),
			Rejected:      rejected,
			RejectedTotal: total,
			Unanswered:    s.unanswered.Load(),
		},
		Queue: hub.QueueStatus{
			Depth:    len(s.queue),
			Capacity: cap(s.queue),
			Batches:  s.batches.Load(),
		},
		Devices: hub.DeviceCounts{
			Registered: s.registeredCount(),
			Online:     s.onlineCount(),
		},
		Messages: hub.MessageCounters{
			Presence:   s.presence.Load(),
			Heartbeats: s.heartbeats.Load(),
			Ignored:    s.ignored.Load(),
		},
	}
}
