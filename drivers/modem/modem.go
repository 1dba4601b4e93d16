// Package modem drives the kiosk's GSM modem (SIM800L, SIM7600, Quectel EC25/EG25, Huawei E173
// in serial mode) over AT commands in SMS PDU mode.
//
// AT is the command engine over one open port. Modem supervises the device on top of it: it
// opens the port, initialises the modem, polls its health and, when the modem falls silent, the
// port vanishes or the modem restarts, closes the port and starts again with back-off. The
// package never deletes a message on its own: the daemon lists storage after every Ready, keeps
// each report durably, and only then deletes it, so that a report that reached the modem is not
// lost to a crash or a power cut. docs/modem.md describes the quirks handled.
package modem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Config.
const (
	DefaultReadyTimeout   = 30 * time.Second
	DefaultHealthInterval = 30 * time.Second
)

const (
	// maxBackoff caps the wait between reopening attempts.
	maxBackoff = 30 * time.Second
	// powerCycleAfter is how many failures in a row make Run call Config.PowerCycle.
	powerCycleAfter = 3
	// badRoundsLimit is how many health rounds in a row may get nothing usable (only ERROR or
	// unparseable answers) before the modem is re-initialised.
	badRoundsLimit = 3
	// retryPause separates attempts at a command the modem refuses while it boots, so that a
	// modem answering ERROR to everything does not make the driver spin.
	retryPause = time.Second
	// probeTimeout is the wait for each "AT" while waiting for the modem to come up.
	probeTimeout = time.Second
	// closeWait bounds the wait for the reader to stop once the port is closed.
	closeWait = 5 * time.Second
)

// Health states (Health.State).
const (
	StateAbsent    = "absent"     // the port cannot be opened
	StateStarting  = "starting"   // the port is open, the modem is being initialised
	StateNoSIM     = "no_sim"     // no SIM card
	StateSIMLocked = "sim_locked" // wrong or missing PIN, or PUK-locked: not retried
	StateSearching = "searching"  // initialised, not registered on a network
	StateDenied    = "denied"     // the network refuses the SIM
	StateReady     = "ready"      // registered: SMS can be received and sent
	StateError     = "error"      // the last attempt failed; a retry is scheduled
)

// SIM states (Health.SIM).
const (
	SIMReady       = "ready"
	SIMPINRequired = "pin_required"
	SIMPUKRequired = "puk_required"
	SIMNotInserted = "not_inserted"
	SIMUnknown     = "unknown"
)

// Registration states (Health.Registration).
const (
	RegHome          = "home"
	RegRoaming       = "roaming"
	RegSearching     = "searching"
	RegDenied        = "denied"
	RegNotRegistered = "not_registered"
	RegUnknown       = "unknown"
)

// Config configures a Modem. Zero durations take the defaults.
type Config struct {
	Open OpenFunc
	// PIN is the SIM PIN, entered only if AT+CPIN? says SIM PIN, at most once per Modem, and
	// never when the modem says one attempt is left.
	PIN string
	// CommandTimeout is the base command timeout (default 5s); TimeoutFor gives the longer ones.
	CommandTimeout time.Duration
	// ReadyTimeout is how long to wait for the modem to answer AT after opening the port, and
	// for the SIM and SMS service to come up after that (default 30s).
	ReadyTimeout time.Duration
	// HealthInterval is how often Run polls CSQ/CREG/COPS/CPMS (default 30s).
	HealthInterval time.Duration
	// SilenceLimit: no answer for this long makes Run reopen the port (default 2*CommandTimeout).
	SilenceLimit time.Duration
	// PowerCycle, if set, toggles the modem's power or PWRKEY line. Run calls it after every
	// powerCycleAfter failures in a row.
	PowerCycle func(ctx context.Context) error
	Logger     *slog.Logger
	// Now stamps Health.Since (default time.Now). Timeouts use the time package's timers.
	Now func() time.Time
}

// Events are the Modem's callbacks. They are called one at a time, in order, on a goroutine of
// their own, so a callback may call List, Read, Delete or Send. Nil callbacks are skipped.
type Events struct {
	// Ready is called after every successful (re)initialisation: the daemon re-lists storage.
	Ready func()
	// NewMessage is called for +CMTI: a message was stored at index. One that arrives while the
	// modem is (re)initialising may find Read refusing with ErrNotReady; the listing after
	// Ready covers it.
	NewMessage func(storage string, index int)
	// Message is called for +CMT: a message delivered directly rather than stored.
	Message func(pdu string)
	// Health is called whenever Health changes (a change of Garbage alone does not count).
	Health func(Health)
}

