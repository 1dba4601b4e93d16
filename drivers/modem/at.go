package modem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// DefaultCommandTimeout is how long a command waits for its final result unless the command
// needs longer (see TimeoutFor).
const DefaultCommandTimeout = 5 * time.Second

// promptTimeout bounds the wait for AT+CMGS's "> ": the modem prompts at once or not at all,
// unlike the send itself, whose time the network decides.
const promptTimeout = 10 * time.Second

// escapeTimeout bounds writing the ESC that abandons a half-sent message.
const escapeTimeout = time.Second

const (
	// maxLine is the longest line kept (a PDU line is at most about 350 characters); longer
	// lines are noise and are discarded whole.
	maxLine = 4096
	// maxResponseLines bounds one answer: listing a full 255-slot ME storage is 510 lines.
	maxResponseLines = 2048
	// maxEmptyReads turns a reader that keeps returning nothing into an error instead of a
	// hot loop, as bufio does.
	maxEmptyReads = 100
	// maxCommand is the longest command line modems accept (the SIM800 takes 556 characters).
	maxCommand = 556
	// maxTPDU is the largest SMS-SUBMIT TPDU (23.040: 7 header octets, a 12-octet address, a
	// 7-octet validity period and 140 octets of user data).
	maxTPDU = 164
)

// TimeoutFor returns how long cmd may take: base for most commands, longer for those the
// network or a slow listing decides.
func TimeoutFor(cmd string, base time.Duration) time.Duration {
	if base <= 0 {
		base = DefaultCommandTimeout
	}
	up := strings.ToUpper(cmd)
	var t time.Duration
	switch {
	case strings.HasPrefix(up, "AT+CMGS"):
		t = 60 * time.Second
	case strings.HasPrefix(up, "AT+COPS=?"):
		t = 180 * time.Second // a full network scan
	case up == "AT+COPS?":
		t = 30 * time.Second
	case strings.HasPrefix(up, "AT+CMGL"):
		t = 60 * time.Second // a full storage at 9600 baud takes most of a minute
	}
	return max(t, base)
}

// AT is the command engine over one open port: one command in flight at a time, answers
// separated from unsolicited result codes by a reader goroutine.
type AT struct {
	rw  io.ReadWriteCloser
	urc func(URC)
	log *slog.Logger

	sem    chan struct{} // holds a token while a command is in flight
	writes chan writeReq
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when the reader stops

	mu  sync.Mutex
	cur *pending
	cmt *URC  // a +CMT header waiting for its PDU line
	err error // why the reader stopped

	garbage   atomic.Int64
	closeOnce sync.Once
	closeErr  error
}

type pending struct {
	cmd        string // as sent, without the "\r"
	name       string // commandName(cmd)
	lines      []string
	overflow   bool
	wantPrompt bool
	prompted   bool
	prompt     chan struct{} // closed when the "> " arrives
	pduEcho    string        // the PDU written after the prompt, echoed back when echo is on
	done       chan result   // receives the final result once
}

type result struct {
	lines []string
	err   error
}

type writeReq struct {
	b   []byte
	res chan error
}

