package modemtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultCapacity     = 30
	DefaultBootDelay    = 50 * time.Millisecond
	DefaultReadyDelay   = 100 * time.Millisecond
	DefaultCommandDelay = 2 * time.Millisecond
	DefaultSendDelay    = 50 * time.Millisecond
	DefaultSMSC         = "+6281100000"
	DefaultOperator     = "TELKOMSEL"
	DefaultOperatorCode = "51010"
	DefaultRSSI         = 20
	DefaultPUK          = "12345678"
)

// maxCapacity bounds the SIM storage; real SIMs hold 10 to 50 messages.
const maxCapacity = 255

// historyLimit bounds the command log so that a long-running demo does not grow without bound.
const historyLimit = 4096

var (
	// ErrClosed is returned by a Sim used after Close.
	ErrClosed = errors.New("modemtest: simulator closed")
	// ErrBadOption is returned by New for Options it cannot emulate.
	ErrBadOption = errors.New("modemtest: bad option")
	// ErrNoPart is returned by DeliverParts for a part number the message does not have.
	ErrNoPart = errors.New("modemtest: no such part")
)

// Options configure a Sim. Zero fields take the defaults above. A negative delay means none.
type Options struct {
	// PIN, when set, locks the SIM at every power-up until AT+CPIN="<PIN>". Three wrong PINs
	// lock it behind PUK (the count survives power cycles, as it lives on the SIM).
	PIN string
	// PUK unlocks a SIM locked by wrong PINs: AT+CPIN="<PUK>","<new PIN>".
	PUK string
	// Capacity is the number of SIM storage slots.
	Capacity int
	// BootDelay is the time from power-up to RDY; the modem ignores input meanwhile.
	BootDelay time.Duration
	// ReadyDelay is the time from RDY (or a correct PIN) to "Call Ready"/"SMS Ready", before
	// which SMS commands answer +CMS ERROR: 302.
	ReadyDelay time.Duration
	// CommandDelay is how long the modem takes to answer a command.
	CommandDelay time.Duration
	// SendDelay is how long the network takes to accept an SMS after Ctrl-Z.
	SendDelay time.Duration
	// SMSC is the service centre put into delivered PDUs and answered to AT+CSCA?.
	SMSC string
	// Operator is the network name answered to AT+COPS? (format 0); OperatorCode is the
	// MCC/MNC answered with format 2.
	Operator     string
	OperatorCode string
	// RSSI is answered to AT+CSQ: 0..31 or 99. Zero means DefaultRSSI; SetRSSI(0) gives 0.
	RSSI int
	// Logger receives what the modem sees and says, at debug level. Nil discards.
	Logger *slog.Logger
	// Now is the clock for SMS timestamps and Sent.At. Nil is time.Now.
	Now func() time.Time
	// Seed seeds the bytes of Garbage, so that a failing test can be replayed.
	Seed uint64
}

// Placement says where an injected URC goes inside a command's answer.
type Placement int

const (
	// BeforeFinal puts the URC just before the final result code (OK, ERROR).
	BeforeFinal Placement = iota
	// AfterFirst puts it after the first entry of the answer (between the first and second
	// +CMGL entries of a listing), or before the final result code when there is no entry.
	AfterFirst
)

// Sent is an SMS the code under test sent: the parts of a concatenated message are joined once
// all of them arrived.
type Sent struct {
	To    string
	Text  string
	Parts int
	PDUs  []string // as typed after the > prompt, in arrival order
	At    time.Time
}

type phase int

const (
	phaseOff     phase = iota
	phaseBooting       // powered, not answering yet
	phaseAT            // RDY printed: answers commands, SMS not ready
	phaseSMS           // Call Ready, SMS Ready
)

type simState int

const (
	simReady simState = iota
	simPIN
	simPUK
)

// settings are the modem's volatile settings, reset at power-up.
type settings struct {
	echo       bool
	cmee       int
	cregN      int
	cnmi       [5]int
	textMode   bool
	copsFormat int
	cfun       int
	cscs       string
	smsc       string
}

