package modem_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kentongan/kentongan/drivers/modem"
	"github.com/kentongan/kentongan/test/poll"
)

// Modem tests run in a synctest bubble: back-off, health intervals and timeouts take their
// real values in fake time, so a test covering minutes of a modem's life takes milliseconds.

// fakeWait bounds waits in fake time; it only matters when something is broken.
const fakeWait = 30 * time.Minute

const (
	pduA = "07912658050000F0040B912618485610F90000521130021044800AC8329BFD06"
	pduB = "07912658050000F0040B912618485610F90000521130021044800AC8329BFD07"
)

// fakeModem answers AT commands the way a SIM800L with a SIM does, each open a fresh
// net.Pipe, with echo on until ATE0. Fields are guarded by mu.
type fakeModem struct {
	mu sync.Mutex

	pin            string // the SIM's PIN; "" means it needs none
	noSIM          bool
	attempts       int  // PIN attempts left
	reportAttempts bool // answer AT+CPINR with attempts
	openErr        error
	boot           bool   // print the SIM800L's boot URCs on open
	creg, cereg    string // answers to AT+CREG? and AT+CEREG? ("" = ERROR)
	cpmsSM         bool   // accept "SM" storage
	// override answers a command before the defaults: reply lines (the final result
	// included), or ok with no lines for silence.
	override func(open int, cmd string) (lines []string, ok bool)

	unlocked    bool
	opens       int
	failedOpens int
	cmds        []string
	msgs        map[int]string
	sent        []string
	conn        net.Conn
}

func newFake() *fakeModem {
	return &fakeModem{
		attempts: 3,
		creg:     "+CREG: 1,1",
		cpmsSM:   true,
		msgs:     map[int]string{1: pduA, 2: pduB},
	}
}

func (f *fakeModem) open() (io.ReadWriteCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr != nil {
		f.failedOpens++
		return nil, f.openErr
	}
	f.opens++
	host, dev := net.Pipe()
	f.conn = dev
	go f.serve(dev, f.opens, f.boot)
	return host, nil
}

func (f *fakeModem) set(fn func(f *fakeModem)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeModem) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.countLocked(prefix)
}

// countLocked is count for an override, which runs with f.mu held.
func (f *fakeModem) countLocked(prefix string) int {
	n := 0
	for _, c := range f.cmds {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeModem) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

func (f *fakeModem) openCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opens
}

// send writes unsolicited bytes to the current connection.
func (f *fakeModem) send(s string) {
	f.mu.Lock()
	c := f.conn
	f.mu.Unlock()
	c.Write([]byte(s))
}

// hangUp closes the current connection, as unplugging a USB modem does.
func (f *fakeModem) hangUp() {
	f.mu.Lock()
	c := f.conn
	f.mu.Unlock()
	c.Close()
}

func frame(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("\r\n" + l + "\r\n")
	}
	return b.String()
}

func (f *fakeModem) serve(c net.Conn, open int, boot bool) {
	defer c.Close()
	if boot {
		if _, err := c.Write([]byte(frame("RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"))); err != nil {
			return
		}
	}
	r := bufio.NewReader(c)
	echo := true
	for {
		line, err := r.ReadString('\r')
		if err != nil {
			return
		}
		cmd := strings.TrimSpace(line)
		out := ""
		if echo {
			out = cmd + "\r"
		}
		f.mu.Lock()
		f.cmds = append(f.cmds, cmd)
		lines, ok := []string(nil), false
		if f.override != nil {
			lines, ok = f.override(open, cmd)
		}
		prompt := !ok && strings.HasPrefix(cmd, "AT+CMGS=")
		if !ok && !prompt {
			lines = f.answer(cmd)
		}
		f.mu.Unlock()
		if cmd == "ATE0" {
			echo = false
		}
		if prompt {
			if _, err := c.Write([]byte(out + "\r\n> ")); err != nil {
				return
			}
			pdu, err := r.ReadString(0x1a)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.sent = append(f.sent, strings.TrimSuffix(pdu, "\x1a"))
			mr := len(f.sent)
			f.mu.Unlock()
			out, lines = "", []string{fmt.Sprintf("+CMGS: %d", mr), "OK"}
		}
		if len(lines) == 0 && out == "" {
			continue // silent
		}
		if _, err := c.Write([]byte(out + frame(lines...))); err != nil {
			return
		}
	}
}