// NewAT starts the engine over rw. urc is called on the reader goroutine for every
// unsolicited result code, so it must return quickly and must not send commands; it may be nil.
// A nil log discards.
func NewAT(rw io.ReadWriteCloser, urc func(URC), log *slog.Logger) *AT {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if rw == nil {
		rw = noPort{}
	}
	a := &AT{
		rw:     rw,
		urc:    urc,
		log:    log,
		sem:    make(chan struct{}, 1),
		writes: make(chan writeReq),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go a.readLoop()
	go a.writeLoop()
	return a
}

// noPort stands in for a nil port: every command fails with ErrClosed instead of a panic.
type noPort struct{}

func (noPort) Read([]byte) (int, error)  { return 0, fmt.Errorf("%w: no port given", ErrInvalid) }
func (noPort) Write([]byte) (int, error) { return 0, fmt.Errorf("%w: no port given", ErrInvalid) }
func (noPort) Close() error              { return nil }

// Done is closed when the reader stops: end-of-file, a read error or Close.
func (a *AT) Done() <-chan struct{} { return a.done }

// Err returns why the reader stopped, or nil while it runs.
func (a *AT) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Garbage returns how many lines were discarded as unreadable: not text, too long, or text
// that is neither an answer nor a known URC.
func (a *AT) Garbage() int { return int(a.garbage.Load()) }

// Close closes the port, which stops the reader; a command in flight fails with ErrClosed.
func (a *AT) Close() error {
	a.closeOnce.Do(func() {
		close(a.stop)
		a.closeErr = a.rw.Close()
	})
	return a.closeErr
}

// Command sends cmd and returns its information lines once the final result comes. The
// timeout (TimeoutFor(cmd, DefaultCommandTimeout) if <= 0) starts when the command is sent:
// waiting for another command to finish is bounded by ctx only, so that a slow AT+CMGS does not
// make a health probe look like a silent modem.
//
// Final results map to errors: ERROR → ErrError, "+CME ERROR" → *CMEError, "+CMS ERROR" →
// *CMSError, NO CARRIER and the like → *ResultError. No final result in time → ErrTimeout; the
// port closed or failed → ErrClosed. Errors are wrapped with the command (a PIN is redacted).
func (a *AT) Command(ctx context.Context, cmd string, timeout time.Duration) ([]string, error) {
	if err := checkCommand(cmd); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = TimeoutFor(cmd, DefaultCommandTimeout)
	}
	if err := a.acquire(ctx); err != nil {
		return nil, a.wrap(cmd, err, timeout)
	}
	defer a.release()
	timer := time.NewTimer(timeout)
	defer timer.Stop()

	p := a.begin(cmd, false)
	a.log.Debug("modem: sending", "cmd", redact(cmd))
	if err := a.write(ctx, timer.C, []byte(cmd+"\r")); err != nil {
		a.abandon(p)
		return nil, a.wrap(cmd, err, timeout)
	}
	lines, err := a.wait(ctx, timer.C, p)
	if err != nil {
		return lines, a.wrap(cmd, err, timeout)
	}
	return lines, nil
}

// SendPDU sends one SMS in PDU mode: AT+CMGS=<tpduLen>, then, after the "> " prompt, pduHex
// (SMSC address included, as 27.005 wants it) and Ctrl-Z. It returns the message reference
// from "+CMGS: <mr>", or -1 if the modem answered OK without one. If the prompt does not come
// in time, or anything fails after it, an ESC is written so that the modem leaves the prompt
// rather than take the next command as message text.
func (a *AT) SendPDU(ctx context.Context, tpduLen int, pduHex string, timeout time.Duration) (mr int, err error) {
	if err := checkPDU(tpduLen, pduHex); err != nil {
		return -1, err
	}
	cmd := "AT+CMGS=" + strconv.Itoa(tpduLen)
	if timeout <= 0 {
		timeout = TimeoutFor(cmd, DefaultCommandTimeout)
	}
	if err := a.acquire(ctx); err != nil {
		return -1, a.wrap(cmd, err, timeout)
	}
	defer a.release()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	promptTimer := time.NewTimer(min(timeout, promptTimeout))
	defer promptTimer.Stop()

	p := a.begin(cmd, true)
	a.log.Debug("modem: sending", "cmd", cmd)
	if err := a.write(ctx, promptTimer.C, []byte(cmd+"\r")); err != nil {
		a.abandon(p)
		a.escape(err)
		return -1, a.wrap(cmd, err, timeout)
	}
	select {
	case <-p.prompt:
	case r := <-p.done:
		if r.err == nil {
			r.err = fmt.Errorf("%w: OK without a > prompt", ErrBadResponse)
		}
		return -1, a.wrap(cmd, r.err, timeout)
	case <-promptTimer.C:
		a.abandon(p)
		a.escape(ErrTimeout)
		return -1, fmt.Errorf("%s: waiting for the > prompt: %w (%v)", cmd, ErrTimeout, min(timeout, promptTimeout))
	case <-ctx.Done():
		a.abandon(p)
		a.escape(ctx.Err())
		return -1, a.wrap(cmd, ctx.Err(), timeout)
	case <-a.done:
		return -1, a.wrap(cmd, a.closedErr(), timeout)
	}

	a.mu.Lock()
	p.pduEcho = pduHex
	a.mu.Unlock()
	if err := a.write(ctx, timer.C, []byte(pduHex+"\x1a")); err != nil {
		a.abandon(p)
		a.escape(err)
		return -1, a.wrap(cmd, err, timeout)
	}
	lines, err := a.wait(ctx, timer.C, p)
	if err != nil {
		a.escape(err)
		return -1, a.wrap(cmd, err, timeout)
	}
	for _, l := range lines {
		if prefixOf(l) != "+CMGS" {
			continue
		}
		if f := fields(l); len(f) > 0 {
			if n, err := strconv.Atoi(f[0].v); err == nil && n >= 0 {
				return n, nil
			}
		}
	}
	a.log.Warn("modem: message sent without a message reference", "lines", lines)
	return -1, nil
}