// input is the state of the modem's command reader.
type input struct {
	line     []byte
	overflow bool
	pdu      bool   // between the > prompt and Ctrl-Z or ESC
	pduLen   int    // the length given to AT+CMGS
	fail     string // FailNext result kept for the answer to the PDU
}

type message struct {
	pdu  string
	stat int // 0 REC UNREAD, 1 REC READ, 2 STO UNSENT, 3 STO SENT
}

type failRule struct{ prefix, result string }

type injection struct {
	prefix string
	urc    string
	pdus   []string // a delivery made while the command is answered
	at     Placement
}

type concatKey struct {
	to    string
	ref   uint16
	total int
}

type partial struct {
	texts map[int]string
	pdus  []string
}

// Sim is a simulated SIM800L on the far end of a pty. All methods are safe for concurrent use.
type Sim struct {
	opts Options // defaults applied
	log  *slog.Logger
	dir  string
	path string

	plugMu sync.Mutex // serialises Unplug, Replug and Close
	wg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	ln          *link
	power       bool
	epoch       uint64 // bumped at every power change; stale timers and answers check it
	phase       phase
	cfg         settings
	in          input
	sim         simState
	pin         string
	wrongPIN    int
	slots       []*message // slot i is index i+1
	backlog     []string
	deletes     map[int]int
	netStat     int
	lastReg     int
	rssi        int
	mr          int
	ref         uint16
	fails       []failRule
	injections  []injection
	errorAll    bool
	hang        bool
	garbage     bool
	rng         *rand.Rand
	commands    []string
	sent        []Sent
	sentPDUs    []string
	partials    map[concatKey]*partial
	sentChanged chan struct{}
	powerCycles int
}

