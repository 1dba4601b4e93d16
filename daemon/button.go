package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/mqtt"
)

// clock is where the button and LED loops get the time and their timers. Production uses the
// runtime's; tests use a synctest bubble's fake time through it, or drive a fake one by hand
// where they must choose when a loop wakes.
type clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed, and a func that stops the timer.
	After(d time.Duration) (<-chan time.Time, func())
}

type runtimeClock struct{}

func (runtimeClock) Now() time.Time { return time.Now() }

func (runtimeClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// Timing of the machine that is not configurable.
const (
	// minCancelPress: a cancel must be a deliberate press. It keeps a contact bounce that slipped
	// past the debounce (debounce_ms: 0, or a backend without it) from cancelling a real report.
	minCancelPress = 50 * time.Millisecond
	// Back-off between attempts to read an input line that returns errors: the first retry is
	// quick for a transient error, and a line that has gone for good costs one call a half-minute.
	minLineRetry = 100 * time.Millisecond
	maxLineRetry = 30 * time.Second
)

// pressOutcome is how one press ended.
type pressOutcome struct {
	Raised     bool
	IncidentID string
	// CancelID is the ID of the cancel request a short press within the cancel window sent.
	CancelID string
	Err      error // the incident could not be stored
}

// inputState is where an input's machine is.
type inputState int

const (
	inReleased inputState = iota // at rest
	inPressed                    // pressed (a tamper switch: opened); the hold time has not passed
	inHeld                       // held past the hold time; its incident is raised
	inIgnored                    // pressed since before we looked (start-up, a line that came back)
	inStuck                      // held past stuck_after; reported as a fault until released
	inChatter                    // too many edges: a loose wire; ignored until it is quiet
	inLost                       // the line returns errors; nothing is known of it
)

// actionKind is what the machine asks its driver to do.
type actionKind int

const (
	actPressing actionKind = iota // on: a press began; off: it stopped counting as one
	actRaise                      // raise the incident for this press (or opening)
	actCancel                     // send a cancel for target
	actFault                      // set (on) or clear the fault named by fault
	actDone                       // a press ended without raising: tell whoever waits for it
)

type action struct {
	kind   actionKind
	on     bool
	target string // actCancel: the incident being cancelled
	fault  string // actFault: faultStuck or faultChatter
}

// Faults the machine reports.
const (
	faultStuck   = "stuck"
	faultChatter = "chatter"
)

// inputMachine turns the edges of one input and the passing of time into what they mean: a press
// to show, an incident, a cancel, a fault. It touches no pin and reads no clock (it only logs),
// so that a test can script any sequence of edges at any instants. Its driver is button.
type inputMachine struct {
	cfg    Button
	tamper bool
	log    *slog.Logger

	state    inputState
	active   bool      // the level last seen is the active one (pressed, or enclosure open)
	since    time.Time // inPressed, inHeld: the press began; inIgnored: we started looking
	lastEdge time.Time
	edges    []time.Time // recent edges, within the chatter window, oldest first

	raisedAt time.Time // the last raise, while a short press may still cancel it
	raisedID string
}

func newInputMachine(cfg Button, log *slog.Logger) *inputMachine {
	return &inputMachine{cfg: cfg, tamper: cfg.Kind == KindTamper, log: log}
}

// start sets the machine going on an input whose level is active or not, at start-up or when a
// failed line answers again.
func (m *inputMachine) start(now time.Time, active bool) []action {
	m.active, m.edges, m.lastEdge = active, m.edges[:0], now
	switch {
	case !active:
		m.state = inReleased
	case m.tamper:
		// Open at start-up counts as an opening: opening the enclosure while the kiosk is off is
		// exactly what a tamper switch is there to report.
		m.state, m.since = inPressed, now
		m.log.Warn("tamper switch is open at start-up")
	default:
		// Pressed for an unknown time, or stuck: it must be released before it counts, so that a
		// stuck button does not raise an incident at every boot.
		m.state, m.since = inIgnored, now
		m.log.Warn("button is pressed at start-up; ignoring it until released")
	}
	return nil
}

// deadline is when tick next has something to do; zero when only an edge can change anything.
func (m *inputMachine) deadline() time.Time {
	switch m.state {
	case inPressed:
		return m.since.Add(m.cfg.Hold())
	case inHeld, inIgnored:
		if !m.tamper {
			return m.since.Add(m.cfg.StuckAfter())
		}
	case inChatter:
		return m.lastEdge.Add(m.cfg.ChatterQuiet())
	}
	return time.Time{}
}

// edge handles a level change seen at now.
func (m *inputMachine) edge(now time.Time, active bool) []action {
	switch m.state {
	case inChatter:
		m.active, m.lastEdge = active, now
		return nil
	case inLost:
		return m.start(now, active)
	}
	if m.chattering(now) {
		return m.enterChatter(now, active)
	}
	prev := m.active
	m.active, m.lastEdge = active, now
	if active == prev {
		// The backend lost the edge in between (a full kernel buffer); nothing has changed.
		return nil
	}
	switch m.state {
	case inReleased:
		m.state, m.since = inPressed, now
		if m.tamper {
			return nil // no feedback to whoever is opening the enclosure
		}
		return []action{{kind: actPressing, on: true}}
	case inPressed:
		m.state = inReleased
		if m.tamper {
			m.log.Info("tamper switch closed again before hold time; no incident", "hold_ms", m.cfg.HoldMS)
			return []action{{kind: actDone}}
		}
		acts := []action{{kind: actPressing, on: false}}
		if id := m.cancellable(now); id != "" {
			m.raisedID = ""
			acts = append(acts, action{kind: actCancel, target: id})
		} else {
			m.log.Info("press released before hold time; no incident", "hold_ms", m.cfg.HoldMS)
		}
		return append(acts, action{kind: actDone})
	case inHeld:
		m.state = inReleased
		return nil // the press reported its outcome when it raised
	case inIgnored:
		m.state = inReleased
		m.log.Info("button released; it counts again")
		return []action{{kind: actDone}}
	case inStuck:
		m.state = inReleased
		m.log.Info("stuck button released; it counts again", "held", now.Sub(m.since).Round(time.Second))
		return []action{{kind: actFault, fault: faultStuck, on: false}, {kind: actDone}}
	}
	return nil
}

// cancellable returns the incident a press ending now cancels, or "". A cancel is a short press
// that began within the cancel window of the raise: a second long press is a second report,
// because a resident who holds the button again needs help, whatever they pressed before.
func (m *inputMachine) cancellable(now time.Time) string {
	w := m.cfg.CancelWindow()
	switch {
	case m.raisedID == "" || w <= 0:
		return ""
	case m.since.Sub(m.raisedAt) > w:
		return ""
	case now.Sub(m.since) < max(m.cfg.Debounce(), minCancelPress):
		return ""
	}
	return m.raisedID
}

// tick handles the passing of time up to now.
func (m *inputMachine) tick(now time.Time) []action {
	d := m.deadline()
	if d.IsZero() || now.Before(d) {
		return nil
	}
	switch m.state {
	case inPressed:
		m.state, m.raisedAt, m.raisedID = inHeld, d, ""
		// A press held this long is a finger, not noise: the chatter count starts again, so that
		// a busy morning of presses never adds up to a fault.
		m.edges = m.edges[:0]
		if m.tamper {
			return []action{{kind: actRaise}}
		}
		// Raise first, so that the LEDs go from pressing to pending with nothing in between.
		return []action{{kind: actRaise}, {kind: actPressing, on: false}}
	case inHeld, inIgnored:
		m.state = inStuck
		m.log.Error("button held too long; reported as stuck, and no incidents until it is released",
			"stuck_after_ms", m.cfg.StuckAfterMS)
		return []action{{kind: actFault, fault: faultStuck, on: true}}
	case inChatter:
		m.edges = m.edges[:0]
		acts := []action{{kind: actFault, fault: faultChatter, on: false}}
		if !m.active {
			m.state = inReleased
			m.log.Info("input quiet again; it counts again")
			return acts
		}
		// Still active after the quiet period: a finger, or a short, since the last edge. It is
		// a press that began then, so that a resident who hammered the button and then held it
		// is heard.
		m.state, m.since = inPressed, m.lastEdge
		m.log.Info("input quiet again and active; counting it as a press from its last edge")
		if !m.tamper {
			acts = append(acts, action{kind: actPressing, on: true})
		}
		return append(acts, m.tick(now)...)
	}
	return nil
}

// chattering counts an edge at now and reports whether the input has had too many lately.
func (m *inputMachine) chattering(now time.Time) bool {
	cut := now.Add(-m.cfg.ChatterWindow())
	i := 0
	for i < len(m.edges) && !m.edges[i].After(cut) {
		i++
	}
	m.edges = append(slices.Delete(m.edges, 0, i), now)
	return len(m.edges) >= m.cfg.ChatterEdges
}

func (m *inputMachine) enterChatter(now time.Time, active bool) []action {
	var acts []action
	switch m.state {
	case inPressed:
		if !m.tamper {
			acts = append(acts, action{kind: actPressing, on: false})
		}
		acts = append(acts, action{kind: actDone})
	case inStuck:
		acts = append(acts, action{kind: actFault, fault: faultStuck, on: false})
	}
	m.state, m.active, m.lastEdge, m.raisedID = inChatter, active, now, ""
	m.edges = m.edges[:0]
	m.log.Error("input is chattering (loose wire?); ignored until quiet",
		"edges", m.cfg.ChatterEdges, "window_ms", m.cfg.ChatterWindowMS, "quiet_ms", m.cfg.ChatterQuietMS)
	return append(acts, action{kind: actFault, fault: faultChatter, on: true})
}

// lost handles a line that has started returning errors: whatever was going on is void, and the
// line fault (which the driver reports) replaces the machine's own.
func (m *inputMachine) lost() []action {
	var acts []action
	switch m.state {
	case inPressed:
		if !m.tamper {
			acts = append(acts, action{kind: actPressing, on: false})
		}
		acts = append(acts, action{kind: actDone})
	case inStuck:
		acts = append(acts, action{kind: actFault, fault: faultStuck, on: false})
	case inChatter:
		acts = append(acts, action{kind: actFault, fault: faultChatter, on: false})
	}
	m.state, m.raisedID = inLost, ""
	return acts
}

// button drives an inputMachine from one input line: a panic button, or a tamper switch.
type button struct {
	cfg    Button
	pin    gpio.PinIn
	active gpio.Level // the level while pressed (or, for a tamper switch, while open)
	log    *slog.Logger
	clock  clock
	m      *inputMachine // used by run's goroutine only
	// lastEdge is the time given to the last edge, so that edges never go back in time.
	lastEdge time.Time

	// Hooks, set by the daemon (defaults do nothing). None may block for long.
	//
	// pressing is told when a press starts (true) and when it stops counting (false).
	pressing func(b *button, on bool)
	// submit stores and sends an incident, as Daemon.submit does.
	submit func(in mqtt.Incident, what string) (id string, err error)
	// cancelled is told, before the cancel is submitted, that request cancels target.
	cancelled func(target, request string)
	// fault records (text != "") or clears (text == "") the fault under key.
	fault func(key, text string)

	pressMu sync.Mutex // serialises simulated presses of this button

	mu      sync.Mutex
	waiters map[chan pressOutcome]struct{}
	down    bool          // between a press edge and the release edge the logic has seen
	idle    chan struct{} // closed when down becomes false
}

func newButton(cfg Button, pin gpio.PinIn, log *slog.Logger) *button {
	idle := make(chan struct{})
	close(idle)
	active := gpio.Low
	kind := "button"
	if cfg.Kind == KindTamper {
		// The switch is held closed (Low) by the shut enclosure; open, or its wire cut, the
		// pull-up makes it High.
		active, kind = gpio.High, "tamper"
	}
	log = log.With(kind, cfg.Name, "line", pin.Name())
	return &button{cfg: cfg, pin: pin, active: active, log: log, clock: runtimeClock{},
		m:         newInputMachine(cfg, log),
		pressing:  func(*button, bool) {},
		submit:    func(mqtt.Incident, string) (string, error) { return "", nil },
		cancelled: func(string, string) {},
		fault:     func(string, string) {},
		waiters:   make(map[chan pressOutcome]struct{}), idle: idle}
}

func (b *button) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if down == b.down {
		return
	}
	b.down = down
	if down {
		b.idle = make(chan struct{})
	} else {
		close(b.idle)
	}
}