// Stored is one message in the modem's storage.
type Stored struct {
	Index int
	Stat  int    // StatUnread, StatRead, StatUnsent or StatSent
	PDU   string // hex, SMSC address first, as the modem gives it
}

// Message states in storage (27.005 <stat> in PDU mode).
const (
	StatUnread = 0
	StatRead   = 1
	StatUnsent = 2
	StatSent   = 3
)

// Health is the modem's condition, for the kiosk's status and heartbeat.
type Health struct {
	State        string // one of the State constants
	SIM          string // one of the SIM constants
	Registration string // one of the Reg constants
	Operator     string // from AT+COPS? in letters, e.g. "TELKOMSEL"
	SignalDBm    int    // from AT+CSQ; 0 when unknown
	SignalRSSI   int    // the raw CSQ value (99: unknown)
	StorageUsed  int    // from AT+CPMS
	StorageTotal int
	LastError    string
	Since        time.Time // when State last changed
	Restarts     int       // how often the port was reopened
	Garbage      int       // lines that could not be understood
}

// Modem is the supervised device. Create it with New and run it with Run.
type Modem struct {
	cfg     Config
	ev      Events
	log     *slog.Logger
	events  *eventQueue
	running atomic.Bool

	mu          sync.Mutex
	sess        *session
	health      Health
	emitted     Health // the last Health handed to Events.Health
	regCS       string
	regEPS      string
	garbageBase int // from closed sessions and unparseable answers
	pinTried    bool
	pinLock     string // why the PIN is not entered again
}

// session is one open port.
type session struct {
	m         *Modem
	at        *AT
	serving   bool // guarded by m.mu
	lte       bool // the modem answers AT+CEREG?
	lifecycle chan string
	simKick   chan struct{}
	suspect   chan struct{}
}

// New returns a Modem; nothing happens until Run.
func New(cfg Config, ev Events) *Modem {
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = DefaultHealthInterval
	}
	if cfg.SilenceLimit <= 0 {
		cfg.SilenceLimit = 2 * cfg.CommandTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Modem{
		cfg:    cfg,
		ev:     ev,
		log:    cfg.Logger,
		events: &eventQueue{kick: make(chan struct{}, 1), log: cfg.Logger},
		regCS:  RegUnknown,
		regEPS: RegUnknown,
	}
	m.health = Health{State: StateStarting, SIM: SIMUnknown, Registration: RegUnknown, SignalRSSI: 99, Since: cfg.Now()}
	m.emitted = m.health
	return m
}

// Health returns the modem's current condition.
func (m *Modem) Health() Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.health
	h.Garbage = m.garbageLocked()
	return h
}

func (m *Modem) garbageLocked() int {
	n := m.garbageBase
	if m.sess != nil {
		n += m.sess.at.Garbage()
	}
	return n
}

// Run opens, initialises and serves the modem until ctx is done, then returns nil. After a
// failure it backs off (1s, 2s, 4s … 30s) and starts again, calling Config.PowerCycle after
// every third failure in a row. It returns an error only for a Config it cannot run.
func (m *Modem) Run(ctx context.Context) error {
	if m.cfg.Open == nil {
		return fmt.Errorf("modem: run: %w: Config.Open is nil", ErrInvalid)
	}
	if !m.running.CompareAndSwap(false, true) {
		return fmt.Errorf("modem: run: %w: already running", ErrInvalid)
	}
	defer m.running.Store(false)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { m.events.run(stop) })
	defer func() {
		close(stop)
		wg.Wait()
	}()

	failures := 0
	for {
		served, err := m.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if served {
			failures = 0
		}
		failures++
		delay := min(time.Second<<min(failures-1, 5), maxBackoff)
		m.log.Info("modem: will reopen the port", "after", delay, "failures_in_a_row", failures, "err", err)
		if m.cfg.PowerCycle != nil && failures%powerCycleAfter == 0 {
			m.log.Warn("modem: power-cycling the modem", "failures_in_a_row", failures)
			if err := m.cfg.PowerCycle(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("modem: power cycle failed", "err", err)
				m.update(func(h *Health) { h.LastError = "power cycle: " + err.Error() })
			}
		}
		if !sleep(ctx, delay) {
			return nil
		}
		m.update(func(h *Health) { h.Restarts++ })
	}
}

