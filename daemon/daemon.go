// Package daemon is kentongand, the program on each kiosk at an RT/RW post: it turns panic-button
// presses into incidents, keeps them on disk until the 112 hub confirms it holds them, sends them
// over MQTT, and shows on LEDs how far the newest report has got.
//
// The path of a press: the button is held for hold_ms; the incident is committed to the outbox
// (fsynced) before anything else happens, and only then do the LEDs say "pending"; it is published
// at once if the hub is reachable, re-published on every reconnect and every retry_interval until
// the hub acks it as received; later acks (acknowledged, dispatched, resolved) update the LEDs.
package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/daemon/outbox"
	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiosim"
	"github.com/kentongan/kentongan/mqtt"
)

// Errors returned by Press and SimPress.
var (
	ErrUnknownButton = errors.New("unknown button")
	ErrNotSim        = errors.New("gpio driver is not sim")
	ErrBadHold       = errors.New("hold must be between 1ms and 60s")
	ErrNotRunning    = errors.New("daemon is not running")
	// ErrNotStored: the press raised an incident, but the disk would not take it. It is held in
	// memory and sent, and written to disk once the disk takes writes again; a power cut before
	// either would lose it.
	ErrNotStored = errors.New("incident not stored on disk")
)

// Option configures New.
type Option func(*Daemon)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(d *Daemon) { d.log = l } }

// WithLEDObserver registers f to be called with each LED's new state and pattern whenever the
// displayed state changes. It is called from the display goroutine and must not block.
func WithLEDObserver(f func(led, state, pattern string)) Option {
	return func(d *Daemon) { d.observer = f }
}

// WithClock sets the clock used for timestamps, ticket-status display time and record pruning
// (default time.Now). Waits, blink timing and MQTT timers use the runtime's timers.
func WithClock(now func() time.Time) Option { return func(d *Daemon) { d.now = now } }

// store is the part of the outbox the daemon uses; tests substitute a failing one.
type store interface {
	Put(in mqtt.Incident, now time.Time) error
	PutSent(in mqtt.Incident, now time.Time) (mqtt.Incident, error)
	Pending() ([]outbox.Entry, error)
	Claim(now, sentBefore time.Time) ([]mqtt.Incident, error)
	Ack(a mqtt.Ack, now time.Time) (outbox.AckResult, error)
	Recent(now time.Time) ([]outbox.Recent, error)
	Prune(now time.Time) (int, error)
	QueueSMS(m outbox.SMS) (bool, error)
	SMSDue() ([]outbox.SMS, error)
	SMSResult(id string, now time.Time, sendErr error, giveUp bool) error
	PruneSMS(now time.Time) (int, error)
	Close() error
}

// Daemon is one running kentongand.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	observer func(led, state, pattern string)
	now      func() time.Time
	firmware string

	store   store
	chip    gpio.Chip
	sim     *gpiosim.Chip // nil unless gpio.driver is sim
	buttons map[string]*button
	order   []*button
	leds    []*led
	sms     *smsPath // nil without a modem

	lifeMu sync.Mutex // serialises Start and Close

	// Set by Start. client and adminLn are read under mu; the rest before Start's goroutines run.
	client    paho.Client
	adminLn   net.Listener
	adminSrv  *http.Server
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	startedAt time.Time

	ledKick chan struct{}
	// refreshKick asks runRefresh for a refresh of the outbox view (see refreshSoon).
	refreshKick chan struct{}
	newKick     chan struct{}
	connectKick chan struct{}
	pingKick    chan struct{}
	freshMu     sync.Mutex
	fresh       []mqtt.Incident // stored and counted as sent, waiting for runLink to publish
	refreshMu   sync.Mutex      // serialises reading the store into the cache
	linkFailing atomic.Bool
	faults      faultSet         // hardware faults seen at run time (stuck button, dead line)
	cancels     cancelledReports // reports cancelled by a second press, hidden from the LEDs

	mu         sync.Mutex
	started    bool
	closed     bool
	pressing   map[string]bool
	storeFault string
	// unstored are incidents the outbox could not take (a full or failing disk): kept in memory,
	// sent like the rest, and written to disk as soon as it takes writes again.
	unstored []outbox.Entry
	// heldAcked are incidents the hub holds that never reached the disk, with the hub's latest
	// answer: kept so that the LEDs and /status show that answer as for any other report, and
	// written to the outbox's recent records once the disk takes writes again.
	heldAcked []heldAck
	// sentUnrecorded is when each pending incident was last sent while the outbox could not
	// record it (a full disk): without it every retry tick re-sent the whole backlog.
	sentUnrecorded map[string]time.Time
	pending        []outbox.Entry
	recent         []outbox.Recent
	lastAckAt      time.Time
	ledState       string
	hbSeq          uint64

	closeOnce sync.Once
	closeErr  error
}