// released returns a channel closed once the logic has seen the current press end, so that a
// simulated press does not start before the last one's release is through the debounce.
func (b *button) released() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.idle
}

// watch returns a channel that receives the outcome of the next press, and a func to stop
// watching.
func (b *button) watch() (<-chan pressOutcome, func()) {
	ch := make(chan pressOutcome, 1)
	b.mu.Lock()
	b.waiters[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.waiters, ch)
		b.mu.Unlock()
	}
}

func (b *button) report(o pressOutcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.waiters {
		select {
		case ch <- o:
		default: // the waiter already has its outcome
		}
	}
}

// faultKey names this input's fault of the given kind in the daemon's fault set.
func (b *button) faultKey(kind string) string { return "input " + b.cfg.Name + " " + kind }

// lineMsg is what the line reader tells the loop.
type lineMsg struct {
	kind   lineMsgKind
	active bool
	at     time.Time // lineEdge: when the backend saw the edge
	err    error
}

type lineMsgKind int

const (
	lineEdge   lineMsgKind = iota
	lineFailed             // the line returned an error
	lineBack               // it answers again; active is its level now
)

// run watches the input until ctx ends.
func (b *button) run(ctx context.Context) {
	msgs := make(chan lineMsg)
	rctx, stop := context.WithCancel(ctx)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		b.read(rctx, msgs)
	}()
	defer func() {
		stop()
		<-readerDone
	}()

	lv, err := b.pin.Read()
	if err != nil {
		// The reader will meet the same error and report it as a fault; until then the button
		// is taken to be at rest, so that a broken line raises nothing.
		b.log.Warn("cannot read input at start-up", "err", err)
		lv = !b.active
	}
	b.lastEdge = b.clock.Now()
	b.setDown(lv == b.active)
	b.do(b.m.start(b.lastEdge, lv == b.active))
	for {
		var tick <-chan time.Time
		stopTick := func() {}
		if d := b.m.deadline(); !d.IsZero() {
			tick, stopTick = b.clock.After(d.Sub(b.clock.Now()))
		}
		select {
		case <-ctx.Done():
			stopTick()
			if b.m.state == inPressed && !b.m.tamper {
				b.pressing(b, false)
			}
			return
		case msg := <-msgs:
			stopTick()
			b.handle(msg)
		case <-tick:
			// An edge already waiting may have happened before the deadline: it goes first.
			for waiting := true; waiting; {
				select {
				case msg := <-msgs:
					b.handle(msg)
				default:
					waiting = false
				}
			}
			b.do(b.m.tick(b.clock.Now()))
		}
	}
}