// answer is the SIM800L's answer to cmd; f.mu is held.
func (f *fakeModem) answer(cmd string) []string {
	ok := []string{"OK"}
	switch cmd {
	case "AT", "ATE0", "AT+CMEE=1", "AT+CREG=1", "AT+COPS=3,0", "AT+CMGF=0", "AT+CNMI=2,1,0,0,0":
		return ok
	case "AT+CPIN?":
		switch {
		case f.noSIM:
			return []string{"+CME ERROR: 10"}
		case f.attempts == 0:
			return []string{"+CPIN: SIM PUK", "OK"}
		case f.pin != "" && !f.unlocked:
			return []string{"+CPIN: SIM PIN", "OK"}
		}
		return []string{"+CPIN: READY", "OK"}
	case `AT+CPINR="SIM PIN"`:
		if f.reportAttempts {
			return []string{fmt.Sprintf("+CPINR: SIM PIN,%d,3", f.attempts), "OK"}
		}
		return []string{"ERROR"}
	case "AT+CREG?":
		if f.creg == "" {
			return []string{"ERROR"}
		}
		return []string{f.creg, "OK"}
	case "AT+CEREG?":
		if f.cereg == "" {
			return []string{"ERROR"}
		}
		return []string{f.cereg, "OK"}
	case "AT+COPS?":
		return []string{`+COPS: 0,0,"TELKOMSEL"`, "OK"}
	case "AT+CSQ":
		return []string{"+CSQ: 20,0", "OK"}
	case `AT+CPMS="SM","SM","SM"`:
		if !f.cpmsSM {
			return []string{"+CMS ERROR: 302"}
		}
		return []string{fmt.Sprintf("+CPMS: %d,30,%d,30,%d,30", len(f.msgs), len(f.msgs), len(f.msgs)), "OK"}
	case `AT+CPMS="ME","ME","ME"`:
		return []string{fmt.Sprintf("+CPMS: %d,100,%d,100,%d,100", len(f.msgs), len(f.msgs), len(f.msgs)), "OK"}
	case "AT+CPMS?":
		n := len(f.msgs)
		return []string{fmt.Sprintf(`+CPMS: "SM",%d,30,"SM",%d,30,"SM",%d,30`, n, n, n), "OK"}
	case "AT+CMGL=4":
		var out []string
		idx := make([]int, 0, len(f.msgs))
		for i := range f.msgs {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		for _, i := range idx {
			out = append(out, fmt.Sprintf("+CMGL: %d,1,,%d", i, len(f.msgs[i])/2-8), f.msgs[i])
		}
		return append(out, "OK")
	}
	var pin string
	if _, err := fmt.Sscanf(cmd, "AT+CPIN=%q", &pin); err == nil {
		if pin == f.pin {
			f.unlocked = true
			return ok
		}
		f.attempts--
		return []string{"+CME ERROR: 16"}
	}
	var i int
	if _, err := fmt.Sscanf(cmd, "AT+CMGR=%d", &i); err == nil {
		if p, found := f.msgs[i]; found {
			return []string{fmt.Sprintf("+CMGR: 1,,%d", len(p)/2-8), p, "OK"}
		}
		return ok
	}
	if _, err := fmt.Sscanf(cmd, "AT+CMGD=%d", &i); err == nil {
		delete(f.msgs, i)
		return ok
	}
	return []string{"ERROR"}
}

// recorder keeps what the Modem told through Events.
type recorder struct {
	mu       sync.Mutex
	ready    int
	newMsgs  []string
	direct   []string
	healths  []modem.Health
	onReady  func()
	onNewMsg func(storage string, index int)
}

func (r *recorder) events() modem.Events {
	return modem.Events{
		Ready: func() {
			r.mu.Lock()
			r.ready++
			f := r.onReady
			r.mu.Unlock()
			if f != nil {
				f()
			}
		},
		NewMessage: func(storage string, index int) {
			r.mu.Lock()
			r.newMsgs = append(r.newMsgs, fmt.Sprintf("%s/%d", storage, index))
			f := r.onNewMsg
			r.mu.Unlock()
			if f != nil {
				f(storage, index)
			}
		},
		Message: func(pdu string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.direct = append(r.direct, pdu)
		},
		Health: func(h modem.Health) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.healths = append(r.healths, h)
		},
	}
}

