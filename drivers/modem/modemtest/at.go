package modemtest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/kentongan/kentongan/drivers/modem/pdu"
)

const (
	// maxLine is the SIM800's command buffer; a longer line answers ERROR.
	maxLine = 556
	// maxTPDU is the longest SMS-SUBMIT TPDU, the most AT+CMGS accepts.
	maxTPDU = 164
	// maxPDUInput bounds the hex typed after the prompt: a TPDU and the longest SMSC prefix.
	maxPDUInput = 2 * (maxTPDU + 12)

	ctrlZ = 0x1A
	esc   = 0x1B

	lac    = "1A2B"
	cellID = "3C4D"
)

// Identification answers, those of a SIM800L from the market with a Telkomsel SIM.
const (
	idManufacturer = "SIMCOM_Ltd"
	idModel        = "SIMCOM_SIM800L"
	idRevision     = "Revision:1418B04SIM800L24"
	idProduct      = "SIM800 R14.18"
	idIMEI         = "866262030000001"
	idICCID        = "89621000000000000001"
	idIMSI         = "510100000000001"
)

type actionKind int

const (
	actCommand actionKind = iota
	actSubmit
	actAbort
)

// action is a complete input to act upon, taken off the reader's byte stream.
type action struct {
	kind     actionKind
	text     string
	overflow bool
	pduLen   int
	fail     string
	ep       uint64
}

// serve reads what the host sends until the link is closed.
func (s *Sim) serve(ln *link) {
	defer s.wg.Done()
	buf := make([]byte, 1024)
	for {
		n, err := ln.master.Read(buf)
		for _, b := range buf[:n] {
			s.feed(ln, b)
		}
		if err != nil {
			return
		}
	}
}

func (s *Sim) feed(ln *link, b byte) {
	s.mu.Lock()
	a := s.inputLocked(ln, b)
	s.mu.Unlock()
	if a == nil {
		return
	}
	switch a.kind {
	case actCommand:
		if !s.pause(ln, s.opts.CommandDelay) {
			return
		}
		s.mu.Lock()
		if !s.staleLocked(ln, a.ep) {
			s.execLocked(a)
		}
		s.mu.Unlock()
	case actSubmit:
		s.submit(ln, a)
	case actAbort:
		if !s.pause(ln, s.opts.CommandDelay) {
			return
		}
		s.mu.Lock()
		if !s.staleLocked(ln, a.ep) {
			s.emitLocked("\r\nOK\r\n")
		}
		s.mu.Unlock()
	}
}

// pause waits d, or reports false if the link is closed first.
func (s *Sim) pause(ln *link, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ln.done:
		return false
	}
}

// staleLocked reports whether an answer in the making no longer has a modem to come from.
func (s *Sim) staleLocked(ln *link, ep uint64) bool {
	return s.closed || s.ln != ln || s.epoch != ep
}

// inputLocked takes one byte from the host and returns what to do once a line (or a PDU) is
// complete.
func (s *Sim) inputLocked(ln *link, b byte) *action {
	if s.closed || ln != s.ln || !s.power || s.phase == phaseBooting {
		return nil // an unpowered or booting modem drops what it is sent
	}
	in := &s.in
	if in.pdu {
		switch b {
		case ctrlZ, esc:
			text := string(in.line)
			s.logCommandLocked(text + string(b))
			a := &action{kind: actSubmit, text: text, overflow: in.overflow, pduLen: in.pduLen, fail: in.fail, ep: s.epoch}
			if b == esc {
				a = &action{kind: actAbort, ep: s.epoch}
			}
			*in = input{}
			return a
		}
		if s.cfg.echo {
			s.emitLocked(string(b))
		}
		if len(in.line) < maxPDUInput {
			in.line = append(in.line, b)
		} else {
			in.overflow = true
		}
		return nil
	}
	if s.cfg.echo && !s.hang {
		s.emitLocked(string(b))
	}
	switch b {
	case '\r':
		line, overflow := string(in.line), in.overflow
		*in = input{}
		if strings.TrimSpace(line) == "" {
			return nil
		}
		s.logCommandLocked(line)
		if s.hang {
			return nil
		}
		return &action{kind: actCommand, text: line, overflow: overflow, ep: s.epoch}
	case '\n':
		return nil
	case 0x08, 0x7F: // backspace, as V.250's S5
		if len(in.line) > 0 {
			in.line = in.line[:len(in.line)-1]
		}
		return nil
	}
	if len(in.line) < maxLine {
		in.line = append(in.line, b)
	} else {
		in.overflow = true
	}
	return nil
}