func (a *AT) acquire(ctx context.Context) error {
	select {
	case a.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-a.done:
		return a.closedErr()
	case <-a.stop:
		return ErrClosed
	}
}

func (a *AT) release() { <-a.sem }

func (a *AT) begin(cmd string, wantPrompt bool) *pending {
	p := &pending{
		cmd:        cmd,
		name:       commandName(cmd),
		wantPrompt: wantPrompt,
		prompt:     make(chan struct{}),
		done:       make(chan result, 1),
	}
	a.mu.Lock()
	a.cur = p
	a.mu.Unlock()
	return p
}

// abandon stops routing answers to p: whatever comes for it later is dropped as a late answer.
func (a *AT) abandon(p *pending) {
	a.mu.Lock()
	if a.cur == p {
		a.cur = nil
	}
	a.mu.Unlock()
}

func (a *AT) wait(ctx context.Context, expired <-chan time.Time, p *pending) ([]string, error) {
	select {
	case r := <-p.done:
		return r.lines, r.err
	case <-expired:
		a.abandon(p)
		return nil, ErrTimeout
	case <-ctx.Done():
		a.abandon(p)
		return nil, ctx.Err()
	case <-a.done:
		select {
		case r := <-p.done:
			return r.lines, r.err
		default:
			return nil, a.closedErr()
		}
	}
}

func (a *AT) write(ctx context.Context, expired <-chan time.Time, b []byte) error {
	r := writeReq{b: b, res: make(chan error, 1)}
	select {
	case a.writes <- r:
	case <-expired:
		return ErrTimeout
	case <-ctx.Done():
		return ctx.Err()
	case <-a.done:
		return a.closedErr()
	case <-a.stop:
		return ErrClosed
	}
	select {
	case err := <-r.res:
		if err != nil {
			return fmt.Errorf("%w: write: %w", ErrClosed, err)
		}
		return nil
	case <-expired:
		return ErrTimeout
	case <-ctx.Done():
		return ctx.Err()
	case <-a.done:
		return a.closedErr()
	}
}

// escape writes ESC after a failed send. Its own short deadline: the caller's may be spent.
func (a *AT) escape(cause error) {
	select {
	case <-a.done:
		return
	default:
	}
	t := time.NewTimer(escapeTimeout)
	defer t.Stop()
	if err := a.write(context.Background(), t.C, []byte{0x1b}); err != nil {
		a.log.Debug("modem: cannot write ESC to abandon a message", "err", err)
		return
	}
	a.log.Debug("modem: message abandoned with ESC", "cause", cause)
}

// writeLoop does the writing, so that a write blocked by flow control is bounded by the
// command's timeout and the next command's bytes cannot interleave with it.
func (a *AT) writeLoop() {
	for {
		select {
		case <-a.stop:
			return
		case r := <-a.writes:
			_, err := a.rw.Write(r.b)
			r.res <- err
			if err != nil {
				a.log.Debug("modem: write failed; closing port", "err", err)
				a.Close()
				return
			}
		}
	}
}

func (a *AT) closedErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, a.err)
}

func (a *AT) wrap(cmd string, err error, timeout time.Duration) error {
	if err == ErrTimeout {
		return fmt.Errorf("%s: %w (%v)", redact(cmd), err, timeout)
	}
	return fmt.Errorf("%s: %w", redact(cmd), err)
}