func (r *recorder) readyCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready
}

type rig struct {
	f      *fakeModem
	m      *modem.Modem
	rec    *recorder
	cancel context.CancelFunc
	done   chan error
}

// start runs a Modem over f with default timings; cfg may set a PIN or a PowerCycle.
func start(t *testing.T, f *fakeModem, cfg modem.Config, rec *recorder) *rig {
	t.Helper()
	if rec == nil {
		rec = &recorder{}
	}
	cfg.Open = f.open
	cfg.Logger = testLogger(t)
	r := &rig{f: f, rec: rec, done: make(chan error, 1)}
	r.m = modem.New(cfg, rec.events())
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.m.Run(ctx) }()
	return r
}

func (r *rig) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func (r *rig) waitState(t *testing.T, state string) modem.Health {
	t.Helper()
	poll.Until(t, fakeWait, "modem state "+state, func() (bool, string) {
		h := r.m.Health()
		return h.State == state, fmt.Sprintf("%+v", h)
	})
	return r.m.Health()
}

func (r *rig) waitReady(t *testing.T, n int) {
	t.Helper()
	poll.Until(t, fakeWait, fmt.Sprintf("Ready called %d times", n), func() (bool, string) {
		return r.rec.readyCount() >= n, fmt.Sprintf("ready %d, health %+v", r.rec.readyCount(), r.m.Health())
	})
}

func TestStartUpSequenceAndHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.boot = true
		rec := &recorder{}
		var r *rig
		var listed []modem.Stored
		var listErr error
		rec.onReady = func() { listed, listErr = r.m.List(context.Background()) }
		r = start(t, f, modem.Config{}, rec)
		defer r.stop(t)
		r.waitReady(t, 1)
		synctest.Wait()

		want := []string{"AT", "ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CREG=1", "AT+CREG?", "AT+CEREG?",
			"AT+COPS=3,0", "AT+COPS?", "AT+CSQ", "AT+CMGF=0", `AT+CPMS="SM","SM","SM"`, "AT+CNMI=2,1,0,0,0", "AT+CMGL=4"}
		if got := f.commands(); !slices.Equal(got, want) {
			t.Fatalf("commands\n%q\nwant\n%q", got, want)
		}
		h := r.m.Health()
		if h.State != modem.StateReady || h.SIM != modem.SIMReady || h.Registration != modem.RegHome ||
			h.Operator != "TELKOMSEL" || h.SignalRSSI != 20 || h.SignalDBm != -73 ||
			h.StorageUsed != 2 || h.StorageTotal != 30 || h.Restarts != 0 {
			t.Fatalf("health %+v", h)
		}
		if listErr != nil || len(listed) != 2 || listed[0] != (modem.Stored{Index: 1, Stat: 1, PDU: pduA}) || listed[1].PDU != pduB {
			t.Fatalf("List from Ready: %+v, %v", listed, listErr)
		}
		rec.mu.Lock()
		last := rec.healths[len(rec.healths)-1]
		rec.mu.Unlock()
		if last.State != modem.StateReady || last.Operator != "TELKOMSEL" {
			t.Fatalf("last Health event %+v", last)
		}

		// The health poll runs every HealthInterval.
		before := f.count("AT+CSQ")
		time.Sleep(modem.DefaultHealthInterval + time.Second)
		if f.count("AT+CSQ") != before+1 || f.count("AT+CPMS?") != 1 {
			t.Fatalf("after one interval: %d AT+CSQ (was %d), %d AT+CPMS?", f.count("AT+CSQ"), before, f.count("AT+CPMS?"))
		}
	})
}

func TestMessagesReadDeleteSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, modem.Config{}, nil)
		defer r.stop(t)
		r.waitReady(t, 1)
		ctx := context.Background()

		s, err := r.m.Read(ctx, 2)
		if err != nil || s != (modem.Stored{Index: 2, Stat: 1, PDU: pduB}) {
			t.Fatalf("Read(2) = %+v, %v", s, err)
		}
		if err := r.m.Delete(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := r.m.Read(ctx, 2); !errors.Is(err, modem.ErrEmptySlot) {
			t.Fatalf("Read of a deleted slot: %v, want ErrEmptySlot", err)
		}
		list, err := r.m.List(ctx)
		if err != nil || len(list) != 1 || list[0].Index != 1 {
			t.Fatalf("List after delete: %+v, %v", list, err)
		}

		const pdu = "0001000B912618485610F9000005C8329BFD06"
		mr, err := r.m.Send(ctx, len(pdu)/2-1, pdu)
		if err != nil || mr != 1 {
			t.Fatalf("Send = %d, %v", mr, err)
		}
		f.mu.Lock()
		sent := slices.Clone(f.sent)
		f.mu.Unlock()
		if !slices.Equal(sent, []string{pdu}) {
			t.Fatalf("modem got %q", sent)
		}

		for _, err := range []error{
			func() error { _, err := r.m.Read(ctx, -1); return err }(),
			r.m.Delete(ctx, 100000),
			func() error { _, err := r.m.Send(ctx, 5, "xyz"); return err }(),
		} {
			if !errors.Is(err, modem.ErrInvalid) {
				t.Errorf("bad input: %v, want ErrInvalid", err)
			}
		}
	})
}

func TestEmptySlotQuectelStyle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.override = func(_ int, cmd string) ([]string, bool) {
			if cmd == "AT+CMGR=7" {
				return []string{"+CMS ERROR: 321"}, true
			}
			if cmd == "AT+CMGR=8" {
				return []string{"+CMGR: 0,,0", "OK"}, true
			}
			return nil, false
		}
		r := start(t, f, modem.Config{}, nil)
		defer r.stop(t)
		r.waitReady(t, 1)
		for _, i := range []int{7, 8} {
			if _, err := r.m.Read(context.Background(), i); !errors.Is(err, modem.ErrEmptySlot) {
				t.Errorf("Read(%d): %v, want ErrEmptySlot", i, err)
			}
		}
	})
}

func TestOperationsWaitForReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.noSIM = true
		r := start(t, f, modem.Config{}, nil)
		defer r.stop(t)
		ctx := context.Background()
		if _, err := r.m.List(ctx); !errors.Is(err, modem.ErrNotReady) {
			t.Fatalf("List before Run got going: %v, want ErrNotReady", err)
		}
		h := r.waitState(t, modem.StateNoSIM)
		if h.SIM != modem.SIMNotInserted || !strings.Contains(h.LastError, "SIM not inserted") {
			t.Fatalf("health %+v", h)
		}
		if _, err := r.m.Send(ctx, 1, "0000"); !errors.Is(err, modem.ErrNotReady) {
			t.Fatalf("Send without SIM: %v, want ErrNotReady", err)
		}
		// The SIM is inserted: the +CPIN URC has it picked up without reopening.
		f.set(func(f *fakeModem) { f.noSIM = false })
		f.send(frame("+CPIN: READY"))
		r.waitReady(t, 1)
		if f.openCount() != 1 {
			t.Fatalf("port opened %d times", f.openCount())
		}
	})
}

func TestPINEnteredOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.pin = "1234"
		r := start(t, f, modem.Config{PIN: "1234"}, nil)
		defer r.stop(t)
		r.waitReady(t, 1)
		if n := f.count("AT+CPIN="); n != 1 {
			t.Fatalf("AT+CPIN= sent %d times", n)
		}
		if h := r.m.Health(); h.SIM != modem.SIMReady || h.State != modem.StateReady {
			t.Fatalf("health %+v", h)
		}
	})
}

func TestWrongPINIsNeverRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.pin = "1234"
		r := start(t, f, modem.Config{PIN: "0000"}, nil)
		defer r.stop(t)
		h := r.waitState(t, modem.StateSIMLocked)
		if h.SIM != modem.SIMPINRequired || !strings.Contains(h.LastError, modem.ErrWrongPIN.Error()) ||
			!strings.Contains(h.LastError, "incorrect password") || strings.Contains(h.LastError, "0000") {
			t.Fatalf("health %+v", h)
		}
		// Minutes pass, the SIM is asked about again, the port is even reopened: no second PIN.
		time.Sleep(5 * modem.DefaultHealthInterval)
		f.hangUp()
		poll.True(t, fakeWait, "port reopened", func() bool { return f.openCount() == 2 })
		r.waitState(t, modem.StateSIMLocked)
		time.Sleep(5 * modem.DefaultHealthInterval)
		if n := f.count("AT+CPIN="); n != 1 {
			t.Fatalf("AT+CPIN= sent %d times, want exactly 1", n)
		}
		if n := f.count("AT+CPIN?"); n < 5 {
			t.Fatalf("AT+CPIN? asked %d times: the SIM is not watched", n)
		}
		if r.rec.readyCount() != 0 {
			t.Fatal("Ready with a locked SIM")
		}
		if _, err := r.m.List(context.Background()); !errors.Is(err, modem.ErrNotReady) {
			t.Fatalf("List with a locked SIM: %v, want ErrNotReady", err)
		}
	})
}

func TestPINNotEnteredWhenUnsafe(t *testing.T) {
	cases := []struct {
		name   string
		cfgPIN string
		setup  func(f *fakeModem)
		want   string
		sim    string
	}{
		{"none configured", "", func(f *fakeModem) {}, "SIM PIN required but none configured", modem.SIMPINRequired},
		{"last attempt", "1234", func(f *fakeModem) { f.attempts, f.reportAttempts = 1, true }, "1 attempt(s) left", modem.SIMPINRequired},
		{"not digits", `12"4`, func(f *fakeModem) {}, "not 4 to 8 digits", modem.SIMPINRequired},
		{"PUK", "1234", func(f *fakeModem) { f.attempts = 0 }, "PUK", modem.SIMPUKRequired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake()
				f.pin = "1234"
				c.setup(f)
				r := start(t, f, modem.Config{PIN: c.cfgPIN}, nil)
				defer r.stop(t)
				h := r.waitState(t, modem.StateSIMLocked)
				if !strings.Contains(h.LastError, c.want) || h.SIM != c.sim {
					t.Fatalf("health %+v, want LastError with %q and SIM %s", h, c.want, c.sim)
				}
				time.Sleep(3 * modem.DefaultHealthInterval)
				if n := f.count("AT+CPIN="); n != 0 {
					t.Fatalf("AT+CPIN= sent %d times", n)
				}
			})
		})
	}
}

func TestReopensAfterEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		r := start(t, f, modem.Config{}, nil)
		defer r.stop(t)
		r.waitReady(t, 1)
		f.hangUp()
		r.waitReady(t, 2)
		if f.openCount() != 2 {
			t.Fatalf("port opened %d times, want 2", f.openCount())
		}
		h := r.m.Health()
		if h.State != modem.StateReady || h.Restarts != 1 || !strings.Contains(h.LastError, "port closed") {
			t.Fatalf("health %+v", h)
		}
	})
}

func TestReopensWhenSilent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.override = func(open int, cmd string) ([]string, bool) {
			// The first connection stops answering once it is initialised, as a wedged
			// modem does.
			if open == 1 && cmd != "AT+CNMI=2,1,0,0,0" && f.countLocked("AT+CNMI=") > 0 {
				return nil, true
			}
			return nil, false
		}
		r := start(t, f, modem.Config{}, nil)
		defer r.stop(t)
		r.waitReady(t, 1)
		began := time.Now()
		r.waitReady(t, 2)
		if f.openCount() != 2 {
			t.Fatalf("port opened %d times, want 2", f.openCount())
		}
		// One health interval, then SilenceLimit (2 * 5s), then a second of back-off.
		if took := time.Since(began); took > modem.DefaultHealthInterval+15*time.Second {
			t.Errorf("silence noticed after %v", took)
		}
		if h := r.m.Health(); !strings.Contains(h.LastError, "silent") {
			t.Fatalf("LastError %q does not say the modem was silent", h.LastError)
		}
	})
}

func TestTimedOutCommandTriggersProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.override = func(open int, cmd string) ([]string, bool) {
			if open == 1 && (cmd == "AT+CMGL=4" || f.countLocked("AT+CMGL=4") > 0) {
				return nil, true
			}
			return nil, false
		}
		r := start(t, f, modem.Config{}, nil)
		defer r.stop(t)
		r.waitReady(t, 1)
		began := time.Now()
		if _, err := r.m.List(context.Background()); !errors.Is(err, modem.ErrTimeout) {
			t.Fatalf("List: %v, want ErrTimeout", err)
		}
		r.waitReady(t, 2)
		// The timeout sends the health loop probing at once, not at the next interval.
		if took := time.Since(began); took >= 60*time.Second+modem.DefaultHealthInterval {
			t.Errorf("reopened %v after the listing began", took)
		}
	})
}

func TestPowerDownAndRestartReinitialise(t *testing.T) {
	for _, urc := range []string{"UNDER-VOLTAGE POWER DOWN", "NORMAL POWER DOWN", "RDY", "+CPIN: NOT READY"} {
		t.Run(urc, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake()
				r := start(t, f, modem.Config{}, nil)
				defer r.stop(t)
				r.waitReady(t, 1)
				f.send(frame("UNDER-VOLTAGE WARNNING"))
				poll.True(t, fakeWait, "voltage warning in health", func() bool {
					return strings.Contains(r.m.Health().LastError, "UNDER-VOLTAGE WARNNING")
				})
				if r.m.Health().State != modem.StateReady {
					t.Fatalf("a warning alone changed the state: %+v", r.m.Health())
				}
				f.send(frame(urc))
				r.waitReady(t, 2)
				if h := r.m.Health(); !strings.Contains(h.LastError, urc) {
					t.Fatalf("LastError %q does not name %q", h.LastError, urc)
				}
			})
		})
	}
}

func TestURCsReachEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		rec := &recorder{}
		var r *rig
		var read modem.Stored
		var readErr error
		readDone := make(chan struct{})
		// A callback may send commands: it runs on the events goroutine, not the reader.
		rec.onNewMsg = func(_ string, index int) {
			read, readErr = r.m.Read(context.Background(), index)
			close(readDone)
		}
		r = start(t, f, modem.Config{}, rec)
		defer r.stop(t)
		r.waitReady(t, 1)

		f.set(func(f *fakeModem) { f.msgs[5] = pduB })
		f.send(frame(`+CMTI: "SM",5`))
		<-readDone
		if readErr != nil || read.Index != 5 || read.PDU != pduB {
			t.Fatalf("Read from NewMessage: %+v, %v", read, readErr)
		}
		f.send(frame("+CMT: ,23") + pduA + "\r\n")
		f.send(frame("+CREG: 5"))
		poll.Until(t, fakeWait, "registration URC", func() (bool, string) {
			h := r.m.Health()
			return h.Registration == modem.RegRoaming && h.State == modem.StateReady, fmt.Sprintf("%+v", h)
		})
		f.send(frame("+CREG: 2"))
		r.waitState(t, modem.StateSearching)
		f.send(frame("+CREG: 3"))
		r.waitState(t, modem.StateDenied)
		// Registration is health, updated by the reader; messages are callbacks on the events
		// goroutine, which may still be handing the direct one over.
		poll.Until(t, fakeWait, "the message callbacks", func() (bool, string) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return slices.Equal(rec.newMsgs, []string{"SM/5"}) && slices.Equal(rec.direct, []string{pduA}),
				fmt.Sprintf("new %q, direct %q", rec.newMsgs, rec.direct)
		})
	})
}

func TestLTERegistrationCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.creg, f.cereg = "+CREG: 0,0", "+CEREG: 0,1"
		r := start(t, f, modem.Config{}, nil)
		defer r.stop(t)
		r.waitReady(t, 1)
		if h := r.m.Health(); h.Registration != modem.RegHome || h.State != modem.StateReady {
			t.Fatalf("health %+v", h)
		}
		time.Sleep(modem.DefaultHealthInterval + time.Second)
		if n := f.count("AT+CEREG?"); n != 2 {
			t.Fatalf("AT+CEREG? asked %d times, want at start-up and at the poll", n)
		}
	})
}

