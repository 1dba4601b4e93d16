package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/modem"
	"github.com/kentongan/kentongan/provisioning"
)

// selfTest is one run of the self-test; events grow as it goes.
type selfTest struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	events []provisioning.Event
	prompt string // the button awaited, or ""
	over   bool
	passed bool
}

func (s *selfTest) emit(e provisioning.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	if e.Step == provisioning.StepButton && e.Status == provisioning.StepPrompt {
		s.prompt = e.Button
	} else if e.Step == provisioning.StepButton {
		s.prompt = ""
	}
}

func (s *selfTest) finished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.over
}

// ledWalkOn is how long each LED is lit in the walk: long enough to see, short enough that a
// kiosk with a buzzer and three LEDs is through in two seconds.
const ledWalkOn = 500 * time.Millisecond

// SelfTest starts the self-test on the kiosk's configuration; Poll follows it.
func (p *Provisioner) SelfTest(_ context.Context, req provisioning.SelfTest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return provisioning.Refuse(provisioning.CodeState, "kentongand is shutting down")
	}
	if p.test != nil && !p.test.finished() {
		// A laptop that lost the answer asks again: the running test is the one it wants.
		return nil
	}
	gen, err := currentGen(p.cfg.StateDir)
	if err != nil || gen == "" {
		return provisioning.Refuse(provisioning.CodeState, "this kiosk is not provisioned yet")
	}
	cfg, err := LoadConfig(p.ConfigPath())
	if err != nil {
		return provisioning.Refuse(provisioning.CodeConfig, "the stored configuration does not load: %v", err)
	}
	press := p.cfg.PressTimeout
	if req.PressTimeoutMS > 0 {
		press = time.Duration(req.PressTimeoutMS) * time.Millisecond
	}
	// The self-test outlives the session: a pulled cable must not leave the kiosk stopped.
	ctx, cancel := context.WithCancel(context.Background())
	st := &selfTest{cancel: cancel, done: make(chan struct{})}
	p.test = st
	// The buttons and LEDs are tested on their pins, before the daemon reads them: a press now
	// must not raise a report.
	p.stopDaemonLocked()
	go p.runSelfTest(ctx, st, cfg, press)
	return nil
}

