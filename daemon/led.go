package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kentongan/kentongan/daemon/outbox"
	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/mqtt"
)

// LEDView is what one LED shows now.
type LEDView struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Pattern string `json:"pattern"`
	On      bool   `json:"on"` // the pin's level at this instant, so it follows the blinking
}

// display is everything the LED state is derived from.
type display struct {
	Fault     bool
	Pressing  bool
	Pending   int
	Connected bool
	// Newest is the newest incident the hub holds, if any.
	Newest *outbox.Recent
}

// deriveState picks the one state the LEDs show. A press in progress comes first: the resident
// must see at once that the button works, even on a kiosk with a fault elsewhere (another button
// stuck, say), and the press lasts only seconds. A fault comes next because it means a report
// may not reach 112; pending reports outrank news about older ones; news about the newest report
// is shown for displayFor after it arrives; otherwise the LEDs say whether the kiosk can reach
// the hub.
func deriveState(in display, now time.Time, displayFor time.Duration) string {
	switch {
	case in.Pressing:
		return StatePressing
	case in.Fault:
		return StateFault
	case in.Pending > 0:
		return StatePending
	}
	if r := in.Newest; r != nil && now.Sub(r.Updated) < displayFor {
		if s := ticketState(r.Status); s != "" {
			return s
		}
	}
	if in.Connected {
		return StateIdle
	}
	return StateOffline
}

// ticketState maps a hub status to the LED state that shows it; "" for statuses not shown.
func ticketState(s mqtt.AckStatus) string {
	switch s {
	case mqtt.AckReceived, mqtt.AckDuplicate:
		return StateReceived
	case mqtt.AckAcknowledged:
		return StateAcknowledged
	case mqtt.AckDispatched:
		return StateDispatched
	case mqtt.AckResolved, mqtt.AckClosed:
		return StateResolved
	}
	return ""
}

// cancelledReports remembers the reports cancelled by a second press at this kiosk, and the
// cancel requests that did it, so that the LEDs stop showing them: a resident who cancelled
// wants the kiosk back at rest, not blinking "pending" for a report they withdrew. The outbox
// still sends both, so that the hub records the cancel. Memory is enough: an entry matters for
// led_display_time at most, and after a restart the hub's own answers say what became of the
// report. The zero value is ready to use.
type cancelledReports struct {
	mu  sync.Mutex
	ids map[string]time.Time
}

// cancelledKeep bounds the memory: no LED shows a report this old.
const cancelledKeep = 24 * time.Hour

func (c *cancelledReports) add(now time.Time, ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = make(map[string]time.Time)
	}
	for id, at := range c.ids {
		if now.Sub(at) > cancelledKeep {
			delete(c.ids, id)
		}
	}
	for _, id := range ids {
		c.ids[id] = now
	}
}

func (c *cancelledReports) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.ids[id]
	return ok
}

// shown returns how many of the pending incidents the LEDs count as reports, and the newest
// acked one they show (nil for none). Requests about a ticket (a cancel, an SMS status query)
// are not reports, and cancelled reports are not shown.
func (c *cancelledReports) shown(pending []outbox.Entry, recent []outbox.Recent) (int, *outbox.Recent) {
	n := 0
	for _, e := range pending {
		if e.Incident.Request == "" && !c.has(e.Incident.ID) {
			n++
		}
	}
	for _, r := range recent {
		if r.Request == "" && !c.has(r.IncidentID) {
			return n, &r
		}
	}
	return n, nil
}

// step is one level of a pattern, held for dur; a last step with dur 0 is held for good.
type step struct {
	on  bool
	dur time.Duration
}

// pattern is a sequence of steps: repeated, unless its last step is held for good.
type pattern []step