func (b *button) handle(msg lineMsg) {
	now := b.clock.Now()
	switch msg.kind {
	case lineEdge:
		// The edge counts from when the backend saw it, not from when this loop, perhaps busy
		// or starved on a loaded kiosk, got to it: a release seen after the hold time ends a
		// held press even if the hold timer has not been served yet, and one seen before it a
		// short press. A time from another clock (or none) is replaced by the arrival time.
		at := now
		if t := msg.at; !t.IsZero() && !t.After(now) && !t.Before(b.lastEdge) {
			at = t
		}
		b.lastEdge = at
		b.do(b.m.tick(at))
		b.setDown(msg.active)
		b.do(b.m.edge(at, msg.active))
	case lineFailed:
		b.setDown(false)
		b.do(b.m.lost())
		b.log.Error("input line failed; retrying with back-off", "err", msg.err)
		b.fault(b.faultKey("line"), fmt.Sprintf("%s %s: line %s: %v", b.kindName(), b.cfg.Name, b.pin.Name(), msg.err))
	case lineBack:
		b.log.Info("input line answers again")
		b.fault(b.faultKey("line"), "")
		b.lastEdge = now
		b.setDown(msg.active)
		b.do(b.m.start(now, msg.active))
	}
}

func (b *button) kindName() string {
	if b.m.tamper {
		return "tamper switch"
	}
	return "button"
}