// New opens the store and the pins named in cfg. It does not connect or start anything.
func New(cfg Config, opts ...Option) (*Daemon, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	d := &Daemon{
		cfg:         cfg,
		log:         slog.Default(),
		now:         time.Now,
		buttons:     make(map[string]*button),
		pressing:    make(map[string]bool),
		ledKick:     make(chan struct{}, 1),
		refreshKick: make(chan struct{}, 1),
		newKick:     make(chan struct{}, 1),
		connectKick: make(chan struct{}, 1),
		pingKick:    make(chan struct{}, 1),
		firmware:    firmware(),
	}
	for _, o := range opts {
		o(d)
	}
	d.log = d.log.With("device_id", cfg.DeviceID)

	st, err := outbox.Open(cfg.Store.Dir)
	if err != nil {
		return nil, err
	}
	d.store = st

	if d.chip, d.sim, err = openChip(cfg.GPIO, d.log); err != nil {
		st.Close()
		return nil, err
	}
	if err := d.openPins(); err != nil {
		d.chip.Close()
		st.Close()
		return nil, err
	}
	if cfg.Modem.Enabled() {
		if d.sms, err = d.newSMS(); err != nil {
			d.chip.Close()
			st.Close()
			return nil, err
		}
	}
	d.refresh()
	return d, nil
}

func (d *Daemon) openPins() error {
	for _, bc := range d.cfg.Buttons {
		// Buttons are switches to ground: pull-up, pressed reads Low.
		pin, err := d.openIn(&bc, gpio.WithPullUp, gpio.WithDebounce(bc.Debounce()), gpio.WithBothEdges)
		if err != nil {
			return fmt.Errorf("open button %s: %w", bc.Name, err)
		}
		b := newButton(bc, pin, d.log)
		d.wireButton(b)
		d.buttons[bc.Name] = b
		d.order = append(d.order, b)
	}
	for _, lc := range d.cfg.LEDs {
		pin, err := d.openOut(&lc, gpio.WithInitial(gpio.Low))
		if err != nil {
			return fmt.Errorf("open LED %s: %w", lc.Name, err)
		}
		d.leds = append(d.leds, d.wireLED(newLED(lc.Name, pin, lc.Patterns, d.log)))
	}
	return nil
}

func firmware() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return "kentongand " + v
}

// Start starts the admin listener, the buttons, the LEDs and the MQTT client, and returns. The MQTT
// client keeps trying in the background if the hub is unreachable. ctx bounds only the start-up;
// Close stops the daemon.
func (d *Daemon) Start(ctx context.Context) error {
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	d.mu.Lock()
	if d.started || d.closed {
		d.mu.Unlock()
		return errors.New("start: daemon already started or closed")
	}
	d.mu.Unlock()

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", d.cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("start admin listener: %w", err)
	}
	d.adminSrv = &http.Server{Handler: d.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.startedAt = d.now()
	client := paho.NewClient(d.clientOptions())
	d.mu.Lock()
	d.started = true
	d.adminLn = ln
	d.client = client
	d.mu.Unlock()

	d.updateDisplay()
	d.goRun(d.runDisplay)
	d.goRun(d.runRefresh)
	for _, l := range d.leds {
		d.goRun(l.run)
	}
	for _, b := range d.order {
		d.goRun(b.run)
	}
	d.goRun(d.runLink)
	if d.sms != nil {
		d.sms.start(d.ctx, d.goRun)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.adminSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("admin server stopped", "err", err)
		}
	}()
	// Connect's token completes only when connected; progress is reported by the handlers.
	client.Connect()
	d.log.Info("kentongand started", "name", d.cfg.Name, "broker", d.cfg.Broker.URL, "admin", ln.Addr().String(),
		"buttons", len(d.order), "leds", len(d.leds), "store", d.cfg.Store.Dir)
	return nil
}