// reply is the answer to one command line, built before any of it is sent so that only
// deliberately injected URCs can land inside it.
type reply struct {
	b        strings.Builder
	inBlock  bool
	mark     int // end of the first entry, -1 before one
	final    string
	prompt   bool
	silent   bool // no final result code (power-down)
	urcFirst string
	urcFinal string
	cmgsFail string
	after    []func()
}

// entry adds one entry of information lines: a +CMGL header and its PDU, or a +CSQ line. The
// answer of each command on the line starts with a blank line, entries within it do not.
func (r *reply) entry(lines ...string) {
	if !r.inBlock {
		r.b.WriteString("\r\n")
		r.inBlock = true
	}
	for _, l := range lines {
		r.b.WriteString(l)
		r.b.WriteString("\r\n")
	}
	if r.mark < 0 {
		r.mark = r.b.Len()
	}
}

func (r *reply) String() string {
	info := r.b.String()
	var out strings.Builder
	if r.mark >= 0 {
		out.WriteString(info[:r.mark])
		out.WriteString(r.urcFirst)
		out.WriteString(info[r.mark:])
	} else {
		out.WriteString(info)
		out.WriteString(r.urcFirst)
	}
	out.WriteString(r.urcFinal)
	switch {
	case r.prompt:
		out.WriteString("\r\n> ") // no line ending: the host must see the prompt on its own
	case r.final != "" && !r.silent:
		out.WriteString("\r\n" + r.final + "\r\n")
	}
	return out.String()
}

type form int

const (
	formExec form = iota // AT+CSQ
	formRead             // AT+CREG?
	formTest             // AT+CREG=?
	formSet              // AT+CREG=1
)

// cmd is one command of a command line ("ATE0;+CMEE=1" has two).
type cmd struct {
	name  string // upper case: "", "E", "&W", "+CMGL"
	form  form
	arg   string // the parameters of a set (or the digits of a basic command), as typed
	match string // "AT" and the command in upper case, for FailNext and InjectURC
}