// session runs one open port: it returns when the port must be closed. served says whether
// the modem got as far as Ready.
func (m *Modem) session(ctx context.Context) (served bool, err error) {
	rw, err := m.cfg.Open()
	if err != nil {
		err = fmt.Errorf("open modem port: %w", err)
		m.fail(StateAbsent, err)
		return false, err
	}
	s := &session{
		m:         m,
		lifecycle: make(chan string, 4),
		simKick:   make(chan struct{}, 1),
		suspect:   make(chan struct{}, 1),
	}
	s.at = NewAT(rw, s.onURC, m.log)
	m.mu.Lock()
	m.sess = s
	m.mu.Unlock()
	m.update(func(h *Health) { h.State = StateStarting })
	defer func() {
		m.mu.Lock()
		s.serving = false
		m.mu.Unlock()
		s.at.Close()
		// Closing a tty ends a blocked read only at the read timeout; a port whose Close does
		// not end a read at all must not keep Run from reopening.
		t := time.NewTimer(closeWait)
		select {
		case <-s.at.Done():
		case <-t.C:
			m.log.Warn("modem: the reader did not stop after the port was closed", "waited", closeWait)
		}
		t.Stop()
		m.mu.Lock()
		m.garbageBase += s.at.Garbage()
		m.sess = nil
		m.mu.Unlock()
	}()

	if err := m.initialise(ctx, s); err != nil {
		if ctx.Err() == nil {
			m.fail(StateError, err)
		}
		return false, err
	}
	m.mu.Lock()
	s.serving = true
	m.mu.Unlock()
	h := m.update(func(h *Health) { h.State = stateFor(h.Registration) })
	m.log.Info("modem: ready", "state", h.State, "operator", h.Operator, "signal_dbm", h.SignalDBm,
		"storage_used", h.StorageUsed, "storage_total", h.StorageTotal)
	if m.ev.Ready != nil {
		m.events.push(m.ev.Ready)
	}
	err = m.serve(ctx, s)
	if ctx.Err() == nil {
		m.fail(StateError, err)
	}
	return true, err
}

// fail records a failure in Health and the log.
func (m *Modem) fail(state string, err error) {
	m.log.Warn("modem failed", "state", state, "err", err)
	m.update(func(h *Health) {
		h.State = state
		h.LastError = err.Error()
	})
}

// update changes Health and tells Events.Health if anything but Garbage changed.
func (m *Modem) update(f func(*Health)) Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.health.State
	f(&m.health)
	if m.health.State != old {
		m.health.Since = m.cfg.Now()
	}
	h := m.health
	h.Garbage = m.garbageLocked()
	cmp := h
	cmp.Garbage = m.emitted.Garbage
	if cmp != m.emitted && m.ev.Health != nil {
		m.emitted = h
		m.events.push(func() { m.ev.Health(h) })
	}
	return h
}

// command runs cmd with its timeout from the table.
func (m *Modem) command(ctx context.Context, at *AT, cmd string) ([]string, error) {
	return at.Command(ctx, cmd, TimeoutFor(cmd, m.cfg.CommandTimeout))
}

// fatal reports whether err ends the session: the port is gone, the modem stopped answering,
// or Run is stopping.
func fatal(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, ErrTimeout) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// initialise runs the start-up sequence of docs/modem.md.
func (m *Modem) initialise(ctx context.Context, s *session) error {
	at := s.at
	if err := m.waitAT(ctx, at); err != nil {
		return err
	}
	if _, err := m.command(ctx, at, "ATE0"); err != nil {
		if fatal(err) {
			return fmt.Errorf("initialise: %w", err)
		}
		m.log.Warn("modem: cannot turn echo off; answers are parsed with echo on", "err", err)
	}
	if _, err := m.command(ctx, at, "AT+CMEE=1"); err != nil {
		if fatal(err) {
			return fmt.Errorf("initialise: %w", err)
		}
		m.log.Debug("modem: AT+CMEE=1 refused; errors will be plain ERROR", "err", err)
	}
	if err := m.unlockSIM(ctx, s); err != nil {
		return err
	}
	if _, err := m.command(ctx, at, "AT+CREG=1"); err != nil {
		if fatal(err) {
			return fmt.Errorf("initialise: %w", err)
		}
		m.log.Warn("modem: AT+CREG=1 refused; registration changes show at the next health poll", "err", err)
	}
	if err := m.pollRegistration(ctx, s, true); err != nil && fatal(err) {
		return fmt.Errorf("initialise: %w", err)
	}
	if _, err := m.command(ctx, at, "AT+COPS=3,0"); err != nil && fatal(err) {
		return fmt.Errorf("initialise: %w", err)
	}
	if _, err := m.pollOperator(ctx, at); err != nil && fatal(err) {
		return fmt.Errorf("initialise: %w", err)
	}
	if _, err := m.pollSignal(ctx, at); err != nil && fatal(err) {
		return fmt.Errorf("initialise: %w", err)
	}
	if err := m.setUpSMS(ctx, at); err != nil {
		return fmt.Errorf("initialise SMS: %w", err)
	}
	return nil
}