// patternSteps returns a named pattern; an unknown name is off. Blink rates follow the usual
// convention that faster means more urgent.
func patternSteps(p string) pattern {
	switch p {
	case PatternSolid:
		return pattern{{true, 0}}
	case PatternSlowBlink:
		return pattern{{true, 500 * time.Millisecond}, {false, 500 * time.Millisecond}}
	case PatternFastBlink:
		return pattern{{true, 125 * time.Millisecond}, {false, 125 * time.Millisecond}}
	case PatternHeartbeat:
		return pattern{{true, 100 * time.Millisecond}, {false, 1900 * time.Millisecond}}
	case PatternChirp:
		return pattern{{true, 100 * time.Millisecond}, {false, 0}}
	}
	return pattern{{false, 0}}
}

// at returns the level a pattern shows elapsed after it started, and how long until it next
// changes (0: never). Working from the start rather than from the last change means a loop that
// wakes late on a loaded kiosk shows the right level at once and makes the next change on time:
// lateness is never added up into drift.
func (p pattern) at(elapsed time.Duration) (on bool, next time.Duration) {
	if len(p) == 0 {
		return false, 0
	}
	elapsed = max(elapsed, 0)
	if last := p[len(p)-1]; last.dur > 0 {
		var period time.Duration
		for _, s := range p {
			period += s.dur
		}
		elapsed %= period
	}
	for _, s := range p {
		if s.dur == 0 {
			return s.on, 0
		}
		if elapsed < s.dur {
			return s.on, s.dur - elapsed
		}
		elapsed -= s.dur
	}
	return p[len(p)-1].on, 0 // unreachable for a repeating pattern
}

// led drives one PinOut (an LED or a buzzer) through the pattern for the displayed state.
type led struct {
	name     string
	pin      gpio.PinOut
	patterns map[string]string
	log      *slog.Logger
	clock    clock
	// fault records (text != "") or clears (text == "") the fault under key.
	fault func(key, text string)

	set chan string // new pattern; capacity 1, latest wins

	mu      sync.Mutex
	state   string
	pattern string
	on      bool
	failing bool // the pin returned an error; reported once until it recovers
}

func newLED(name string, pin gpio.PinOut, patterns map[string]string, log *slog.Logger) *led {
	return &led{name: name, pin: pin, patterns: patterns, log: log, clock: runtimeClock{},
		fault: func(string, string) {}, set: make(chan string, 1),
		state: StateOffline, pattern: PatternOff}
}

// show switches the LED to state and returns the pattern it will show. A pattern starts again
// from its beginning, so a chirp sounds at every change of state that asks for one.
func (l *led) show(state string) string {
	p := l.patterns[state]
	if p == "" {
		p = PatternOff
	}
	l.mu.Lock()
	l.state, l.pattern = state, p
	l.mu.Unlock()
	// Only the display loop sends, so draining and sending cannot race another sender.
	select {
	case <-l.set:
	default:
	}
	l.set <- p
	return p
}

func (l *led) view() LEDView {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LEDView{Name: l.name, State: l.state, Pattern: l.pattern, On: l.on}
}

func (l *led) out(on bool) {
	err := l.pin.Out(gpio.Level(on))
	l.mu.Lock()
	was := l.failing
	l.failing = err != nil
	if err == nil {
		l.on = on
	}
	l.mu.Unlock()
	key := "output " + l.name + " line"
	switch {
	case err != nil && !was:
		l.log.Error("LED pin failed", "led", l.name, "line", l.pin.Name(), "err", err)
		l.fault(key, fmt.Sprintf("LED %s: line %s: %v", l.name, l.pin.Name(), err))
	case err == nil && was:
		l.log.Info("LED pin works again", "led", l.name, "line", l.pin.Name())
		l.fault(key, "")
	}
}

// run plays the LED's pattern until ctx ends, then turns it off.
func (l *led) run(ctx context.Context) {
	defer l.out(false)
	steps, start := patternSteps(PatternOff), l.clock.Now()
	for {
		on, next := steps.at(l.clock.Now().Sub(start))
		l.out(on)
		var tick <-chan time.Time
		stop := func() {}
		if next > 0 {
			tick, stop = l.clock.After(next)
		}
		select {
		case <-tick:
		case p := <-l.set:
			steps, start = patternSteps(p), l.clock.Now()
		case <-ctx.Done():
			stop()
			return
		}
		stop()
	}
}