// New starts a simulated modem, powered and booting, behind a fresh pty whose slave is reachable
// at Path.
func New(opts Options) (*Sim, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "modemtest-")
	if err != nil {
		return nil, fmt.Errorf("make directory for the modem's device link: %w", err)
	}
	s := &Sim{
		opts:        o,
		log:         o.Logger,
		dir:         dir,
		path:        filepath.Join(dir, "ttyModem"),
		pin:         o.PIN,
		slots:       make([]*message, o.Capacity),
		deletes:     make(map[int]int),
		netStat:     1,
		rssi:        o.RSSI,
		rng:         rand.New(rand.NewPCG(o.Seed, o.Seed^0x6b656e746f6e67)),
		partials:    make(map[concatKey]*partial),
		sentChanged: make(chan struct{}),
	}
	if s.pin != "" {
		s.sim = simPIN
	}
	if err := s.plug(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func resolve(o Options) (Options, error) {
	if o.Capacity < 0 || o.Capacity > maxCapacity {
		return o, fmt.Errorf("%w: capacity %d, want 1..%d", ErrBadOption, o.Capacity, maxCapacity)
	}
	if o.Capacity == 0 {
		o.Capacity = DefaultCapacity
	}
	if o.PIN != "" && !validPIN(o.PIN, 4, 8) {
		return o, fmt.Errorf("%w: PIN %q, want 4 to 8 digits", ErrBadOption, o.PIN)
	}
	if o.PUK == "" {
		o.PUK = DefaultPUK
	}
	if !validPIN(o.PUK, 8, 8) {
		return o, fmt.Errorf("%w: PUK %q, want 8 digits", ErrBadOption, o.PUK)
	}
	if o.RSSI == 0 {
		o.RSSI = DefaultRSSI
	}
	if !validRSSI(o.RSSI) {
		return o, fmt.Errorf("%w: RSSI %d, want 0..31 or 99", ErrBadOption, o.RSSI)
	}
	o.BootDelay = delay(o.BootDelay, DefaultBootDelay)
	o.ReadyDelay = delay(o.ReadyDelay, DefaultReadyDelay)
	o.CommandDelay = delay(o.CommandDelay, DefaultCommandDelay)
	o.SendDelay = delay(o.SendDelay, DefaultSendDelay)
	if o.SMSC == "" {
		o.SMSC = DefaultSMSC
	}
	if o.Operator == "" {
		o.Operator = DefaultOperator
	}
	if o.OperatorCode == "" {
		o.OperatorCode = DefaultOperatorCode
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

func delay(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func validPIN(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func validRSSI(v int) bool { return (v >= 0 && v <= 31) || v == 99 }

// Path is the device to open, a symlink to the current pty slave. It stays the same across
// Replug, as a udev rule's /dev/serial/by-id name does.
func (s *Sim) Path() string { return s.path }

// Close powers the modem off, hangs up the line, removes Path and waits for the simulator's
// goroutines.
func (s *Sim) Close() error {
	s.plugMu.Lock()
	defer s.plugMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.powerOffLocked()
	close(s.sentChanged)
	s.mu.Unlock()
	err := s.unplug()
	s.wg.Wait()
	if rerr := os.RemoveAll(s.dir); err == nil && rerr != nil {
		err = fmt.Errorf("remove the modem's device directory: %w", rerr)
	}
	return err
}

// plug attaches a new pty at Path and boots the modem. The caller holds plugMu or owns s.
func (s *Sim) plug() error {
	ln, err := openLink()
	if err != nil {
		return err
	}
	// Re-point Path atomically, so that a reopen never finds a half-made link.
	tmp := s.path + ".new"
	os.Remove(tmp)
	if err := os.Symlink(ln.slave.Name(), tmp); err != nil {
		ln.close()
		return fmt.Errorf("link %s to the pty: %w", s.path, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		os.Remove(tmp)
		ln.close()
		return fmt.Errorf("link %s to the pty: %w", s.path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln = ln
	s.wg.Add(2)
	go s.serve(ln)
	go func() {
		defer s.wg.Done()
		ln.writeLoop()
	}()
	s.log.Debug("modem plugged", "path", s.path, "pty", ln.slave.Name())
	s.bootLocked()
	return nil
}

// unplug powers the modem off and hangs up its line. The caller holds plugMu.
func (s *Sim) unplug() error {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	s.powerOffLocked()
	s.mu.Unlock()
	if ln == nil {
		return nil
	}
	err := os.Remove(s.path)
	if cerr := ln.close(); err == nil && cerr != nil {
		err = fmt.Errorf("hang up the pty: %w", cerr)
	}
	s.log.Debug("modem unplugged", "path", s.path)
	return err
}

// Unplug pulls the USB cable: the line hangs up (the host's reads fail with EIO), Path
// disappears, and the modem is off. Unplugging an unplugged modem does nothing.
func (s *Sim) Unplug() error {
	s.plugMu.Lock()
	defer s.plugMu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	return s.unplug()
}

// Replug plugs the cable back in (unplugging it first if it was plugged): a new pty, Path
// re-pointed to it, and the modem boots again.
func (s *Sim) Replug() error {
	s.plugMu.Lock()
	defer s.plugMu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	if err := s.unplug(); err != nil {
		return err
	}
	s.mu.Lock()
	s.powerCycles++
	s.mu.Unlock()
	return s.plug()
}

func (s *Sim) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// PowerOff cuts the modem's power (its PWRKEY or supply line): silence, input ignored. SIM
// storage survives; settings do not.
func (s *Sim) PowerOff() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.power {
		s.powerOffLocked()
	}
}

// PowerOn powers an off modem, which boots again. It does nothing to a modem that is on or
// unplugged.
func (s *Sim) PowerOn() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.power || s.ln == nil {
		return
	}
	s.powerCycles++
	s.bootLocked()
}

// PowerCycles counts the boots after the first: PowerOn, Replug, Brownout and AT+CFUN=1,1.
func (s *Sim) PowerCycles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.powerCycles
}

// Powered reports whether the modem is on (booting or booted).
func (s *Sim) Powered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.power
}

// Brownout emulates a SIM800L on a weak supply: it prints "UNDER-VOLTAGE POWER DOWN" and
// restarts (RDY after BootDelay).
func (s *Sim) Brownout() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.power {
		return
	}
	s.urcLocked("UNDER-VOLTAGE POWER DOWN")
	s.powerOffLocked()
	s.powerCycles++
	s.bootLocked()
}

func (s *Sim) powerOffLocked() {
	s.epoch++
	s.power = false
	s.phase = phaseOff
	s.in = input{}
	s.lastReg = 0
}

func (s *Sim) bootLocked() {
	s.epoch++
	s.power = true
	s.phase = phaseBooting
	s.in = input{}
	s.cfg = defaultSettings(s.opts.SMSC)
	s.lastReg = 0
	s.hang = false // what cures a hung SIM800L in the field
	if s.pin != "" && s.sim == simReady {
		s.sim = simPIN
	}
	s.log.Debug("modem booting")
	s.afterLocked(s.opts.BootDelay, s.rdyLocked)
}

func defaultSettings(smsc string) settings {
	return settings{echo: true, cfun: 1, cscs: "IRA", smsc: smsc}
}

func (s *Sim) rdyLocked() {
	s.phase = phaseAT
	s.urcLocked("RDY")
	s.urcLocked("+CFUN: 1")
	s.urcLocked("+CPIN: " + s.pinStateLocked())
	if s.sim == simReady {
		s.afterLocked(s.opts.ReadyDelay, s.smsReadyLocked)
	}
}

func (s *Sim) smsReadyLocked() {
	s.phase = phaseSMS
	s.urcLocked("Call Ready")
	s.urcLocked("SMS Ready")
	s.regChangedLocked()
	s.flushLocked()
}

// afterLocked runs fn under s.mu after d, unless the modem was power-cycled or closed meanwhile.
func (s *Sim) afterLocked(d time.Duration, fn func()) {
	ep := s.epoch
	time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || s.epoch != ep {
			return
		}
		fn()
	})
}

// emitLocked sends bytes to the host, unless the modem is off, unplugged or hung.
func (s *Sim) emitLocked(text string) {
	if s.ln == nil || !s.power || s.hang || text == "" {
		return
	}
	b := []byte(text)
	if s.garbage {
		for i := range b {
			b[i] = byte(s.rng.Uint32())
		}
	}
	s.ln.push(b)
}

func (s *Sim) urcLocked(line string) {
	s.log.Debug("modem URC", "urc", line)
	s.emitLocked("\r\n" + line + "\r\n")
}

// Emit sends an unsolicited line now, framed as the modem frames its URCs, e.g.
// "UNDER-VOLTAGE WARNNING" (sic, as the SIM800L spells it).
func (s *Sim) Emit(urc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.urcLocked(urc)
}

// FailNext makes the next command starting with prefix ("AT+CMGS", or "+CMGS") answer result
// instead, e.g. "+CMS ERROR: 500". An AT+CMGS still gives its prompt, and the failure answers the
// PDU, as when the network refuses a message; it is then not in Sent. Rules queue up and are
// used once each.
func (s *Sim) FailNext(prefix, result string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, failRule{prefix: normalizePrefix(prefix), result: result})
}