func (d *Daemon) goRun(f func(context.Context)) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f(d.ctx)
	}()
}

// Close stops the daemon: it says goodbye to the hub (presence offline), disconnects, turns the
// LEDs off and releases the pins and the store, so that a new Daemon can open the same store.dir.
// It is safe to call more than once, and without Start.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.close() })
	return d.closeErr
}

func (d *Daemon) close() error {
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	d.mu.Lock()
	started := d.started
	d.closed = true
	d.mu.Unlock()

	if started {
		d.cancel()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := d.adminSrv.Shutdown(sctx); err != nil {
			d.adminSrv.Close()
		}
		cancel()
		d.wg.Wait()
		if d.client.IsConnectionOpen() {
			t := d.client.Publish(mqtt.Topic(d.cfg.DeviceID, mqtt.KindPresence), mqtt.QoSPresence, true, d.presence(mqtt.Offline))
			if !t.WaitTimeout(2*time.Second) || t.Error() != nil {
				d.log.Warn("could not publish presence offline; the broker's last will says it instead", "err", t.Error())
			}
		}
		// Disconnect before closing the store, so no ack handler runs against a closed store.
		d.client.Disconnect(250)
		d.log.Info("kentongand stopped")
	}
	var errs []error
	if err := d.chip.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close gpio: %w", err))
	}
	if err := d.store.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// AdminAddr returns the admin listener's address, or "" before Start.
func (d *Daemon) AdminAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.adminLn == nil {
		return ""
	}
	return d.adminLn.Addr().String()
}

func (d *Daemon) running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started && !d.closed
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (d *Daemon) setPressing(b *button, on bool) {
	d.mu.Lock()
	if on {
		d.pressing[b.cfg.Name] = true
	} else {
		delete(d.pressing, b.cfg.Name)
	}
	d.mu.Unlock()
	kick(d.ledKick)
}

// submit gives in an ID and the device's identity, stores it and, if connected, publishes it.
// what names its origin in logs ("button panic", "sms from +62…"). It returns the incident ID,
// also with an error wrapping ErrNotStored when the disk would not take it and it is held in
// memory instead; with any other error nothing was raised.
func (d *Daemon) submit(in mqtt.Incident, what string) (string, error) {
	if in.ID == "" {
		id, err := mqtt.NewIncidentID()
		if err != nil {
			return "", d.storeFailed(what, err)
		}
		in.ID = id
	}
	now := d.now()
	in.V = mqtt.SchemaVersion
	in.DeviceID = d.cfg.DeviceID
	if in.OccurredAt.IsZero() {
		in.OccurredAt = now.UTC()
	}
	id := in.ID
	var err error
	// Connected, the incident is stored as sent and published straight away: one commit, not
	// two, before it is on the wire. Offline, it waits for the next connect like any other.
	online := d.connected()
	if online {
		var sent mqtt.Incident
		if sent, err = d.store.PutSent(in, now); err == nil {
			in = sent
		}
	} else {
		err = d.store.Put(in, now)
	}
	if errors.Is(err, outbox.ErrExists) {
		// Raised before (an SMS read twice): it is already safe, and must not be raised again.
		return id, err
	}
	if err != nil {
		return id, d.keepInMemory(what, in, now, err)
	}
	d.mu.Lock()
	d.storeFault = ""
	d.mu.Unlock()
	d.log.Info("incident stored", "incident_id", id, "from", what, "source", in.Source, "category", in.Category, "request", in.Request)
	// The incident is on disk: only now may it be sent, and the LEDs say pending.
	if online {
		d.freshMu.Lock()
		d.fresh = append(d.fresh, in)
		d.freshMu.Unlock()
		kick(d.newKick)
	}
	d.refresh()
	return id, nil
}

