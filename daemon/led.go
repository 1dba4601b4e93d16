package daemon

import (
	"context"
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

// deriveState picks the one state the LEDs show. A fault outranks everything because it means a
// report may not reach 112; a press in progress gives the resident immediate feedback; pending
// reports outrank news about older ones; news about the newest report is shown for displayFor
// after it arrives; otherwise the LEDs say whether the kiosk can reach the hub.
func deriveState(in display, now time.Time, displayFor time.Duration) string {
	switch {
	case in.Fault:
		return StateFault
	case in.Pressing:
		return StatePressing
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

type step struct {
	on  bool
	dur time.Duration // 0: hold until the pattern changes
}

// patternSteps are the on/off sequences, repeated. Blink rates follow the usual convention that
// faster means more urgent.
func patternSteps(p string) []step {
	switch p {
	case PatternSolid:
		return []step{{true, 0}}
	case PatternSlowBlink:
		return []step{{true, 500 * time.Millisecond}, {false, 500 * time.Millisecond}}
	case PatternFastBlink:
		return []step{{true, 125 * time.Millisecond}, {false, 125 * time.Millisecond}}
	case PatternHeartbeat:
		return []step{{true, 100 * time.Millisecond}, {false, 1900 * time.Millisecond}}
	}
	return []step{{false, 0}}
}

// led drives one PinOut through the pattern for the displayed state.
type led struct {
	name     string
	pin      gpio.PinOut
	patterns map[string]string
	log      *slog.Logger

	set chan string // new pattern; capacity 1, latest wins

	mu      sync.Mutex
	state   string
	pattern string
	on      bool
	failing bool // the pin returned an error; logged once until it recovers
}

func newLED(name string, pin gpio.PinOut, patterns map[string]string, log *slog.Logger) *led {
	return &led{name: name, pin: pin, patterns: patterns, log: log, set: make(chan string, 1),
		state: StateOffline, pattern: PatternOff}
}

// show switches the LED to state and returns the pattern it will show.
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
	defer l.mu.Unlock()
	if err != nil {
		if !l.failing {
			l.log.Error("LED pin failed", "led", l.name, "pin", l.pin.Name(), "err", err)
		}
		l.failing = true
		return
	}
	l.failing = false
	l.on = on
}

// run blinks the LED until ctx ends, then turns it off.
func (l *led) run(ctx context.Context) {
	defer l.out(false)
	pattern := PatternOff
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		steps := patternSteps(pattern)
	blink:
		for i := 0; ; i = (i + 1) % len(steps) {
			l.out(steps[i].on)
			var tick <-chan time.Time
			if steps[i].dur > 0 {
				timer.Reset(steps[i].dur)
				tick = timer.C
			}
			select {
			case <-tick:
			case p := <-l.set:
				timer.Stop()
				pattern = p
				break blink
			case <-ctx.Done():
				return
			}
		}
	}
}