// waitAT sends AT once a second until OK: the modem may still be booting, and a SIM800L
// learns the baud rate from it.
func (m *Modem) waitAT(ctx context.Context, at *AT) error {
	start := time.Now()
	for {
		_, err := at.Command(ctx, "AT", min(probeTimeout, m.cfg.CommandTimeout))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return fmt.Errorf("wait for modem: %w", err)
		}
		if time.Since(start) >= m.cfg.ReadyTimeout {
			return fmt.Errorf("modem did not answer AT within %v (last: %w)", m.cfg.ReadyTimeout, err)
		}
		if !errors.Is(err, ErrTimeout) && !sleep(ctx, retryPause) {
			return fmt.Errorf("wait for modem: %w", ctx.Err())
		}
	}
}

// simStatus is what AT+CPIN? said.
type simStatus int

const (
	simBusy simStatus = iota // not ready yet, ask again
	simOK
	simPIN
	simPUK
	simAbsent
	simBlocked // locked by something the driver does not unlock (PH-SIM PIN and the like)
)

// unlockSIM returns once the SIM is ready. Without a SIM, or with a SIM it may not unlock, it
// keeps the port open and asks again every HealthInterval, never entering a PIN twice.
func (m *Modem) unlockSIM(ctx context.Context, s *session) error {
	start := time.Now()
	for {
		st, detail, err := m.querySIM(ctx, s.at)
		if err != nil && fatal(err) {
			return fmt.Errorf("query SIM: %w", err)
		}
		switch st {
		case simOK:
			m.update(func(h *Health) { h.SIM = SIMReady })
			return nil
		case simBusy:
			if time.Since(start) >= m.cfg.ReadyTimeout {
				return fmt.Errorf("SIM not ready after %v: %s", m.cfg.ReadyTimeout, detail)
			}
			if !sleep(ctx, retryPause) {
				return ctx.Err()
			}
			continue
		case simPIN:
			reason, err := m.enterPIN(ctx, s.at)
			if err != nil {
				return err
			}
			if reason == "" {
				continue // accepted: ask again until the SIM says READY
			}
			m.waiting(StateSIMLocked, SIMPINRequired, reason)
		case simPUK:
			m.waiting(StateSIMLocked, SIMPUKRequired, "SIM is PUK-locked after three wrong PINs; unlock it with its PUK in a phone")
		case simAbsent:
			m.waiting(StateNoSIM, SIMNotInserted, "no SIM card: "+detail)
		case simBlocked:
			m.waiting(StateSIMLocked, SIMUnknown, "SIM or modem locked: "+detail+"; the driver does not unlock it")
		}
		if err := m.waitSIM(ctx, s); err != nil {
			return err
		}
		start = time.Now()
	}
}

// waiting records a state the session waits in, logging it once rather than at every look.
func (m *Modem) waiting(state, sim, reason string) {
	m.mu.Lock()
	same := m.health.State == state && m.health.LastError == reason
	m.mu.Unlock()
	m.update(func(h *Health) {
		h.State = state
		h.SIM = sim
		h.LastError = reason
	})
	if !same {
		m.log.Warn("modem: waiting for the SIM", "state", state, "reason", reason)
	}
}

// waitSIM waits for the next look at the SIM: HealthInterval, or a +CPIN URC.
func (m *Modem) waitSIM(ctx context.Context, s *session) error {
	t := time.NewTimer(m.cfg.HealthInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.at.Done():
		return fmt.Errorf("wait for SIM: %w", s.at.closedErr())
	case reason := <-s.lifecycle:
		return errors.New(reason)
	case <-s.simKick:
	case <-t.C:
	}
	return nil
}