// keepInMemory holds an incident the disk would not take. It is still sent and shown as pending;
// only a power cut before the hub has it, or before the disk takes it, would lose it. The fault
// shows on the LEDs and in the heartbeat until a write succeeds again.
func (d *Daemon) keepInMemory(what string, in mqtt.Incident, now time.Time, err error) error {
	in.Attempt = 0
	d.mu.Lock()
	if slices.ContainsFunc(d.unstored, func(e outbox.Entry) bool { return e.Incident.ID == in.ID }) {
		// An SMS read again while the disk still refuses it: it is held already.
		d.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrNotStored, err)
	}
	d.storeFault = "store: " + err.Error()
	d.unstored = append(d.unstored, outbox.Entry{Incident: in, StoredAt: now})
	d.mu.Unlock()
	d.log.Error("INCIDENT NOT ON DISK: kept in memory and sent to the hub; a power cut before the hub has it would lose it",
		"incident_id", in.ID, "from", what, "store", d.cfg.Store.Dir, "err", err)
	d.refresh()
	kick(d.newKick)
	return fmt.Errorf("%w: %w", ErrNotStored, err)
}

// heldAck is an incident held in memory that the hub has answered, with its latest answer.
type heldAck struct {
	in  mqtt.Incident
	ack mqtt.Ack
	at  time.Time // device clock when the answer arrived
}

func (h heldAck) recent() outbox.Recent {
	return outbox.Recent{
		IncidentID: h.in.ID, Button: h.in.Button, Category: h.in.Category, Request: h.in.Request,
		OccurredAt: h.in.OccurredAt, TicketID: h.ack.TicketID, TicketNumber: h.ack.TicketNumber,
		Status: h.ack.Status, HubAt: h.ack.At, Updated: h.at,
	}
}

// persistUnstored writes the incidents held in memory to the outbox, oldest first, once the disk
// takes writes again. Written, they are pending like any other and leave memory; those the hub
// already answered get that answer recorded too, which makes them recent records.
func (d *Daemon) persistUnstored() {
	d.mu.Lock()
	held := slices.Clone(d.unstored)
	acked := slices.Clone(d.heldAcked)
	d.mu.Unlock()
	if len(held) == 0 && len(acked) == 0 {
		return
	}
	var written []string
	for _, e := range held {
		if err := d.store.Put(e.Incident, e.StoredAt); err != nil {
			d.log.Debug("outbox still refuses writes", "err", err)
			break
		}
		written = append(written, e.Incident.ID)
	}
	var recorded []string
	for _, h := range acked {
		if len(written) < len(held) {
			break // the disk still refuses writes
		}
		// Put first, then the answer: the outbox makes a recent record only from a pending one.
		// Cut between the two, the incident is pending and sent again; the hub answers again.
		if err := d.store.Put(h.in, h.at); err != nil && !errors.Is(err, outbox.ErrExists) {
			d.log.Debug("outbox still refuses writes", "err", err)
			break
		}
		if _, err := d.store.Ack(h.ack, h.at); err != nil {
			d.log.Debug("outbox still refuses writes", "err", err)
			break
		}
		recorded = append(recorded, h.in.ID)
	}
	if len(written) == 0 && len(recorded) == 0 {
		return
	}
	d.mu.Lock()
	d.unstored = slices.DeleteFunc(d.unstored, func(e outbox.Entry) bool { return slices.Contains(written, e.Incident.ID) })
	d.heldAcked = slices.DeleteFunc(d.heldAcked, func(h heldAck) bool { return slices.Contains(recorded, h.in.ID) })
	d.storeFault = ""
	d.mu.Unlock()
	d.log.Info("incidents held in memory are now on disk", "count", len(written)+len(recorded))
	if d.sms != nil {
		// SMS reports held in memory are still on the SIM, which keeps its copy until the disk
		// has one: list it now rather than at the next periodic listing, to free the slots.
		kick(d.sms.readyKick)
	}
	d.refresh()
}