func TestStorageFallsBackToME(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.cpmsSM = false
		r := start(t, f, modem.Config{}, nil)
		defer r.stop(t)
		r.waitReady(t, 1)
		if h := r.m.Health(); h.StorageTotal != 100 {
			t.Fatalf("health %+v, want the ME storage of 100", h)
		}
		if f.count(`AT+CPMS="ME"`) != 1 || f.count(`AT+CPMS="SM"`) < 2 {
			t.Fatalf("SM asked %d times, ME %d", f.count(`AT+CPMS="SM"`), f.count(`AT+CPMS="ME"`))
		}
	})
}

func TestAbsentPortBacksOffAndPowerCycles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.openErr = errors.New("open /dev/ttyUSB2: no such file or directory")
		var mu sync.Mutex
		var cycles []int // failed opens at each power cycle
		var stamps []time.Time
		cfg := modem.Config{PowerCycle: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			f.mu.Lock()
			defer f.mu.Unlock()
			cycles = append(cycles, f.failedOpens)
			stamps = append(stamps, time.Now())
			if len(cycles) == 2 {
				f.openErr = nil // the modem comes back after the second power cycle
			}
			return nil
		}}
		began := time.Now()
		r := start(t, f, cfg, nil)
		defer r.stop(t)
		h := r.waitState(t, modem.StateAbsent)
		if !strings.Contains(h.LastError, "no such file") {
			t.Fatalf("health %+v", h)
		}
		r.waitReady(t, 1)
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(cycles, []int{3, 6}) {
			t.Fatalf("power cycles after %v failed opens, want [3 6]", cycles)
		}
		// Back-off 1s, 2s before the first cycle; 4s, 8s, 16s before the second.
		if d := stamps[0].Sub(began); d != 3*time.Second {
			t.Errorf("first power cycle after %v, want 3s", d)
		}
		if d := stamps[1].Sub(stamps[0]); d != 4*time.Second+8*time.Second+16*time.Second {
			t.Errorf("second power cycle %v after the first, want 28s", d)
		}
		if h := r.m.Health(); h.Restarts != 6 || h.State != modem.StateReady {
			t.Fatalf("health %+v", h)
		}
	})
}

func TestModemAnsweringErrorToEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.override = func(int, string) ([]string, bool) { return []string{"ERROR"}, true }
		r := start(t, f, modem.Config{}, nil)
		defer r.stop(t)
		h := r.waitState(t, modem.StateError)
		if !strings.Contains(h.LastError, "did not answer AT") {
			t.Fatalf("health %+v", h)
		}
		time.Sleep(10 * time.Minute)
		// About one AT a second while waiting, and back-off between attempts: no spinning.
		if n := len(f.commands()); n > 700 {
			t.Fatalf("%d commands in 10 minutes", n)
		}
		if f.openCount() < 5 {
			t.Fatalf("only %d attempts in 10 minutes", f.openCount())
		}
	})
}

func TestGarbageAnswersReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.override = func(open int, cmd string) ([]string, bool) {
			if open != 1 || f.countLocked("AT+CNMI=") == 0 {
				return nil, false
			}
			switch cmd {
			case "AT+CSQ", "AT+CREG?", "AT+COPS?", "AT+CPMS?":
				return []string{"\xff\xfe\x01", "+CSQ: ??", "OK"}, true
			}
			return nil, false
		}
		r := start(t, f, modem.Config{}, nil)
		defer r.stop(t)
		r.waitReady(t, 1)
		r.waitReady(t, 2)
		h := r.m.Health()
		if !strings.Contains(h.LastError, "nothing usable") || h.Garbage < 3 {
			t.Fatalf("health %+v", h)
		}
	})
}

func TestRunRefusesBadConfig(t *testing.T) {
	if err := modem.New(modem.Config{}, modem.Events{}).Run(t.Context()); !errors.Is(err, modem.ErrInvalid) {
		t.Fatalf("Run without Open: %v, want ErrInvalid", err)
	}
}

func TestSignalDBm(t *testing.T) {
	for _, c := range []struct{ rssi, dbm int }{
		{0, -113}, {1, -111}, {2, -109}, {10, -93}, {20, -73}, {30, -53}, {31, -51}, {99, 0}, {-1, 0}, {32, 0}, {100, 0},
	} {
		if got := modem.SignalDBm(c.rssi); got != c.dbm {
			t.Errorf("SignalDBm(%d) = %d, want %d", c.rssi, got, c.dbm)
		}
	}
}