func (m *Modem) querySIM(ctx context.Context, at *AT) (simStatus, string, error) {
	lines, err := m.command(ctx, at, "AT+CPIN?")
	if err != nil {
		switch c := cmeCode(err); c {
		case 10:
			return simAbsent, "SIM not inserted", nil
		case 13, 15:
			return simAbsent, cmeTexts[c], nil
		case 11:
			return simPIN, "", nil
		case 12:
			return simPUK, "", nil
		case 5, 6, 7, 40, 41:
			return simBlocked, cmeTexts[c], nil
		}
		if cmsCode(err) == 310 {
			return simAbsent, "SIM not inserted", nil
		}
		return simBusy, err.Error(), err
	}
	for _, l := range lines {
		if prefixOf(l) != "+CPIN" {
			continue
		}
		f := fields(l)
		if len(f) == 0 {
			break
		}
		switch v := strings.ToUpper(f[0].v); v {
		case "READY", "SIM PIN2", "SIM PUK2":
			return simOK, v, nil
		case "SIM PIN":
			return simPIN, v, nil
		case "SIM PUK":
			return simPUK, v, nil
		case "NOT INSERTED", "NO SIM", "SIM REMOVED":
			return simAbsent, v, nil
		case "NOT READY", "SIM BUSY":
			return simBusy, v, nil
		default:
			return simBlocked, v, nil
		}
	}
	m.badAnswer("AT+CPIN?", lines)
	return simBusy, "no +CPIN line in the answer", nil
}

// enterPIN sends the configured PIN if it may. It returns why the SIM stays locked, "" if the
// PIN was accepted, or an error that ends the session.
func (m *Modem) enterPIN(ctx context.Context, at *AT) (string, error) {
	if m.cfg.PIN == "" {
		return "SIM PIN required but none configured", nil
	}
	if !validPIN(m.cfg.PIN) {
		return "SIM PIN required, but the configured PIN is not 4 to 8 digits; it was not sent", nil
	}
	if m.pinTried {
		if m.pinLock == "" {
			m.pinLock = "SIM PIN required again after the configured PIN was entered; not entered twice (three wrong PINs lock the SIM)"
		}
		return m.pinLock, nil
	}
	if n, ok := m.pinAttemptsLeft(ctx, at); ok && n <= 1 {
		return fmt.Sprintf("SIM PIN required, and the SIM has %d attempt(s) left; the PIN is not entered automatically (unlock the SIM by hand)", n), nil
	}
	m.pinTried = true
	m.log.Info("modem: entering the SIM PIN")
	_, err := m.command(ctx, at, `AT+CPIN="`+m.cfg.PIN+`"`)
	switch {
	case err == nil:
		m.log.Info("modem: SIM PIN accepted")
		return "", nil
	case fatal(err):
		m.pinLock = fmt.Sprintf("the SIM PIN got no answer (%v); not entered again", err)
		return "", fmt.Errorf("enter SIM PIN: %w", err)
	case errors.Is(err, ErrWrongPIN):
		m.pinLock = fmt.Sprintf("%v (%v); not retried, since three wrong PINs lock the SIM: fix the PIN in the configuration and restart", ErrWrongPIN, err)
	default:
		m.pinLock = fmt.Sprintf("SIM PIN entry failed (%v); not retried", err)
	}
	return m.pinLock, nil
}

func validPIN(pin string) bool {
	return len(pin) >= 4 && len(pin) <= 8 && isNumber(pin)
}

// pinAttemptsLeft asks, in each vendor's way, how many PIN attempts the SIM has left.
func (m *Modem) pinAttemptsLeft(ctx context.Context, at *AT) (int, bool) {
	probes := []struct {
		cmd   string
		name  string
		field int
	}{
		{`AT+CPINR="SIM PIN"`, "+CPINR", 1}, // 27.007: +CPINR: SIM PIN,<retries>,<default>
		{"AT+SPIC", "+SPIC", 0},             // SIMCom: +SPIC: <pin1>,<puk1>,<pin2>,<puk2>
		{`AT+QPINC="SC"`, "+QPINC", 1},      // Quectel: +QPINC: "SC",<pin>,<puk>
		{"AT^CPIN?", "^CPIN", 3},            // Huawei: ^CPIN: <code>,<times>,<puk>,<pin>,<puk2>,<pin2>
	}
	for _, p := range probes {
		lines, err := m.command(ctx, at, p.cmd)
		if err != nil {
			if fatal(err) {
				return 0, false
			}
			continue
		}
		for _, l := range lines {
			if prefixOf(l) != p.name {
				continue
			}
			f := fields(l)
			if len(f) > p.field {
				if n, err := strconv.Atoi(f[p.field].v); err == nil && n >= 0 {
					m.log.Info("modem: SIM PIN attempts left", "attempts", n, "from", p.cmd)
					return n, true
				}
			}
		}
	}
	return 0, false
}