// Poll returns the self-test's events from req.After on.
func (p *Provisioner) Poll(_ context.Context, req provisioning.Poll) (provisioning.PollReply, error) {
	p.mu.Lock()
	st := p.test
	p.mu.Unlock()
	if st == nil {
		return provisioning.PollReply{}, provisioning.Refuse(provisioning.CodeState, "no self-test has run")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	after := min(max(req.After, 0), len(st.events))
	return provisioning.PollReply{Events: append([]provisioning.Event{}, st.events[after:]...), Done: st.over, Passed: st.passed}, nil
}

// SelfTestPrompt is the button the self-test is waiting for, or "".
func (p *Provisioner) SelfTestPrompt() string {
	p.mu.Lock()
	st := p.test
	p.mu.Unlock()
	if st == nil {
		return ""
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.prompt
}

// PressSim presses a button of the simulated chip (gpio.driver sim) for hold, whether or not
// the daemon runs yet: it is how tests and demos press buttons for the self-test.
func (p *Provisioner) PressSim(ctx context.Context, button string, hold time.Duration) error {
	p.mu.Lock()
	d := p.daemon
	if d == nil && p.test != nil {
		d = p.selfTestDaemon
	}
	p.mu.Unlock()
	if d == nil {
		return ErrNotRunning
	}
	if d.sim == nil {
		return ErrNotSim
	}
	b := d.buttons[button]
	if b == nil {
		return fmt.Errorf("%w %q", ErrUnknownButton, button)
	}
	return d.sim.Line(b.cfg.Pin).Tap(ctx, hold)
}

func (p *Provisioner) runSelfTest(ctx context.Context, st *selfTest, cfg Config, press time.Duration) {
	passed := true
	step := func(e provisioning.Event) {
		if e.Status == provisioning.StepFailed {
			passed = false
		}
		st.emit(e)
	}
	defer func() {
		st.mu.Lock()
		st.over, st.passed = true, passed
		st.mu.Unlock()
		close(st.done)
	}()

	d, err := New(cfg, p.cfg.Options...)
	if err != nil {
		step(provisioning.Event{Step: provisioning.StepLEDs, Status: provisioning.StepFailed, Detail: "cannot open the kiosk's hardware: " + err.Error()})
		p.restartAfterTest(nil)
		return
	}
	p.mu.Lock()
	p.selfTestDaemon = d
	p.mu.Unlock()
	started := false
	defer func() {
		if !started {
			p.restartAfterTest(d)
		}
	}()

	// LEDs: lit one at a time, for the technician to watch.
	step(provisioning.Event{Step: provisioning.StepLEDs, Status: provisioning.StepRunning})
	var failed []string
	for _, l := range d.leds {
		errOn := l.pin.Out(gpio.High)
		sleep(ctx, ledWalkOn)
		errOff := l.pin.Out(gpio.Low)
		if err := errors.Join(errOn, errOff); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", l.name, err))
		}
	}
	switch {
	case len(failed) > 0:
		step(provisioning.Event{Step: provisioning.StepLEDs, Status: provisioning.StepFailed, Detail: fmt.Sprint(failed)})
	case len(d.leds) == 0:
		step(provisioning.Event{Step: provisioning.StepLEDs, Status: provisioning.StepSkipped, Detail: "no LEDs configured"})
	default:
		step(provisioning.Event{Step: provisioning.StepLEDs, Status: provisioning.StepOK, Detail: fmt.Sprintf("%d lit in turn", len(d.leds))})
	}

	// Buttons: each pressed by the technician.
	for _, b := range d.order {
		if b.cfg.Kind == KindTamper {
			step(provisioning.Event{Step: provisioning.StepButton, Button: b.cfg.Name, Status: provisioning.StepSkipped, Detail: "tamper switch"})
			continue
		}
		step(provisioning.Event{Step: provisioning.StepButton, Button: b.cfg.Name, Status: provisioning.StepPrompt})
		if err := waitPress(ctx, b, press); err != nil {
			step(provisioning.Event{Step: provisioning.StepButton, Button: b.cfg.Name, Status: provisioning.StepFailed, Detail: err.Error()})
			continue
		}
		step(provisioning.Event{Step: provisioning.StepButton, Button: b.cfg.Name, Status: provisioning.StepOK, Detail: "pressed"})
	}
	if ctx.Err() != nil {
		return
	}

	// The daemon runs from here on, and the rest is tested through it.
	p.mu.Lock()
	if err := d.Start(ctx); err != nil {
		p.mu.Unlock()
		step(provisioning.Event{Step: provisioning.StepHub, Status: provisioning.StepFailed, Detail: "cannot start kentongand: " + err.Error()})
		return
	}
	started = true
	p.daemon, p.selfTestDaemon = d, nil
	p.mu.Unlock()

	if cfg.Modem.Enabled() {
		step(provisioning.Event{Step: provisioning.StepModem, Status: provisioning.StepRunning})
		ok, detail := p.waitModem(ctx, d)
		step(provisioning.Event{Step: provisioning.StepModem, Status: okOr(ok), Detail: detail})
	} else {
		step(provisioning.Event{Step: provisioning.StepModem, Status: provisioning.StepSkipped, Detail: "no modem configured"})
	}

	step(provisioning.Event{Step: provisioning.StepHub, Status: provisioning.StepRunning})
	if !waitFor(ctx, p.cfg.HubTimeout, d.connected) {
		step(provisioning.Event{Step: provisioning.StepHub, Status: provisioning.StepFailed,
			Detail: fmt.Sprintf("no connection to %s within %s with the new certificate", cfg.Broker.URL, p.cfg.HubTimeout)})
		step(provisioning.Event{Step: provisioning.StepIncident, Status: provisioning.StepSkipped, Detail: "not connected"})
		return
	}
	step(provisioning.Event{Step: provisioning.StepHub, Status: provisioning.StepOK, Detail: "connected to " + cfg.Broker.URL})

	step(provisioning.Event{Step: provisioning.StepIncident, Status: provisioning.StepRunning})
	id, err := d.submit(testIncident(), "self-test")
	if err != nil {
		step(provisioning.Event{Step: provisioning.StepIncident, Status: provisioning.StepFailed, Detail: err.Error()})
		return
	}
	var ticket string
	if !waitFor(ctx, p.cfg.HubTimeout, func() bool {
		for _, in := range d.Status().Incidents {
			if in.ID == id && in.State != StatePending {
				ticket = in.TicketNumber
				return true
			}
		}
		return false
	}) {
		step(provisioning.Event{Step: provisioning.StepIncident, Status: provisioning.StepFailed, Detail: "the hub did not confirm the test report within " + p.cfg.HubTimeout.String()})
		return
	}
	step(provisioning.Event{Step: provisioning.StepIncident, Status: provisioning.StepOK, Detail: "received by the hub as a test, ticket " + ticket})
}

// restartAfterTest puts the kiosk back to work after a self-test that stopped before starting
// d: d itself if it can, else a daemon made again from the configuration.
func (p *Provisioner) restartAfterTest(d *Daemon) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.selfTestDaemon = nil
	if p.closed {
		if d != nil {
			d.Close()
		}
		return
	}
	if d != nil {
		if err := d.Start(context.Background()); err == nil {
			p.daemon = d
			return
		}
		d.Close()
	}
	if err := p.startDaemonLocked(context.Background()); err != nil {
		p.log.Error("cannot restart the operational daemon after the self-test", "err", err)
	}
}

// waitPress waits for the button to be pressed, on its pin.
func waitPress(ctx context.Context, b *button, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ev, err := b.pin.WaitForEdge(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("not pressed within %s", timeout)
		}
		if err != nil {
			return fmt.Errorf("line %s: %w", b.pin.Name(), err)
		}
		if ev.Level == b.active {
			return nil
		}
	}
}

func (p *Provisioner) waitModem(ctx context.Context, d *Daemon) (bool, string) {
	var last string
	ok := waitFor(ctx, p.cfg.HubTimeout, func() bool {
		m := d.sms.heartbeat()
		if m == nil {
			return false
		}
		last = fmt.Sprintf("state %s, SIM %s, registration %s, signal %d dBm", m.State, m.SIM, m.Registration, m.SignalDBm)
		if m.Error != "" {
			last += ", error: " + m.Error
		}
		return m.State == modem.StateReady && (m.Registration == modem.RegHome || m.Registration == modem.RegRoaming)
	})
	if last == "" {
		last = "the modem did not answer"
	}
	return ok, last
}

func okOr(ok bool) string {
	if ok {
		return provisioning.StepOK
	}
	return provisioning.StepFailed
}

// waitFor polls cond until it holds, timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || !sleep(ctx, 50*time.Millisecond) {
			return false
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