// InjectURC puts urc inside the answer to the next command starting with prefix.
func (s *Sim) InjectURC(prefix, urc string, at Placement) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.injections = append(s.injections, injection{prefix: normalizePrefix(prefix), urc: urc, at: at})
}

func normalizePrefix(p string) string {
	p = strings.ToUpper(strings.TrimSpace(p))
	if !strings.HasPrefix(p, "AT") {
		p = "AT" + p
	}
	return p
}

// SetErrorAll makes the modem answer ERROR to every command, as a half-booted SIM800L does. It
// lasts until SetErrorAll(false), power cycles included.
func (s *Sim) SetErrorAll(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errorAll = on
}

// Hang makes the modem silent: it keeps reading (commands are logged) but neither executes nor
// answers anything, and its URCs are lost, until Hang(false) or the next boot (a power cycle is
// what cures a hung SIM800L).
func (s *Sim) Hang(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = on
	s.in = input{}
}

// Garbage replaces every byte the modem sends with a random one, as a wrong baud rate or a loose
// wire does. Commands are still executed.
func (s *Sim) Garbage(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.garbage = on
}

// SetRegistration sets the network's answer to registration (the stat of +CREG: 0 not
// registered, 1 home, 2 searching, 3 denied, 4 unknown, 5 roaming). A change is announced with
// +CREG when AT+CREG=1 or 2 is set. Without 1 or 5 no SMS is received (the network holds them)
// or sent (+CMS ERROR: 331). Other values are ignored.
func (s *Sim) SetRegistration(stat int) {
	if stat < 0 || stat > 5 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.netStat = stat
	s.regChangedLocked()
}