// pollRegistration asks AT+CREG? and, on a modem that knows it, AT+CEREG?.
func (m *Modem) pollRegistration(ctx context.Context, s *session, first bool) error {
	lines, err := m.command(ctx, s.at, "AT+CREG?")
	if err != nil && fatal(err) {
		return err
	}
	good := false
	if err == nil {
		if st, ok := regStat(lines, "+CREG"); ok {
			good = true
			m.setReg(&m.regCS, st)
		} else {
			m.badAnswer("AT+CREG?", lines)
		}
	}
	if first || s.lte {
		lines, err := m.command(ctx, s.at, "AT+CEREG?")
		if err != nil && fatal(err) {
			return err
		}
		s.lte = err == nil
		if err == nil {
			if st, ok := regStat(lines, "+CEREG"); ok {
				good = true
				m.setReg(&m.regEPS, st)
			}
		}
	}
	if !good {
		return errNoAnswer
	}
	return nil
}

// errNoAnswer marks a health poll that got no usable answer.
var errNoAnswer = errors.New("no usable answer")

func regStat(lines []string, name string) (int, bool) {
	for _, l := range lines {
		if prefixOf(l) != name {
			continue
		}
		f := fields(l)
		if len(f) >= 2 {
			if n, err := strconv.Atoi(f[1].v); err == nil {
				return n, true
			}
		}
	}
	return 0, false
}

// setReg records one domain's registration and derives Health from both: a modem on LTE may
// be "not registered" for circuit-switched service and "home" on EPS.
func (m *Modem) setReg(dst *string, stat int) {
	m.mu.Lock()
	*dst = regName(stat)
	reg := betterReg(m.regCS, m.regEPS)
	serving := m.sess != nil && m.sess.serving
	m.mu.Unlock()
	m.update(func(h *Health) {
		h.Registration = reg
		if serving {
			h.State = stateFor(reg)
		}
	})
}

func (m *Modem) pollOperator(ctx context.Context, at *AT) (bool, error) {
	lines, err := m.command(ctx, at, "AT+COPS?")
	if err != nil {
		return false, err
	}
	for _, l := range lines {
		if prefixOf(l) != "+COPS" {
			continue
		}
		op := ""
		if f := fields(l); len(f) >= 3 {
			op = f[2].v
		}
		m.update(func(h *Health) { h.Operator = op })
		return true, nil
	}
	m.badAnswer("AT+COPS?", lines)
	return false, nil
}

func (m *Modem) pollSignal(ctx context.Context, at *AT) (bool, error) {
	lines, err := m.command(ctx, at, "AT+CSQ")
	if err != nil {
		return false, err
	}
	for _, l := range lines {
		if prefixOf(l) != "+CSQ" {
			continue
		}
		f := fields(l)
		if len(f) == 0 {
			break
		}
		rssi, err := strconv.Atoi(f[0].v)
		if err != nil || rssi < 0 {
			break
		}
		m.update(func(h *Health) {
			h.SignalRSSI = rssi
			h.SignalDBm = SignalDBm(rssi)
		})
		return true, nil
	}
	m.badAnswer("AT+CSQ", lines)
	return false, nil
}

func (m *Modem) pollStorage(ctx context.Context, at *AT, cmd string) (bool, error) {
	lines, err := m.command(ctx, at, cmd)
	if err != nil {
		return false, err
	}
	if used, total, ok := storageUse(lines); ok {
		m.update(func(h *Health) {
			h.StorageUsed = used
			h.StorageTotal = total
		})
		return true, nil
	}
	m.badAnswer(cmd, lines)
	return false, nil
}

// storageUse reads the first <used>,<total> pair of a +CPMS line, which comes with storage
// names from AT+CPMS? and without from AT+CPMS=.
func storageUse(lines []string) (used, total int, ok bool) {
	for _, l := range lines {
		if prefixOf(l) != "+CPMS" {
			continue
		}
		f := fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i].quoted || f[i+1].quoted {
				continue
			}
			u, err1 := strconv.Atoi(f[i].v)
			t, err2 := strconv.Atoi(f[i+1].v)
			if err1 == nil && err2 == nil && u >= 0 && t >= 0 {
				return u, t, true
			}
		}
	}
	return 0, 0, false
}

func (m *Modem) badAnswer(cmd string, lines []string) {
	m.mu.Lock()
	m.garbageBase++
	m.mu.Unlock()
	m.log.Debug("modem: answer not understood", "cmd", cmd, "lines", lines)
}