// do carries out what the machine asked for.
func (b *button) do(acts []action) {
	var cancelID string
	for _, a := range acts {
		switch a.kind {
		case actPressing:
			b.pressing(b, a.on)
		case actRaise:
			b.raise()
		case actCancel:
			cancelID = b.cancel(a.target)
		case actFault:
			text := ""
			if a.on {
				switch a.fault {
				case faultStuck:
					text = "stuck button " + b.cfg.Name
				case faultChatter:
					text = fmt.Sprintf("%s %s chattering (loose wire?)", b.kindName(), b.cfg.Name)
				}
			}
			b.fault(b.faultKey(a.fault), text)
		case actDone:
			b.report(pressOutcome{CancelID: cancelID})
		}
	}
}

func (b *button) raise() {
	in := mqtt.Incident{Source: mqtt.SourceButton, Button: b.cfg.Name, Category: b.cfg.Category}
	what := "button " + b.cfg.Name
	if b.m.tamper {
		in.Source, what = mqtt.SourceTamper, "tamper switch "+b.cfg.Name
		b.log.Warn("enclosure opened: raising a tamper incident")
	}
	id, err := b.submit(in, what)
	b.m.raisedID = id
	// An incident the disk would not take is raised all the same (held in memory), with err
	// saying so; with no ID, nothing was raised.
	b.report(pressOutcome{Raised: id != "", IncidentID: id, Err: err})
}