// parseLine splits what follows "AT" into its commands: basic ones (E0, I, &W) first, then
// extended ones (+CMGF=0) separated by ';'.
func parseLine(body string) ([]cmd, error) {
	if strings.TrimSpace(body) == "" {
		return []cmd{{match: "AT"}}, nil
	}
	var cmds []cmd
	i := 0
	for i < len(body) && body[i] != '+' {
		start := i
		if body[i] == '&' {
			i++
		}
		if i >= len(body) || !isLetter(body[i]) {
			return nil, fmt.Errorf("bad basic command at %q", body[start:])
		}
		i++
		name := strings.ToUpper(body[start:i])
		j := i
		for j < len(body) && body[j] >= '0' && body[j] <= '9' {
			j++
		}
		cmds = append(cmds, cmd{name: name, arg: body[i:j], match: "AT" + strings.ToUpper(body[start:j])})
		i = j
		if i < len(body) && body[i] == ';' {
			i++
		}
	}
	for _, part := range splitOutsideQuotes(body[i:], ';') {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k := strings.IndexAny(part, "=?")
		if k < 0 {
			k = len(part)
		}
		name := strings.ToUpper(part[:k])
		if len(name) < 2 || name[0] != '+' || !isLetter(name[1]) || strings.ContainsFunc(name[1:], func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		}) {
			return nil, fmt.Errorf("bad extended command %q", part)
		}
		c := cmd{name: name, match: "AT" + strings.ToUpper(part)}
		switch rest := part[k:]; {
		case rest == "":
			c.form = formExec
		case rest == "?":
			c.form = formRead
		case rest == "=?":
			c.form = formTest
		case strings.HasPrefix(rest, "=") && !strings.HasPrefix(rest, "=?"):
			c.form, c.arg = formSet, rest[1:]
		default:
			return nil, fmt.Errorf("bad extended command %q", part)
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

func isLetter(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') }

// splitOutsideQuotes splits s at sep, except inside double quotes.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// params splits the parameters of a set command, trimmed.
func params(arg string) []string {
	p := splitOutsideQuotes(arg, ',')
	for i := range p {
		p[i] = strings.TrimSpace(p[i])
	}
	return p
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// intParam parses p[i] in lo..hi; an absent or empty parameter gives def.
func intParam(p []string, i, lo, hi, def int) (int, error) {
	if i >= len(p) || p[i] == "" {
		return def, nil
	}
	n, err := strconv.Atoi(p[i])
	if err != nil || n < lo || n > hi {
		return 0, errPlain
	}
	return n, nil
}

// atError is a final result code other than OK.
type atError struct {
	cms  bool
	code int // negative: plain ERROR whatever AT+CMEE says
}

func (e atError) Error() string {
	if e.code < 0 {
		return "ERROR"
	}
	if e.cms {
		return fmt.Sprintf("+CMS ERROR: %d", e.code)
	}
	return fmt.Sprintf("+CME ERROR: %d", e.code)
}

var errPlain = atError{code: -1}

func cme(code int) error { return atError{code: code} }
func cms(code int) error { return atError{cms: true, code: code} }

// Verbose texts for AT+CMEE=2, as the SIM800 words them.
var (
	cmeText = map[int]string{
		3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
		11: "SIM PIN required", 12: "SIM PUK required", 16: "incorrect password",
		50: "Incorrect parameters", 100: "unknown",
	}
	cmsText = map[int]string{
		302: "operation not allowed", 303: "operation not supported",
		304: "invalid PDU mode parameter", 311: "SIM PIN required", 316: "SIM PUK required",
		321: "invalid memory index", 322: "memory full", 331: "no network service",
		500: "unknown error",
	}
)

// resultLocked renders an error as the final result code AT+CMEE asks for.
func (s *Sim) resultLocked(err error) string {
	var e atError
	if !errors.As(err, &e) || e.code < 0 || s.cfg.cmee == 0 {
		return "ERROR"
	}
	prefix, texts := "+CME ERROR: ", cmeText
	if e.cms {
		prefix, texts = "+CMS ERROR: ", cmsText
	}
	if t, ok := texts[e.code]; ok && s.cfg.cmee == 2 {
		return prefix + t
	}
	return prefix + strconv.Itoa(e.code)
}

// execLocked runs one command line and sends its answer.
func (s *Sim) execLocked(a *action) {
	line := strings.TrimSpace(a.text)
	// V.250 5.2.1: what precedes the "AT" prefix on a line is ignored (line noise, or an ESC
	// written after a failed send that found the modem already back at the command line).
	if i := strings.Index(strings.ToUpper(line), "AT"); i > 0 {
		line = line[i:]
	}
	if len(line) < 2 || !strings.EqualFold(line[:2], "AT") {
		return // not a command: the modem ignores it as it ignores line noise
	}
	r := &reply{mark: -1}
	cmds, err := parseLine(line[2:])
	switch {
	case s.errorAll || a.overflow || err != nil:
		r.final = "ERROR"
	default:
		var injected []injection
		for _, c := range cmds {
			injected = append(injected, s.takeInjectionsLocked(c.match)...)
			if res, ok := s.takeFailLocked(c.match); ok {
				if c.name != "+CMGS" || c.form != formSet {
					r.b.Reset()
					r.mark, r.final = -1, res
					break
				}
				r.cmgsFail = res
			}
			r.inBlock = false
			if err := s.dispatchLocked(r, c); err != nil {
				r.final = s.resultLocked(err)
				break
			}
			if r.prompt || r.silent {
				break
			}
		}
		if r.final == "" {
			r.final = "OK"
		}
		s.injectLocked(r, injected)
	}
	out := r.String()
	s.log.Debug("modem answer", "cmd", line, "answer", out)
	s.emitLocked(out)
	for _, f := range r.after {
		f()
	}
}

func (s *Sim) takeFailLocked(match string) (string, bool) {
	for i, f := range s.fails {
		if strings.HasPrefix(match, f.prefix) {
			s.fails = append(s.fails[:i], s.fails[i+1:]...)
			return f.result, true
		}
	}
	return "", false
}

func (s *Sim) takeInjectionsLocked(match string) []injection {
	var got []injection
	kept := s.injections[:0]
	for _, inj := range s.injections {
		if strings.HasPrefix(match, inj.prefix) {
			got = append(got, inj)
		} else {
			kept = append(kept, inj)
		}
	}
	s.injections = kept
	return got
}

// injectLocked places injected URCs in the answer. A delivery happens now, after the answer was
// built, so that a listing does not show the message whose +CMTI interrupts it.
func (s *Sim) injectLocked(r *reply, injected []injection) {
	for _, inj := range injected {
		var text strings.Builder
		add := func(urc string) {
			s.log.Debug("modem URC (injected)", "urc", urc)
			text.WriteString("\r\n" + urc + "\r\n")
		}
		if inj.pdus != nil {
			for _, p := range inj.pdus {
				s.deliverLocked(p, add)
			}
		} else {
			add(inj.urc)
		}
		if inj.at == AfterFirst {
			r.urcFirst += text.String()
		} else {
			r.urcFinal += text.String()
		}
	}
}

// smsGateLocked refuses SMS commands until the SIM is unlocked and the modem said SMS Ready.
func (s *Sim) smsGateLocked() error {
	switch {
	case s.sim == simPIN:
		return cms(311)
	case s.sim == simPUK:
		return cms(316)
	case s.phase != phaseSMS:
		return cms(302)
	}
	return nil
}

func (s *Sim) dispatchLocked(r *reply, c cmd) error {
	switch c.name {
	case "":
		return nil
	case "E":
		switch c.arg {
		case "", "0":
			s.cfg.echo = false
		case "1":
			s.cfg.echo = true
		default:
			return errPlain
		}
		return nil
	case "V", "Q":
		// Only verbose result codes are emulated.
		if (c.name == "V" && c.arg == "1") || (c.name == "Q" && (c.arg == "" || c.arg == "0")) {
			return nil
		}
		return errPlain
	case "I":
		if c.arg != "" && c.arg != "0" {
			return errPlain
		}
		r.entry(idProduct)
		return nil
	case "Z", "&F":
		cfun := s.cfg.cfun
		s.cfg = defaultSettings(s.opts.SMSC)
		s.cfg.cfun = cfun
		return nil
	case "&W":
		return nil
	case "+CMEE":
		return s.cmeeLocked(r, c)
	case "+CPIN":
		return s.cpinLocked(r, c)
	case "+SPIC":
		left := 3 - s.wrongPIN
		if s.sim == simPUK {
			left = 0
		}
		r.entry(fmt.Sprintf("+SPIC: %d,10,3,10", left))
		return nil
	case "+CREG":
		return s.cregLocked(r, c)
	case "+COPS":
		return s.copsLocked(r, c)
	case "+CSQ":
		switch c.form {
		case formExec:
			r.entry(fmt.Sprintf("+CSQ: %d,0", s.rssi))
		case formTest:
			r.entry("+CSQ: (0-31,99),(0-7,99)")
		default:
			return errPlain
		}
		return nil
	case "+CMGF":
		return s.cmgfLocked(r, c)
	case "+CPMS":
		return s.cpmsLocked(r, c)
	case "+CNMI":
		return s.cnmiLocked(r, c)
	case "+CMGL":
		return s.cmglLocked(r, c)
	case "+CMGR":
		return s.cmgrLocked(r, c)
	case "+CMGD":
		return s.cmgdLocked(r, c)
	case "+CMGS":
		return s.cmgsLocked(r, c)
	case "+CSCA":
		return s.cscaLocked(r, c)
	case "+CSCS":
		return s.cscsLocked(r, c)
	case "+CSMP":
		if c.form == formRead {
			r.entry("+CSMP: 17,167,0,0")
		}
		return nil
	case "+CFUN":
		return s.cfunLocked(r, c)
	case "+CPOWD":
		return s.cpowdLocked(r, c)
	case "+CBC":
		if c.form != formExec {
			return errPlain
		}
		r.entry("+CBC: 0,85,4012")
		return nil
	case "+CIMI":
		if c.form != formExec {
			return errPlain
		}
		switch s.sim {
		case simPIN:
			return cme(11)
		case simPUK:
			return cme(12)
		}
		r.entry(idIMSI)
		return nil
	case "+CGMI", "+GMI":
		return s.identLocked(r, c, idManufacturer)
	case "+CGMM", "+GMM":
		return s.identLocked(r, c, idModel)
	case "+CGMR", "+GMR":
		return s.identLocked(r, c, idRevision)
	case "+CGSN", "+GSN":
		return s.identLocked(r, c, idIMEI)
	case "+CCID":
		return s.identLocked(r, c, idICCID)
	}
	// Everything else, including AT+CEREG (the SIM800L is 2G only).
	return errPlain
}

func (s *Sim) identLocked(r *reply, c cmd, answer string) error {
	switch c.form {
	case formExec:
		r.entry(answer)
	case formTest:
	default:
		return errPlain
	}
	return nil
}

func (s *Sim) cmeeLocked(r *reply, c cmd) error {
	switch c.form {
	case formRead:
		r.entry(fmt.Sprintf("+CMEE: %d", s.cfg.cmee))
	case formTest:
		r.entry("+CMEE: (0-2)")
	case formExec:
		s.cfg.cmee = 0
	case formSet:
		n, err := intParam(params(c.arg), 0, 0, 2, 0)
		if err != nil {
			return err
		}
		s.cfg.cmee = n
	}
	return nil
}

func (s *Sim) cpinLocked(r *reply, c cmd) error {
	switch c.form {
	case formRead:
		r.entry("+CPIN: " + s.pinStateLocked())
		return nil
	case formTest:
		return nil
	case formExec:
		return errPlain
	}
	p := params(c.arg)
	if len(p) > 2 || p[0] == "" {
		return errPlain
	}
	code := unquote(p[0])
	switch s.sim {
	case simReady:
		return cme(3)
	case simPIN:
		if len(p) != 1 {
			return cme(3)
		}
		if code != s.pin {
			s.wrongPIN++
			if s.wrongPIN >= 3 {
				s.sim = simPUK
				r.after = append(r.after, func() { s.urcLocked("+CPIN: SIM PUK") })
			}
			return cme(16)
		}
	case simPUK:
		if len(p) != 2 {
			return cme(12)
		}
		newPIN := unquote(p[1])
		if code != s.opts.PUK || !validPIN(newPIN, 4, 8) {
			return cme(16)
		}
		s.pin = newPIN
	}
	s.wrongPIN = 0
	s.sim = simReady
	r.after = append(r.after, func() {
		s.urcLocked("+CPIN: READY")
		s.afterLocked(s.opts.ReadyDelay, s.smsReadyLocked)
	})
	return nil
}

func (s *Sim) cregLocked(r *reply, c cmd) error {
	switch c.form {
	case formRead:
		st := s.registrationLocked()
		if s.cfg.cregN == 2 && (st == 1 || st == 5) {
			r.entry(fmt.Sprintf(`+CREG: 2,%d,"%s","%s"`, st, lac, cellID))
		} else {
			r.entry(fmt.Sprintf("+CREG: %d,%d", s.cfg.cregN, st))
		}
	case formTest:
		r.entry("+CREG: (0-2)")
	case formExec:
		s.cfg.cregN = 0
	case formSet:
		n, err := intParam(params(c.arg), 0, 0, 2, 0)
		if err != nil {
			return err
		}
		s.cfg.cregN = n
	}
	return nil
}

func (s *Sim) copsLocked(r *reply, c cmd) error {
	switch c.form {
	case formRead:
		if !s.registeredLocked() {
			r.entry("+COPS: 0")
			return nil
		}
		name := s.opts.Operator
		if s.cfg.copsFormat == 2 {
			name = s.opts.OperatorCode
		}
		r.entry(fmt.Sprintf(`+COPS: 0,%d,"%s"`, s.cfg.copsFormat, name))
	case formTest:
		r.entry(fmt.Sprintf(`+COPS: (2,"%s","%s","%s"),,(0-4),(0-2)`, s.opts.Operator, s.opts.Operator, s.opts.OperatorCode))
	case formExec:
		return errPlain
	case formSet:
		p := params(c.arg)
		mode, err := intParam(p, 0, 0, 4, 0)
		if err != nil {
			return err
		}
		format, err := intParam(p, 1, 0, 2, s.cfg.copsFormat)
		if err != nil {
			return err
		}
		if mode == 3 {
			s.cfg.copsFormat = format
		}
	}
	return nil
}

func (s *Sim) cmgfLocked(r *reply, c cmd) error {
	switch c.form {
	case formRead:
		mode := 0
		if s.cfg.textMode {
			mode = 1
		}
		r.entry(fmt.Sprintf("+CMGF: %d", mode))
	case formTest:
		r.entry("+CMGF: (0,1)")
	case formExec:
		s.cfg.textMode = false
	case formSet:
		n, err := intParam(params(c.arg), 0, 0, 1, 0)
		if err != nil {
			return err
		}
		s.cfg.textMode = n == 1
	}
	return nil
}

func (s *Sim) cpmsLocked(r *reply, c cmd) error {
	if err := s.smsGateLocked(); err != nil {
		return err
	}
	used, total := s.usedLocked(), len(s.slots)
	switch c.form {
	case formRead:
		r.entry(fmt.Sprintf(`+CPMS: "SM",%d,%d,"SM",%d,%d,"SM",%d,%d`, used, total, used, total, used, total))
	case formTest:
		r.entry(`+CPMS: ("SM"),("SM"),("SM")`)
	case formExec:
		return errPlain
	case formSet:
		p := params(c.arg)
		if len(p) > 3 {
			return errPlain
		}
		for _, m := range p {
			if !strings.EqualFold(unquote(m), "SM") {
				return cms(302) // only SIM storage is emulated
			}
		}
		r.entry(fmt.Sprintf("+CPMS: %d,%d,%d,%d,%d,%d", used, total, used, total, used, total))
	}
	return nil
}

func (s *Sim) cnmiLocked(r *reply, c cmd) error {
	if err := s.smsGateLocked(); err != nil {
		return err
	}
	switch c.form {
	case formRead:
		n := s.cfg.cnmi
		r.entry(fmt.Sprintf("+CNMI: %d,%d,%d,%d,%d", n[0], n[1], n[2], n[3], n[4]))
	case formTest:
		r.entry("+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)")
	case formExec:
		return errPlain
	case formSet:
		p := params(c.arg)
		if len(p) > 5 {
			return errPlain
		}
		limits := [5]int{3, 3, 3, 2, 1}
		var n [5]int
		for i := range n {
			v, err := intParam(p, i, 0, limits[i], s.cfg.cnmi[i])
			if err != nil {
				return err
			}
			n[i] = v
		}
		s.cfg.cnmi = n
	}
	return nil
}

// pduCommandLocked checks what every SMS storage or sending command needs: SMS ready, PDU mode.
func (s *Sim) pduCommandLocked() error {
	if err := s.smsGateLocked(); err != nil {
		return err
	}
	if s.cfg.textMode {
		return cms(303) // text mode is not emulated
	}
	return nil
}

func (s *Sim) cmglLocked(r *reply, c cmd) error {
	if err := s.pduCommandLocked(); err != nil {
		return err
	}
	var p []string
	switch c.form {
	case formTest:
		r.entry("+CMGL: (0-4)")
		return nil
	case formRead:
		return errPlain
	case formSet:
		p = params(c.arg)
		if len(p) > 2 {
			return errPlain
		}
	}
	stat, err := intParam(p, 0, 0, 4, 0)
	if err != nil {
		return err
	}
	keep, err := intParam(p, 1, 0, 1, 0)
	if err != nil {
		return err
	}
	for i, m := range s.slots {
		if m == nil || (stat != 4 && m.stat != stat) {
			continue
		}
		r.entry(fmt.Sprintf("+CMGL: %d,%d,,%d", i+1, m.stat, tpduLen(m.pdu)), m.pdu)
		if keep == 0 && m.stat == 0 {
			m.stat = 1
		}
	}
	return nil
}

func (s *Sim) cmgrLocked(r *reply, c cmd) error {
	if err := s.pduCommandLocked(); err != nil {
		return err
	}
	switch c.form {
	case formTest:
		return nil
	case formRead, formExec:
		return errPlain
	}
	p := params(c.arg)
	if len(p) > 2 {
		return errPlain
	}
	idx, err := s.indexLocked(p[0])
	if err != nil {
		return err
	}
	keep, err := intParam(p, 1, 0, 1, 0)
	if err != nil {
		return err
	}
	m := s.slots[idx-1]
	if m == nil {
		return nil // an empty slot: a bare OK, as on SIMCom modems
	}
	r.entry(fmt.Sprintf("+CMGR: %d,,%d", m.stat, tpduLen(m.pdu)), m.pdu)
	if keep == 0 && m.stat == 0 {
		m.stat = 1
	}
	return nil
}

// indexLocked parses a storage index: not a number is a syntax error, a number outside the
// storage is +CMS ERROR: 321.
func (s *Sim) indexLocked(p string) (int, error) {
	idx, err := strconv.Atoi(p)
	if err != nil {
		return 0, errPlain
	}
	if idx < 1 || idx > len(s.slots) {
		return 0, cms(321)
	}
	return idx, nil
}

func (s *Sim) cmgdLocked(r *reply, c cmd) error {
	if err := s.smsGateLocked(); err != nil {
		return err
	}
	switch c.form {
	case formTest:
		r.entry(fmt.Sprintf("+CMGD: (1-%d),(0-4)", len(s.slots)))
		return nil
	case formRead, formExec:
		return errPlain
	}
	p := params(c.arg)
	if len(p) > 2 {
		return errPlain
	}
	flag, err := intParam(p, 1, 0, 4, 0)
	if err != nil {
		return err
	}
	if flag == 0 {
		idx, err := s.indexLocked(p[0])
		if err != nil {
			return err
		}
		s.slots[idx-1] = nil
		s.deletes[idx]++
	} else {
		if _, err := strconv.Atoi(p[0]); err != nil {
			return errPlain
		}
		for i, m := range s.slots {
			if m != nil && deletedBy(flag, m.stat) {
				s.slots[i] = nil
				s.deletes[i+1]++
			}
		}
	}
	// A freed slot lets the network's retry in, announced after the OK.
	r.after = append(r.after, s.flushLocked)
	return nil
}

// deletedBy says whether AT+CMGD's <delflag> covers a message of status stat.
func deletedBy(flag, stat int) bool {
	switch flag {
	case 1:
		return stat == 1
	case 2:
		return stat == 1 || stat == 3
	case 3:
		return stat != 0
	}
	return true
}

func (s *Sim) cmgsLocked(r *reply, c cmd) error {
	if err := s.pduCommandLocked(); err != nil {
		return err
	}
	switch c.form {
	case formTest:
		return nil
	case formRead, formExec:
		return errPlain
	}
	p := params(c.arg)
	n, err := strconv.Atoi(p[0])
	if err != nil || len(p) != 1 {
		return errPlain
	}
	if n < 1 || n > maxTPDU {
		return cms(304)
	}
	s.in = input{pdu: true, pduLen: n, fail: r.cmgsFail}
	r.prompt = true
	return nil
}

func (s *Sim) cscaLocked(r *reply, c cmd) error {
	if err := s.smsGateLocked(); err != nil {
		return err
	}
	switch c.form {
	case formRead:
		toa := 129
		if strings.HasPrefix(s.cfg.smsc, "+") {
			toa = 145
		}
		r.entry(fmt.Sprintf(`+CSCA: "%s",%d`, s.cfg.smsc, toa))
	case formTest:
	case formExec:
		return errPlain
	case formSet:
		smsc := unquote(params(c.arg)[0])
		if smsc == "" {
			return errPlain
		}
		s.cfg.smsc = smsc
	}
	return nil
}

func (s *Sim) cscsLocked(r *reply, c cmd) error {
	const sets = `"IRA","GSM","UCS2","HEX","PCCP","PCDN","8859-1"`
	switch c.form {
	case formRead:
		r.entry(fmt.Sprintf(`+CSCS: "%s"`, s.cfg.cscs))
	case formTest:
		r.entry("+CSCS: (" + sets + ")")
	case formExec:
		return errPlain
	case formSet:
		set := strings.ToUpper(unquote(params(c.arg)[0]))
		if set == "" || !strings.Contains(sets, `"`+set+`"`) {
			return errPlain
		}
		s.cfg.cscs = set
	}
	return nil
}

func (s *Sim) cfunLocked(r *reply, c cmd) error {
	switch c.form {
	case formRead:
		r.entry(fmt.Sprintf("+CFUN: %d", s.cfg.cfun))
		return nil
	case formTest:
		r.entry("+CFUN: (0,1,4),(0,1)")
		return nil
	case formExec:
		return errPlain
	}
	p := params(c.arg)
	if len(p) > 2 {
		return errPlain
	}
	fun, err := intParam(p, 0, 0, 4, -1)
	if err != nil || fun < 0 || fun == 2 || fun == 3 {
		return errPlain
	}
	rst, err := intParam(p, 1, 0, 1, 0)
	if err != nil {
		return err
	}
	if rst == 1 {
		r.after = append(r.after, func() {
			s.powerCycles++
			s.bootLocked()
		})
		return nil
	}
	s.cfg.cfun = fun
	r.after = append(r.after, s.regChangedLocked)
	return nil
}

func (s *Sim) cpowdLocked(r *reply, c cmd) error {
	if c.form != formSet {
		return errPlain
	}
	n, err := intParam(params(c.arg), 0, 0, 1, -1)
	if err != nil || n < 0 {
		return errPlain
	}
	if n == 1 {
		r.entry("NORMAL POWER DOWN")
	}
	r.silent = true
	r.after = append(r.after, s.powerOffLocked)
	return nil
}

// submit answers the PDU typed after the prompt: at once if it is malformed, after the
// network's SendDelay otherwise.
func (s *Sim) submit(ln *link, a *action) {
	if !s.pause(ln, s.opts.CommandDelay) {
		return
	}
	hexPDU := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, a.text)
	d, perr := decodeSubmit(hexPDU, a.pduLen, a.overflow)
	s.mu.Lock()
	if s.staleLocked(ln, a.ep) {
		s.mu.Unlock()
		return
	}
	if perr != nil || s.errorAll {
		if perr != nil {
			s.log.Debug("modem refuses PDU", "pdu", hexPDU, "err", perr)
			perr = cms(304)
		}
		s.emitLocked("\r\n" + s.resultLocked(perr) + "\r\n")
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if !s.pause(ln, s.opts.SendDelay) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.staleLocked(ln, a.ep) {
		return
	}
	switch {
	case a.fail != "":
		s.emitLocked("\r\n" + a.fail + "\r\n")
	case s.errorAll:
		s.emitLocked("\r\nERROR\r\n")
	case !s.registeredLocked():
		s.emitLocked("\r\n" + s.resultLocked(cms(331)) + "\r\n")
	default:
		mr := s.mr
		s.mr = (s.mr + 1) % 256
		s.recordSentLocked(hexPDU, d)
		s.emitLocked(fmt.Sprintf("\r\n+CMGS: %d\r\n\r\nOK\r\n", mr))
	}
}

// decodeSubmit checks the PDU against the length given to AT+CMGS and decodes it.
func decodeSubmit(hexPDU string, n int, overflow bool) (*pdu.SubmitDecoded, error) {
	if overflow {
		return nil, fmt.Errorf("PDU longer than %d hex digits", maxPDUInput)
	}
	raw, err := hex.DecodeString(hexPDU)
	if err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("PDU %q is not hex", hexPDU)
	}
	if got := tpduLenBytes(raw); got != n {
		return nil, fmt.Errorf("AT+CMGS=%d, but the TPDU has %d octets", n, got)
	}
	d, err := pdu.DecodeSubmit(hexPDU)
	if err != nil {
		return nil, fmt.Errorf("decode PDU: %w", err)
	}
	return d, nil
}

// tpduLenBytes is the length of a PDU without its SMSC prefix, which is what AT+CMGS takes and
// +CMGL reports; -1 if the prefix claims more octets than there are.
func tpduLenBytes(raw []byte) int {
	if len(raw) == 0 {
		return 0
	}
	n := len(raw) - 1 - int(raw[0])
	if n < 0 {
		return -1
	}
	return n
}

// tpduLen is tpduLenBytes of a stored PDU; a malformed one (DeliverPDU) gets a best guess.
func tpduLen(hexPDU string) int {
	raw, err := hex.DecodeString(hexPDU)
	if err != nil {
		return len(hexPDU) / 2
	}
	if n := tpduLenBytes(raw); n >= 0 {
		return n
	}
	return len(raw)
}