func (a *AT) readLoop() {
	defer close(a.done)
	var sc scanner
	sc.line = a.line
	sc.prompt = a.promptSeen
	sc.awaitingPrompt = a.awaitingPrompt
	sc.long = func() {
		a.garbage.Add(1)
		a.log.Debug("modem: discarded a line longer than the limit", "limit", maxLine)
	}
	buf := make([]byte, 1024)
	empty := 0
	for {
		n, err := a.rw.Read(buf)
		if n > 0 {
			empty = 0
			sc.feed(buf[:n])
		}
		if err == nil && n == 0 {
			if empty++; empty >= maxEmptyReads {
				err = io.ErrNoProgress
			}
		}
		if err != nil {
			a.stopReading(err)
			return
		}
	}
}

func (a *AT) stopReading(err error) {
	a.mu.Lock()
	a.err = err
	p := a.cur
	a.cur = nil
	a.mu.Unlock()
	a.log.Debug("modem: reader stopped", "err", err)
	if p != nil {
		p.done <- result{err: fmt.Errorf("%w: %w", ErrClosed, err)}
	}
}

func (a *AT) awaitingPrompt() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur != nil && a.cur.wantPrompt && !a.cur.prompted
}

func (a *AT) promptSeen() {
	a.mu.Lock()
	p := a.cur
	if p != nil && p.wantPrompt && !p.prompted {
		p.prompted = true
		close(p.prompt)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	a.noise("prompt with no message to send", "> ")
}

// line routes one line: to the command in flight, to the URC callback, or to the garbage count.
func (a *AT) line(raw []byte) {
	for len(raw) > 0 && (raw[0] == 0x00 || raw[0] == 0xff) {
		raw = raw[1:] // power-on glitches before the first line
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return
	}
	s := string(raw)

	a.mu.Lock()
	p := a.cur
	// The echoed PDU ends with the Ctrl-Z, so it is recognised before control bytes are refused.
	if p != nil && p.pduEcho != "" && strings.TrimRight(s, "\x1a") == p.pduEcho {
		a.mu.Unlock()
		return
	}
	if !printable(s) {
		a.mu.Unlock()
		a.noise("unreadable line", s)
		return
	}
	if a.cmt != nil {
		u := *a.cmt
		a.cmt = nil
		if isHex(s) {
			u.PDU = s
			a.mu.Unlock()
			a.emit(u)
			return
		}
		a.log.Warn("modem: +CMT without its PDU line", "header", u.Line, "next", s)
	}
	if p != nil {
		if strings.EqualFold(s, p.cmd) {
			a.mu.Unlock()
			return // echo
		}
		if final, err := finalResult(s); final {
			a.cur = nil
			if err == nil && p.overflow {
				err = fmt.Errorf("%w: more than %d lines", ErrBadResponse, maxResponseLines)
			}
			p.done <- result{lines: p.lines, err: err}
			a.mu.Unlock()
			return
		}
		name := prefixOf(s)
		_, isURC := plainURC(s)
		if (name != "" && claims(p.name, name, s)) || (name == "" && !isURC) {
			if len(p.lines) < maxResponseLines {
				p.lines = append(p.lines, s)
			} else {
				p.overflow = true
			}
			a.mu.Unlock()
			return
		}
	} else if final, _ := finalResult(s); final {
		a.mu.Unlock()
		a.log.Debug("modem: final result with no command in flight (late answer to a timed-out command?)", "line", s)
		return
	}
	u, ok := classify(s)
	if !ok {
		a.mu.Unlock()
		a.noise("unsolicited line", s)
		return
	}
	if u.Kind == URCMessage {
		a.cmt = &u
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	a.emit(u)
}

func (a *AT) emit(u URC) {
	a.log.Debug("modem: URC", "kind", u.Kind, "line", u.Line)
	if a.urc != nil {
		a.urc(u)
	}
}

func (a *AT) noise(what, s string) {
	a.garbage.Add(1)
	if len(s) > 80 {
		s = s[:80]
	}
	a.log.Debug("modem: ignoring garbage", "what", what, "line", strconv.Quote(s))
}

// finalResult reports whether s ends a command, and with which error.
func finalResult(s string) (bool, error) {
	up := strings.ToUpper(s)
	switch up {
	case "OK":
		return true, nil
	case "ERROR":
		return true, ErrError
	case "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE":
		return true, &ResultError{Result: up}
	}
	if rest, ok := cutPrefixFold(s, "+CME ERROR"); ok {
		return true, parseCME(strings.TrimPrefix(rest, ":"))
	}
	if rest, ok := cutPrefixFold(s, "+CMS ERROR"); ok {
		return true, parseCMS(strings.TrimPrefix(rest, ":"))
	}
	return false, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func checkCommand(cmd string) error {
	if len(cmd) < 2 || !strings.EqualFold(cmd[:2], "AT") {
		return fmt.Errorf("%w: command %q does not start with AT", ErrInvalid, truncate(cmd))
	}
	if len(cmd) > maxCommand {
		return fmt.Errorf("%w: command of %d characters, longer than %d", ErrInvalid, len(cmd), maxCommand)
	}
	for i := 0; i < len(cmd); i++ {
		if c := cmd[i]; c < 0x20 || c >= 0x7f {
			return fmt.Errorf("%w: command %q holds a control or non-ASCII byte at %d", ErrInvalid, truncate(redact(cmd)), i)
		}
	}
	return nil
}

// checkPDU refuses what would leave the modem waiting for more message text: tpduLen must
// match the PDU, whose first octet is the length of the SMSC address in front of the TPDU.
func checkPDU(tpduLen int, pduHex string) error {
	if tpduLen < 1 || tpduLen > maxTPDU {
		return fmt.Errorf("%w: TPDU length %d outside 1..%d", ErrInvalid, tpduLen, maxTPDU)
	}
	if !isHex(pduHex) {
		return fmt.Errorf("%w: PDU is not an even number of hex digits", ErrInvalid)
	}
	total := len(pduHex) / 2
	smsc := total - tpduLen
	if smsc < 1 {
		return fmt.Errorf("%w: PDU of %d octets cannot hold an SMSC length and a %d-octet TPDU", ErrInvalid, total, tpduLen)
	}
	n, _ := strconv.ParseUint(pduHex[:2], 16, 8)
	if int(n) != smsc-1 {
		return fmt.Errorf("%w: PDU's SMSC part is %d octets, but its first octet says %d (TPDU length %d wrong?)", ErrInvalid, smsc-1, n, tpduLen)
	}
	return nil
}

// redact hides the secrets some commands carry, in errors and logs.
func redact(cmd string) string {
	up := strings.ToUpper(cmd)
	for _, p := range []string{"AT+CPIN=", "AT+CPWD=", "AT+CLCK="} {
		if strings.HasPrefix(up, p) {
			return cmd[:len(p)] + "<redacted>"
		}
	}
	return cmd
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// scanner splits the byte stream into lines at "\r" or "\n" and recognises the "> " prompt,
// which has no line ending.
type scanner struct {
	buf        []byte
	discarding bool // inside a line over maxLine, until its end

	line           func([]byte)
	prompt         func()
	awaitingPrompt func() bool
	long           func()
}

func (s *scanner) feed(p []byte) {
	for _, b := range p {
		if b == '\r' || b == '\n' {
			if s.discarding {
				s.discarding = false
			} else if len(s.buf) > 0 {
				s.line(s.buf)
			}
			s.buf = s.buf[:0]
			continue
		}
		if s.discarding {
			continue
		}
		if len(s.buf) >= maxLine {
			s.discarding = true
			s.buf = s.buf[:0]
			s.long()
			continue
		}
		s.buf = append(s.buf, b)
		if len(s.buf) == 2 && s.buf[0] == '>' && s.buf[1] == ' ' {
			s.buf = s.buf[:0]
			s.prompt()
		}
	}
	// Some firmwares send ">" alone; it is a prompt only when one is awaited and nothing
	// followed it in the same read.
	if len(s.buf) == 1 && s.buf[0] == '>' && s.awaitingPrompt() {
		s.buf = s.buf[:0]
		s.prompt()
	}
}