// cancel sends a cancel for the incident target and returns the cancel's own ID, or "".
func (b *button) cancel(target string) string {
	id, err := mqtt.NewIncidentID()
	if err != nil {
		b.log.Error("cannot cancel: no ID for the request", "target", target, "err", err)
		return ""
	}
	// Told first, so that the LEDs never show the cancel itself as a pending report.
	b.cancelled(target, id)
	in := mqtt.Incident{ID: id, Source: mqtt.SourceButton, Button: b.cfg.Name, Category: b.cfg.Category,
		Request: mqtt.RequestCancel, Target: target}
	got, err := b.submit(in, "button "+b.cfg.Name+" cancel")
	if got == "" {
		b.log.Error("CANCEL NOT SENT: the report stands", "target", target, "err", err)
		return ""
	}
	b.log.Info("second press within the cancel window: cancel sent", "target", target, "cancel_id", got)
	return got
}

// read passes the line's edges to msgs until ctx ends. A line that returns errors is reported
// once and retried with back-off, never in a hot loop, until it answers again.
func (b *button) read(ctx context.Context, msgs chan<- lineMsg) {
	var delay time.Duration
	failing := false
	for {
		ev, err := b.pin.WaitForEdge(ctx)
		if ctx.Err() != nil {
			return
		}
		var msg lineMsg
		switch {
		case err != nil:
			delay = min(max(2*delay, minLineRetry), maxLineRetry)
			if failing {
				b.log.Debug("input line still failing", "retry_in", delay, "err", err)
			} else {
				failing = true
				msg = lineMsg{kind: lineFailed, err: err}
				if !send(ctx, msgs, msg) {
					return
				}
			}
			wait, stop := b.clock.After(delay)
			select {
			case <-wait:
			case <-ctx.Done():
				stop()
				return
			}
			continue
		case failing:
			failing, delay = false, 0
			// Edges were lost while the line failed: start again from its level now.
			lv, rerr := b.pin.Read()
			if rerr != nil {
				lv = ev.Level
			}
			msg = lineMsg{kind: lineBack, active: lv == b.active}
		default:
			msg = lineMsg{kind: lineEdge, active: ev.Level == b.active, at: ev.Time}
		}
		if !send(ctx, msgs, msg) {
			return
		}
	}
}

func send(ctx context.Context, ch chan<- lineMsg, m lineMsg) bool {
	select {
	case ch <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// wireButton connects an input to the daemon.
func (d *Daemon) wireButton(b *button) {
	b.pressing = d.setPressing
	b.submit = d.submit
	b.fault = d.setFault
	b.cancelled = func(target, request string) {
		d.cancels.add(d.now(), target, request)
		kick(d.ledKick)
	}
}

// wireLED connects an output to the daemon and returns it.
func (d *Daemon) wireLED(l *led) *led {
	l.fault = d.setFault
	return l
}