// takeUnstoredAck applies an ack to an incident held in memory. It reports false when the
// incident is not held there (the outbox handles it).
func (d *Daemon) takeUnstoredAck(a mqtt.Ack) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	i := slices.IndexFunc(d.unstored, func(e outbox.Entry) bool { return e.Incident.ID == a.IncidentID })
	if i < 0 {
		j := slices.IndexFunc(d.heldAcked, func(h heldAck) bool { return h.in.ID == a.IncidentID })
		if j < 0 {
			return false
		}
		// A later answer about a ticket the hub holds; a late or repeated one must not undo it.
		h := &d.heldAcked[j]
		rank, old := outbox.StatusRank(a.Status), outbox.StatusRank(h.ack.Status)
		if rank > old || (rank == old && rank > 0 && !a.At.Before(h.ack.At)) {
			h.ack, h.at = a, now
		}
		d.lastAckAt = now
		return true
	}
	if a.Status == mqtt.AckRejected {
		d.unstored[i].LastError = cmp.Or(a.Error, "rejected by hub")
		d.unstored[i].RejectedAt = now
		return true
	}
	if outbox.StatusRank(a.Status) == 0 {
		return true // a status this code does not know changes nothing
	}
	// The hub holds it now: it is no longer sent, but the resident must still see the answer.
	d.heldAcked = append(d.heldAcked, heldAck{in: d.unstored[i].Incident, ack: a, at: now})
	d.unstored = slices.Delete(d.unstored, i, i+1)
	d.lastAckAt = now
	return true
}

// claimUnstored marks the held incidents due (never sent, or last sent at or before sentBefore)
// as sent now and returns them for publishing.
func (d *Daemon) claimUnstored(sentBefore time.Time) []mqtt.Incident {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []mqtt.Incident
	for i := range d.unstored {
		e := &d.unstored[i]
		if e.LastSentAt.IsZero() || !e.LastSentAt.After(sentBefore) {
			e.Incident.Attempt++
			e.LastSentAt = now
			out = append(out, e.Incident)
		}
	}
	return out
}

func (d *Daemon) storeFailed(what string, err error) error {
	d.mu.Lock()
	d.storeFault = "store: " + err.Error()
	d.mu.Unlock()
	d.log.Error("INCIDENT NOT STORED: the report is lost; the resident must report again or call 112",
		"from", what, "store", d.cfg.Store.Dir, "err", err)
	kick(d.ledKick)
	return fmt.Errorf("%w: %w", ErrNotStored, err)
}

// refresh reloads the pending and recent incidents from the store into memory, where the LEDs,
// heartbeat and status read them.
func (d *Daemon) refresh() {
	d.refreshMu.Lock()
	defer d.refreshMu.Unlock()
	pending, perr := d.store.Pending()
	recent, rerr := d.store.Recent(d.now())
	d.mu.Lock()
	if err := errors.Join(perr, rerr); err != nil {
		d.storeFault = "store: " + err.Error()
		d.log.Error("cannot read the outbox", "err", err)
	} else {
		for _, h := range d.heldAcked {
			recent = append(recent, h.recent())
		}
		// Newest incident first, as the outbox lists them: its IDs sort by time.
		slices.SortStableFunc(recent, func(a, b outbox.Recent) int { return cmp.Compare(b.IncidentID, a.IncidentID) })
		d.pending, d.recent = append(pending, d.unstored...), recent
	}
	d.mu.Unlock()
	kick(d.ledKick)
}

// refreshSoon asks for a refresh without doing it. refresh reads every pending and recent
// record, so calling it for each ack made draining a backlog quadratic: a kiosk that queued
// 2,000 presses during an outage took minutes to take the hub's answers. Requests made while a
// refresh runs are served by one more refresh.
func (d *Daemon) refreshSoon() { kick(d.refreshKick) }

func (d *Daemon) runRefresh(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.refreshKick:
			d.refresh()
		}
	}
}

// faultLocked describes what is wrong, or "" when healthy.
func (d *Daemon) faultLocked() string {
	var f []string
	if d.storeFault != "" {
		f = append(f, d.storeFault)
	}
	f = append(f, d.faults.list()...)
	if d.sms != nil {
		if mf := d.sms.fault(); mf != "" {
			f = append(f, mf)
		}
	}
	for _, e := range d.pending {
		if e.LastError != "" {
			f = append(f, fmt.Sprintf("incident %s rejected by hub: %s", e.Incident.ID, e.LastError))
		}
	}
	return strings.Join(f, "; ")
}

func (d *Daemon) connected() bool {
	d.mu.Lock()
	c := d.client
	d.mu.Unlock()
	return c != nil && c.IsConnectionOpen()
}

func (d *Daemon) displayLocked(connected bool) display {
	in := display{
		Fault:     d.faultLocked() != "",
		Pressing:  len(d.pressing) > 0,
		Connected: connected,
	}
	in.Pending, in.Newest = d.cancels.shown(d.pending, d.recent)
	return in
}