// setUpSMS selects PDU mode, the SIM as message storage and +CMTI indications. A SIM800L
// refuses these until it has printed "SMS Ready", so they are retried within ReadyTimeout.
func (m *Modem) setUpSMS(ctx context.Context, at *AT) error {
	start := time.Now()
	retry := func(what string, f func() error) error {
		for {
			err := f()
			if err == nil || fatal(err) {
				return err
			}
			if time.Since(start) >= m.cfg.ReadyTimeout {
				return fmt.Errorf("%s: %w", what, err)
			}
			m.log.Debug("modem: SMS service not ready; retrying", "what", what, "err", err)
			if !sleep(ctx, retryPause) {
				return ctx.Err()
			}
		}
	}
	if err := retry("PDU mode", func() error {
		_, err := m.command(ctx, at, "AT+CMGF=0")
		return err
	}); err != nil {
		return err
	}
	if err := retry("message storage", func() error {
		_, err := m.pollStorage(ctx, at, `AT+CPMS="SM","SM","SM"`)
		// "ME" only once the SIM has had a fair chance: right after boot "SM" fails because
		// the SIM is busy, and messages kept on the SIM are worth the wait.
		if err == nil || fatal(err) || time.Since(start) < m.cfg.ReadyTimeout/3 {
			return err
		}
		if _, errME := m.pollStorage(ctx, at, `AT+CPMS="ME","ME","ME"`); errME != nil {
			return fmt.Errorf("SIM storage: %w; modem storage: %w", err, errME)
		}
		m.log.Warn("modem: SIM message storage refused; using the modem's own", "err", err)
		return nil
	}); err != nil {
		return err
	}
	return retry("new-message indications", func() error {
		_, err := m.command(ctx, at, "AT+CNMI=2,1,0,0,0")
		if err == nil || fatal(err) {
			return err
		}
		if _, err2 := m.command(ctx, at, "AT+CNMI=1,1,0,0,0"); err2 != nil {
			return fmt.Errorf("%w; AT+CNMI=1,1,0,0,0: %w", err, err2)
		}
		return nil
	})
}

// serve polls health until the session must end.
func (m *Modem) serve(ctx context.Context, s *session) error {
	tick := time.NewTicker(m.cfg.HealthInterval)
	defer tick.Stop()
	bad := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.at.Done():
			return s.at.closedErr()
		case reason := <-s.lifecycle:
			return errors.New(reason)
		case <-tick.C:
		case <-s.suspect:
		}
		sent, err := m.probe(ctx, s)
		switch {
		case err == nil:
			bad = 0
		case errors.Is(err, ErrTimeout):
			if err := m.silence(ctx, s, sent); err != nil {
				return err
			}
		case fatal(err):
			return err
		default:
			if bad++; bad >= badRoundsLimit {
				return fmt.Errorf("modem answers nothing usable to %d health polls in a row (last: %w)", bad, err)
			}
			m.log.Warn("modem: health poll got no usable answer", "err", err, "in_a_row", bad)
		}
	}
}

// probe polls the health commands. It returns nil if at least one gave a usable answer; with a
// timeout, sent is when the unanswered command was sent.
func (m *Modem) probe(ctx context.Context, s *session) (sent time.Time, err error) {
	good := false
	var last error
	steps := []func() (bool, error){
		func() (bool, error) { return m.pollSignal(ctx, s.at) },
		func() (bool, error) {
			err := m.pollRegistration(ctx, s, false)
			if err == errNoAnswer {
				return false, nil
			}
			return err == nil, err
		},
		func() (bool, error) { return m.pollOperator(ctx, s.at) },
		func() (bool, error) { return m.pollStorage(ctx, s.at, "AT+CPMS?") },
	}
	for _, step := range steps {
		sent = time.Now()
		ok, err := step()
		if err != nil {
			if fatal(err) {
				return sent, err
			}
			last = err
		}
		good = good || ok
	}
	if !good {
		if last == nil {
			last = fmt.Errorf("%w to AT+CSQ, AT+CREG?, AT+COPS?, AT+CPMS?", ErrBadResponse)
		}
		return sent, last
	}
	return sent, nil
}

// silence sends AT until the modem answers or has been silent since since for SilenceLimit.
func (m *Modem) silence(ctx context.Context, s *session, since time.Time) error {
	m.log.Warn("modem: a health poll got no answer; checking whether the modem is alive")
	for {
		left := m.cfg.SilenceLimit - time.Since(since)
		if left <= 0 {
			return fmt.Errorf("modem silent for %v: %w", time.Since(since).Round(time.Millisecond), ErrTimeout)
		}
		_, err := s.at.Command(ctx, "AT", min(left, m.cfg.CommandTimeout))
		if err == nil || !fatal(err) {
			return nil // OK or ERROR: it is alive
		}
		if !errors.Is(err, ErrTimeout) {
			return err
		}
	}
}