// SetRSSI sets the signal answered to AT+CSQ (0..31, 99 unknown); other values are ignored.
func (s *Sim) SetRSSI(v int) {
	if !validRSSI(v) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rssi = v
}

// PINState is the SIM's answer to AT+CPIN?: "READY", "SIM PIN" or "SIM PUK".
func (s *Sim) PINState() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pinStateLocked()
}

func (s *Sim) pinStateLocked() string {
	switch s.sim {
	case simPIN:
		return "SIM PIN"
	case simPUK:
		return "SIM PUK"
	}
	return "READY"
}

// registrationLocked is the stat the modem reports: the network's, once the modem is up with
// its SIM unlocked and its radio on.
func (s *Sim) registrationLocked() int {
	if !s.power || s.phase != phaseSMS || s.sim != simReady || s.cfg.cfun != 1 {
		return 0
	}
	return s.netStat
}

func (s *Sim) registeredLocked() bool {
	st := s.registrationLocked()
	return st == 1 || st == 5
}

func (s *Sim) regChangedLocked() {
	st := s.registrationLocked()
	if st == s.lastReg {
		return
	}
	s.lastReg = st
	switch {
	case s.cfg.cregN == 1 || (s.cfg.cregN == 2 && st != 1 && st != 5):
		s.urcLocked(fmt.Sprintf("+CREG: %d", st))
	case s.cfg.cregN == 2:
		s.urcLocked(fmt.Sprintf(`+CREG: %d,"%s","%s"`, st, lac, cellID))
	}
	s.flushLocked()
}

// Commands returns the command lines the modem received, oldest first (at most the last few
// thousand). The hex typed after an AT+CMGS prompt is one entry, ending in "\x1a" (sent) or
// "\x1b" (aborted).
func (s *Sim) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *Sim) logCommandLocked(c string) {
	s.log.Debug("modem command", "cmd", c)
	if len(s.commands) >= historyLimit {
		s.commands = append(s.commands[:0], s.commands[len(s.commands)-historyLimit/2:]...)
	}
	s.commands = append(s.commands, c)
}

// Sent returns the SMS sent so far, complete messages only, in the order they completed.
func (s *Sim) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneSent(s.sent)
}

// SentPDUs returns every PDU the network accepted (each part of a concatenated message on its
// own), in order.
func (s *Sim) SentPDUs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sentPDUs...)
}

// WaitSent waits until at least n messages were sent and returns them all. It returns what was
// sent so far with ctx's error, or ErrClosed, if that comes first.
func (s *Sim) WaitSent(ctx context.Context, n int) ([]Sent, error) {
	for {
		s.mu.Lock()
		got := cloneSent(s.sent)
		ch, closed := s.sentChanged, s.closed
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		if closed {
			return got, ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return got, fmt.Errorf("wait for %d sent SMS, have %d: %w", n, len(got), ctx.Err())
		}
	}
}

func cloneSent(in []Sent) []Sent {
	out := make([]Sent, len(in))
	for i, m := range in {
		m.PDUs = append([]string(nil), m.PDUs...)
		out[i] = m
	}
	return out
}