// updateDisplay derives the LED state and, if it changed, switches the LEDs.
func (d *Daemon) updateDisplay() {
	connected := d.connected()
	d.mu.Lock()
	state := deriveState(d.displayLocked(connected), d.now(), d.cfg.LEDDisplayTime)
	changed := state != d.ledState
	d.ledState = state
	d.mu.Unlock()
	if !changed {
		return
	}
	d.log.Debug("LED state", "state", state)
	for _, l := range d.leds {
		p := l.show(state)
		if d.observer != nil {
			d.observer(l.name, state, p)
		}
	}
}

// runDisplay keeps the LEDs in step with the daemon's state. The tick catches what no event
// announces: a ticket status's display time running out.
func (d *Daemon) runDisplay(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.ledKick:
		case <-t.C:
		}
		d.updateDisplay()
	}
}

// LEDs returns what each LED shows, in configuration order.
func (d *Daemon) LEDs() []LEDView {
	out := make([]LEDView, 0, len(d.leds))
	for _, l := range d.leds {
		out = append(out, l.view())
	}
	return out
}

// Status is the daemon's state as GET /status reports it.
type Status struct {
	DeviceID   string    `json:"device_id"`
	Name       string    `json:"name"`
	Connected  bool      `json:"connected"`
	QueueDepth int       `json:"queue_depth"` // incidents not yet received by the hub
	LEDState   string    `json:"led_state"`
	Fault      string    `json:"fault"` // empty when healthy
	LastAckAt  time.Time `json:"last_ack_at,omitzero"`
	// Incidents are the pending ones and those the hub acked within the last day, newest first.
	Incidents []IncidentView `json:"incidents"`
	// Modem and SMS are set on a kiosk with a modem; SMSQueue lists the replies not yet sent.
	Modem    *mqtt.Modem `json:"modem,omitempty"`
	SMS      *SMSStats   `json:"sms,omitempty"`
	SMSQueue []SMSView   `json:"sms_queue,omitempty"`
}