// onURC runs on the reader goroutine: it only records and queues.
func (s *session) onURC(u URC) {
	m := s.m
	switch u.Kind {
	case URCNewMessage:
		m.log.Info("modem: new message stored", "storage", u.Storage, "index", u.Index)
		if m.ev.NewMessage != nil {
			m.events.push(func() { m.ev.NewMessage(u.Storage, u.Index) })
		}
	case URCMessage:
		m.log.Info("modem: message delivered directly (+CMT)")
		if m.ev.Message != nil {
			m.events.push(func() { m.ev.Message(u.PDU) })
		}
	case URCRegistration:
		switch prefixOf(u.Line) {
		case "+CREG":
			m.setReg(&m.regCS, u.Stat)
		case "+CEREG":
			m.setReg(&m.regEPS, u.Stat)
		}
	case URCReady:
		if s.isServing() {
			s.signal("modem restarted (RDY); re-initialising")
		}
	case URCSIM:
		v := ""
		if f := fields(u.Line); len(f) > 0 {
			v = strings.ToUpper(f[0].v)
		}
		if v != "READY" && s.isServing() {
			s.signal("SIM no longer ready (" + u.Line + "); re-initialising")
			return
		}
		kick(s.simKick)
	case URCPowerDown:
		if strings.Contains(strings.ToUpper(u.Line), "WARN") {
			m.log.Warn("modem: supply voltage warning; the modem may brown out (check the power supply and cable)", "urc", u.Line)
			m.update(func(h *Health) { h.LastError = "supply voltage warning: " + u.Line })
			return
		}
		s.signal("modem powered down (" + u.Line + "); if this repeats, check the power supply")
	case URCRing:
		m.log.Info("modem: incoming call ignored")
	}
}

func (s *session) isServing() bool {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.serving
}

func (s *session) signal(reason string) {
	s.m.log.Warn("modem: " + reason)
	select {
	case s.lifecycle <- reason:
	default:
	}
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// SignalDBm converts an AT+CSQ rssi to dBm: 0 → -113, 1 → -111, 2..30 → -109..-53,
// 31 → -51 or better, 99 (unknown) and anything else → 0.
func SignalDBm(rssi int) int {
	if rssi < 0 || rssi > 31 {
		return 0
	}
	return -113 + 2*rssi
}

// regName names a 27.007 <stat> of +CREG/+CGREG/+CEREG.
func regName(stat int) string {
	switch stat {
	case 0, 8: // 8: emergency services only
		return RegNotRegistered
	case 1, 6, 9: // 6, 9: home, SMS only / CSFB not preferred
		return RegHome
	case 2:
		return RegSearching
	case 3:
		return RegDenied
	case 5, 7, 10:
		return RegRoaming
	}
	return RegUnknown
}

var regRank = map[string]int{RegHome: 5, RegRoaming: 4, RegSearching: 3, RegDenied: 2, RegNotRegistered: 1, RegUnknown: 0}

func betterReg(a, b string) string {
	if regRank[b] > regRank[a] {
		return b
	}
	return a
}

func stateFor(reg string) string {
	switch reg {
	case RegHome, RegRoaming:
		return StateReady
	case RegDenied:
		return StateDenied
	}
	return StateSearching
}

// sleep waits d or until ctx is done; it reports whether the wait was complete.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// eventQueue hands events to the callbacks on one goroutine, in order, so that the reader
// never waits for the daemon and a callback may send commands.
type eventQueue struct {
	mu    sync.Mutex
	items []func()
	kick  chan struct{}
	log   *slog.Logger
}

// maxQueuedEvents bounds the queue if the daemon stops taking events. A +CMTI dropped here is
// not a lost message: the message stays in storage and is listed after the next Ready.
const maxQueuedEvents = 1024

func (q *eventQueue) push(f func()) {
	q.mu.Lock()
	if len(q.items) >= maxQueuedEvents {
		q.mu.Unlock()
		q.log.Error("modem: event queue full; event dropped (stored messages are listed again at the next Ready)")
		return
	}
	q.items = append(q.items, f)
	q.mu.Unlock()
	kick(q.kick)
}

func (q *eventQueue) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-q.kick:
		}
		for {
			q.mu.Lock()
			if len(q.items) == 0 {
				q.mu.Unlock()
				break
			}
			f := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			select {
			case <-stop:
				return
			default:
			}
			f()
		}
	}
}