// SMSView is one SMS waiting to be sent.
type SMSView struct {
	ID        string    `json:"id"`
	To        string    `json:"to"`
	Ticket    string    `json:"ticket,omitempty"`
	QueuedAt  time.Time `json:"queued_at"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
}

// MarshalJSON writes last_ack_at as null until the first ack, rather than as year 1.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	var last *time.Time
	if !s.LastAckAt.IsZero() {
		last = &s.LastAckAt
	}
	return json.Marshal(struct {
		plain
		LastAckAt *time.Time `json:"last_ack_at"`
	}{plain(s), last})
}

// IncidentView is one incident in Status.
type IncidentView struct {
	ID           string    `json:"id"`
	Button       string    `json:"button,omitempty"`
	Category     string    `json:"category,omitempty"`
	Source       string    `json:"source,omitempty"`  // button, sms or tamper; empty for a record made before it was kept
	Request      string    `json:"request,omitempty"` // a request about a ticket rather than a report
	OccurredAt   time.Time `json:"occurred_at"`
	State        string    `json:"state"` // "pending", or the hub's last status
	Attempt      int       `json:"attempt,omitempty"`
	TicketID     string    `json:"ticket_id,omitempty"`
	TicketNumber string    `json:"ticket_number,omitempty"`
	Error        string    `json:"error,omitempty"` // the hub's reason for rejecting it
	Updated      time.Time `json:"updated"`
}

// Status returns the daemon's state.
func (d *Daemon) Status() Status {
	connected := d.connected()
	var (
		modemState *mqtt.Modem
		smsStats   *SMSStats
		smsQueue   []SMSView
	)
	if d.sms != nil {
		modemState = d.sms.heartbeat()
		st := d.sms.count.snapshot()
		smsStats = &st
		due, _ := d.store.SMSDue()
		for _, m := range append(d.sms.heldSMS(), due...) {
			smsQueue = append(smsQueue, SMSView{ID: m.ID, To: m.To, Ticket: m.Ticket, QueuedAt: m.QueuedAt, Attempts: m.Attempts, LastError: m.LastError})
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Status{
		DeviceID:   d.cfg.DeviceID,
		Name:       d.cfg.Name,
		Connected:  connected,
		QueueDepth: len(d.pending),
		LEDState:   d.ledState,
		Fault:      d.faultLocked(),
		LastAckAt:  d.lastAckAt,
		Incidents:  []IncidentView{},
		Modem:      modemState,
		SMS:        smsStats,
		SMSQueue:   smsQueue,
	}
	for _, e := range d.pending {
		updated := e.StoredAt
		if e.LastSentAt.After(updated) {
			updated = e.LastSentAt
		}
		errText := e.LastError
		if errText == "" && slices.ContainsFunc(d.unstored, func(u outbox.Entry) bool { return u.Incident.ID == e.Incident.ID }) {
			errText = "not on disk: held in memory until the hub or the disk has it"
		}
		s.Incidents = append(s.Incidents, IncidentView{
			ID: e.Incident.ID, Button: e.Incident.Button, Category: e.Incident.Category,
			Source: e.Incident.Source, Request: e.Incident.Request, OccurredAt: e.Incident.OccurredAt, State: StatePending, Attempt: e.Incident.Attempt,
			Error: errText, Updated: updated,
		})
	}
	for _, r := range d.recent {
		s.Incidents = append(s.Incidents, IncidentView{
			ID: r.IncidentID, Button: r.Button, Category: r.Category, Request: r.Request, OccurredAt: r.OccurredAt,
			State: string(r.Status), TicketID: r.TicketID, TicketNumber: r.TicketNumber, Updated: r.Updated,
		})
	}
	slices.SortFunc(s.Incidents, func(a, b IncidentView) int { return cmp.Compare(b.ID, a.ID) })
	return s
}

// PressResult says what a simulated press did.
type PressResult struct {
	Button     string `json:"button"`
	HoldMS     int64  `json:"hold_ms"`
	Raised     bool   `json:"raised"`
	IncidentID string `json:"incident_id,omitempty"`
	// CancelID: the press was short and within its button's cancel window, and cancelled the
	// button's last report with the request of this ID.
	CancelID string `json:"cancel_id,omitempty"`
}

// Press presses a button of the simulated chip for hold, through the same debounce and hold logic
// as a finger, and returns once the press is over. It returns an error wrapping ErrNotStored if
// the press raised an incident the disk would not take (it is held in memory and sent).
func (d *Daemon) Press(ctx context.Context, button string, hold time.Duration) error {
	_, err := d.SimPress(ctx, button, hold)
	return err
}

// SimPress is Press, also saying whether an incident was raised and its ID.
func (d *Daemon) SimPress(ctx context.Context, name string, hold time.Duration) (PressResult, error) {
	res := PressResult{Button: name, HoldMS: hold.Milliseconds()}
	if d.sim == nil {
		return res, ErrNotSim
	}
	b := d.buttons[name]
	if b == nil {
		return res, fmt.Errorf("%w %q", ErrUnknownButton, name)
	}
	if hold < time.Millisecond || hold > maxHoldMS*time.Millisecond {
		return res, ErrBadHold
	}
	if !d.running() {
		return res, ErrNotRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(d.ctx, cancel)()

	b.pressMu.Lock()
	defer b.pressMu.Unlock()
	outcome, stop := b.watch()
	defer stop()
	if err := d.sim.Line(b.cfg.Pin).Tap(ctx, hold); err != nil {
		return res, fmt.Errorf("press %s: %w", name, err)
	}
	// A press shorter than the debounce never reaches the button logic, so no outcome comes;
	// anything else reports within a debounce period of the release.
	wait := time.NewTimer(2*b.cfg.Debounce() + time.Second)
	defer wait.Stop()
	var o pressOutcome
	select {
	case o = <-outcome:
	case <-wait.C:
	case <-ctx.Done():
		return res, fmt.Errorf("press %s: %w", name, ctx.Err())
	}
	// The next press must not begin before the logic has seen this one end, or the two merge.
	select {
	case <-b.released():
	case <-wait.C:
	case <-ctx.Done():
	}
	res.Raised, res.IncidentID, res.CancelID = o.Raised, o.IncidentID, o.CancelID
	if o.Err != nil {
		return res, fmt.Errorf("press %s: %w", name, o.Err)
	}
	return res, nil
}
