package modem_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/modem"
	"github.com/kentongan/kentongan/test/poll"
)

// wait is how long a test waits for something that should happen at once; it only matters
// when something is broken.
const wait = 10 * time.Second

// step is one exchange of a playback, in the style of periph.io's conntest.Playback: the peer
// waits until the host has written want, then waits for gate (if any), then writes reply, then
// hangs up if hangUp is set.
type step struct {
	want   string
	reply  string
	gate   chan struct{}
	hangUp bool
}

// peer is the modem's end of a net.Pipe playing a script.
type peer struct {
	conn net.Conn
	done chan struct{}

	mu      sync.Mutex
	written []byte // everything the host wrote
	errs    []string
}

func (p *peer) Written() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.written)
}

func (p *peer) fail(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, fmt.Sprintf(format, args...))
}

func (p *peer) play(steps []step) {
	defer close(p.done)
	buf := make([]byte, 512)
	pos := 0
	read := func() bool {
		n, err := p.conn.Read(buf)
		p.mu.Lock()
		p.written = append(p.written, buf[:n]...)
		p.mu.Unlock()
		return err == nil
	}
	for i, st := range steps {
		for len(p.Written())-pos < len(st.want) {
			if !read() {
				p.fail("step %d: host stopped before writing %q (wrote %q)", i, st.want, p.Written()[pos:])
				return
			}
		}
		if got := p.Written()[pos : pos+len(st.want)]; got != st.want {
			p.fail("step %d: host wrote %q, want %q", i, got, st.want)
		}
		pos += len(st.want)
		if st.gate != nil {
			<-st.gate
		}
		if st.reply != "" {
			if _, err := p.conn.Write([]byte(st.reply)); err != nil {
				p.fail("step %d: write reply: %v", i, err)
				return
			}
		}
		if st.hangUp {
			p.conn.Close()
			return
		}
	}
	for read() {
	}
}

// urcs records the URCs the engine hands on.
type urcs struct {
	mu   sync.Mutex
	list []modem.URC
}

func (u *urcs) add(x modem.URC) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.list = append(u.list, x)
}

func (u *urcs) get() []modem.URC {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]modem.URC(nil), u.list...)
}

func (u *urcs) waitN(t *testing.T, n int) []modem.URC {
	t.Helper()
	poll.True(t, wait, "URCs", func() bool { return len(u.get()) >= n })
	return u.get()
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// playback starts an engine whose port is a peer playing steps.
func playback(t *testing.T, steps ...step) (*modem.AT, *peer, *urcs) {
	t.Helper()
	host, dev := net.Pipe()
	p := &peer{conn: dev, done: make(chan struct{})}
	go p.play(steps)
	u := &urcs{}
	at := modem.NewAT(host, u.add, testLogger(t))
	t.Cleanup(func() {
		at.Close()
		<-at.Done() // nothing may log once the test is over
		dev.Close()
		<-p.done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errs {
			t.Error(e)
		}
	})
	return at, p, u
}

func command(t *testing.T, at *modem.AT, cmd string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	return at.Command(ctx, cmd, wait)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCommandFramingVariants(t *testing.T) {
	cases := []struct {
		name, reply string
	}{
		{"echo off, CRLF", "\r\n+CSQ: 21,0\r\n\r\nOK\r\n"},
		{"echo on", "AT+CSQ\r\r\n+CSQ: 21,0\r\n\r\nOK\r\n"},
		{"bare LF", "\n+CSQ: 21,0\n\nOK\n"},
		{"CR CR LF", "\r\r\n+CSQ: 21,0\r\r\n\r\r\nOK\r\r\n"},
		{"bare CR", "\r+CSQ: 21,0\r\rOK\r"},
		{"blank lines and spaces", "\r\n\r\n  \r\n+CSQ: 21,0  \r\n\r\n\r\nOK\r\n"},
		{"split in bytes", "\r\n+C"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			steps := []step{{want: "AT+CSQ\r", reply: c.reply}}
			if c.name == "split in bytes" {
				steps = append(steps, step{reply: "SQ: 2"}, step{reply: "1,0\r"}, step{reply: "\nO"}, step{reply: "K\r\n"})
			}
			at, _, _ := playback(t, steps...)
			lines, err := command(t, at, "AT+CSQ")
			if err != nil {
				t.Fatal(err)
			}
			if !equal(lines, []string{"+CSQ: 21,0"}) {
				t.Fatalf("lines %q", lines)
			}
		})
	}
}

func TestCommandDropsOnlyItsOwnEcho(t *testing.T) {
	at, _, _ := playback(t, step{want: "ATI\r", reply: "ATI\r\r\nSIM800 R14.18\r\n\r\nOK\r\n"})
	lines, err := command(t, at, "ATI")
	if err != nil {
		t.Fatal(err)
	}
	if !equal(lines, []string{"SIM800 R14.18"}) {
		t.Fatalf("lines %q", lines)
	}
}

func TestURCInTheMiddleOfAListing(t *testing.T) {
	const pdu1 = "07912658050000F0040B912618485610F90000521130021044800AC8329BFD06"
	const pdu2 = "07912658050000F0040B912618485610F90000521130021044800AC8329BFD07"
	at, _, u := playback(t, step{want: "AT+CMGL=4\r", reply: "\r\n+CMGL: 1,1,,23\r\n" + pdu1 + "\r\n" +
		"+CMGL: 2,0,,23\r\n" + pdu2 + "\r\n" +
		"\r\n+CMTI: \"SM\",3\r\n" + "\r\nRING\r\n" + "\r\n+CREG: 5\r\n" + "\r\nOK\r\n"})
	lines, err := command(t, at, "AT+CMGL=4")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"+CMGL: 1,1,,23", pdu1, "+CMGL: 2,0,,23", pdu2}
	if !equal(lines, want) {
		t.Fatalf("lines\n%q\nwant\n%q", lines, want)
	}
	got := u.waitN(t, 3)
	if got[0].Kind != modem.URCNewMessage || got[0].Storage != "SM" || got[0].Index != 3 {
		t.Errorf("first URC %+v, want +CMTI SM 3", got[0])
	}
	if got[1].Kind != modem.URCRing {
		t.Errorf("second URC %+v, want RING", got[1])
	}
	if got[2].Kind != modem.URCRegistration || got[2].Stat != 5 {
		t.Errorf("third URC %+v, want registration stat 5", got[2])
	}
}

func TestRegistrationAnswerAndURCAreTold(t *testing.T) {
	at, _, u := playback(t, step{want: "AT+CREG?\r", reply: "\r\n+CREG: 2\r\n" +
		"\r\n+CREG: 1,\"00AB\",\"1234\"\r\n" + // URC with location: second field quoted
		"\r\n+CREG: 2,1,\"00AB\",\"1234\"\r\n" + // the answer, mode 2
		"\r\nOK\r\n"})
	lines, err := command(t, at, "AT+CREG?")
	if err != nil {
		t.Fatal(err)
	}
	if !equal(lines, []string{`+CREG: 2,1,"00AB","1234"`}) {
		t.Fatalf("lines %q", lines)
	}
	got := u.waitN(t, 2)
	if got[0].Kind != modem.URCRegistration || got[0].Stat != 2 || got[1].Kind != modem.URCRegistration || got[1].Stat != 1 {
		t.Fatalf("URCs %+v", got)
	}
}

func TestPrefixOfCommandInFlightIsAnAnswer(t *testing.T) {
	at, _, u := playback(t,
		step{want: "AT+CPMS?\r", reply: "\r\n+CPMS: \"SM\",1,30,\"SM\",1,30,\"SM\",1,30\r\n\r\nOK\r\n"},
		step{reply: "\r\n+CPMS: 9,9\r\n\r\n+CPIN: NOT INSERTED\r\n"})
	lines, err := command(t, at, "AT+CPMS?")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "+CPMS:") {
		t.Fatalf("lines %q", lines)
	}
	got := u.waitN(t, 2)
	if got[0].Kind != modem.URCOther || got[0].Line != "+CPMS: 9,9" {
		t.Errorf("unclaimed +CPMS: %+v, want URCOther", got[0])
	}
	if got[1].Kind != modem.URCSIM {
		t.Errorf("+CPIN with no AT+CPIN? in flight: %+v, want URCSIM", got[1])
	}
}

func TestBootURCs(t *testing.T) {
	_, _, u := playback(t, step{reply: "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nCall Ready\r\n\r\nSMS Ready\r\n" +
		"\r\nUNDER-VOLTAGE WARNNING\r\n\r\nNORMAL POWER DOWN\r\n\r\n+QIND: SMS DONE\r\n"})
	want := []modem.URCKind{modem.URCReady, modem.URCOther, modem.URCSIM, modem.URCCallReady, modem.URCSMSReady,
		modem.URCPowerDown, modem.URCPowerDown, modem.URCSMSReady}
	got := u.waitN(t, len(want))
	for i, k := range want {
		if got[i].Kind != k {
			t.Errorf("URC %d %q: kind %v, want %v", i, got[i].Line, got[i].Kind, k)
		}
	}
}

func TestCMTCarriesItsPDU(t *testing.T) {
	const pdu = "07912658050000F0040B912618485610F90000521130021044800AC8329BFD06"
	_, _, u := playback(t, step{reply: "\r\n+CMT: ,23\r\n" + pdu + "\r\n"})
	got := u.waitN(t, 1)
	if got[0].Kind != modem.URCMessage || got[0].PDU != pdu {
		t.Fatalf("URC %+v, want +CMT with its PDU", got[0])
	}
}

func TestFinalResults(t *testing.T) {
	cases := []struct {
		reply string
		check func(error) bool
		text  string
	}{
		{"ERROR", func(err error) bool { return errors.Is(err, modem.ErrError) }, "ERROR"},
		{"+CME ERROR: 10", cme(10, "SIM not inserted"), "SIM not inserted"},
		{"+CME ERROR: SIM not inserted", cme(10, "SIM not inserted"), "SIM not inserted"},
		{"+CME ERROR: 11", cme(11, "SIM PIN required"), "SIM PIN required"},
		{"+CME ERROR: 16", func(err error) bool { return cme(16, "incorrect password")(err) && errors.Is(err, modem.ErrWrongPIN) }, "incorrect password"},
		{"+CME ERROR: incorrect password", func(err error) bool { return errors.Is(err, modem.ErrWrongPIN) }, "incorrect password"},
		{"+CME ERROR: 3", func(err error) bool {
			return cme(3, "operation not allowed")(err) && !errors.Is(err, modem.ErrWrongPIN)
		}, "operation not allowed"},
		{"+CME ERROR: something odd", cme(-1, "something odd"), "something odd"},
		{"+CMS ERROR: 321", cms(321, "invalid memory index"), "invalid memory index"},
		{"+CMS ERROR: 322", cms(322, "memory full"), "memory full"},
		{"+CMS ERROR: memory full", cms(322, "memory full"), "memory full"},
		{"+CMS ERROR: 500", cms(500, "unknown error"), "unknown error"},
		{"+CMS ERROR: 999", cms(999, "unknown message service error"), "999"},
		{"NO CARRIER", result("NO CARRIER"), "NO CARRIER"},
		{"BUSY", result("BUSY"), "BUSY"},
		{"NO ANSWER", result("NO ANSWER"), "NO ANSWER"},
		{"NO DIALTONE", result("NO DIALTONE"), "NO DIALTONE"},
	}
	for _, c := range cases {
		t.Run(c.reply, func(t *testing.T) {
			at, _, _ := playback(t, step{want: "AT+CMGR=1\r", reply: "\r\n" + c.reply + "\r\n"})
			_, err := command(t, at, "AT+CMGR=1")
			if err == nil || !c.check(err) {
				t.Fatalf("error %v (%T)", err, errors.Unwrap(err))
			}
			if !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), "AT+CMGR=1") {
				t.Fatalf("error %q does not name the command and %q", err, c.text)
			}
		})
	}
}

func cme(code int, text string) func(error) bool {
	return func(err error) bool {
		var e *modem.CMEError
		return errors.As(err, &e) && e.Code == code && e.Text == text
	}
}

func cms(code int, text string) func(error) bool {
	return func(err error) bool {
		var e *modem.CMSError
		return errors.As(err, &e) && e.Code == code && e.Text == text
	}
}

func result(r string) func(error) bool {
	return func(err error) bool {
		var e *modem.ResultError
		return errors.As(err, &e) && e.Result == r
	}
}

func TestGarbageIsCountedAndSkipped(t *testing.T) {
	long := strings.Repeat("A", 5000)
	at, _, u := playback(t, step{want: "AT+CSQ\r", reply: "\x00\xff\xfe\x80garbage\x01\r\n" + long + "\r\n" +
		"\xc3\x28\r\n" + "hello?\r\n" + "\r\n+CSQ: 9,0\r\n\x00\r\nOK\r\n"},
		step{reply: "stray words with no command\r\n"})
	lines, err := command(t, at, "AT+CSQ")
	if err != nil {
		t.Fatal(err)
	}
	// "hello?" is text during a command: an information line, as ATI's are.
	if !equal(lines, []string{"hello?", "+CSQ: 9,0"}) {
		t.Fatalf("lines %q", lines)
	}
	poll.True(t, wait, "garbage counted", func() bool { return at.Garbage() >= 4 })
	if len(u.get()) != 0 {
		t.Fatalf("garbage became URCs: %+v", u.get())
	}
}

func TestSendPDU(t *testing.T) {
	const pdu = "0001000B912618485610F9000005C8329BFD06"
	tpdu := len(pdu)/2 - 1
	cmd := "AT+CMGS=" + strconv.Itoa(tpdu) + "\r"
	cases := []struct {
		name  string
		steps []step
	}{
		{"echo off", []step{
			{want: cmd, reply: "\r\n> "},
			{want: pdu + "\x1a", reply: "\r\n+CMGS: 42\r\n\r\nOK\r\n"},
		}},
		{"echo on", []step{
			{want: cmd, reply: cmd + "\r\n> "},
			{want: pdu + "\x1a", reply: pdu + "\x1a\r\n+CMGS: 42\r\n\r\nOK\r\n"},
		}},
		{"prompt without space, URC before it", []step{
			{want: cmd, reply: "\r\n+CMTI: \"SM\",1\r\n\r\n>"},
			{want: pdu + "\x1a", reply: "\r\n+CMGS: 42\r\n\r\nOK\r\n"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at, p, _ := playback(t, c.steps...)
			mr, err := at.SendPDU(t.Context(), tpdu, pdu, wait)
			if err != nil {
				t.Fatal(err)
			}
			if mr != 42 {
				t.Fatalf("message reference %d, want 42", mr)
			}
			if strings.Contains(p.Written(), "\x1b") {
				t.Fatalf("ESC written after a good send: %q", p.Written())
			}
		})
	}
}

func TestSendPDUWritesESCWhenNoPrompt(t *testing.T) {
	const pdu = "0001000B912618485610F9000005C8329BFD06"
	tpdu := len(pdu)/2 - 1
	at, p, _ := playback(t, step{want: "AT+CMGS=" + strconv.Itoa(tpdu) + "\r"})
	_, err := at.SendPDU(t.Context(), tpdu, pdu, 200*time.Millisecond)
	if !errors.Is(err, modem.ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout", err)
	}
	poll.True(t, wait, "ESC written", func() bool { return strings.HasSuffix(p.Written(), "\r\x1b") })
	if strings.Contains(p.Written(), pdu) {
		t.Fatal("PDU written without a prompt")
	}
}

func TestSendPDUWritesESCWhenSendFails(t *testing.T) {
	const pdu = "0001000B912618485610F9000005C8329BFD06"
	tpdu := len(pdu)/2 - 1
	at, p, _ := playback(t,
		step{want: "AT+CMGS=" + strconv.Itoa(tpdu) + "\r", reply: "\r\n> "},
		step{want: pdu + "\x1a", reply: "\r\n+CMS ERROR: 500\r\n"})
	_, err := at.SendPDU(t.Context(), tpdu, pdu, wait)
	if !cms(500, "unknown error")(err) {
		t.Fatalf("error %v, want +CMS ERROR: 500", err)
	}
	poll.True(t, wait, "ESC written", func() bool { return strings.HasSuffix(p.Written(), "\x1a\x1b") })
}

func TestSendPDURefusedBeforePrompt(t *testing.T) {
	const pdu = "0001000B912618485610F9000005C8329BFD06"
	tpdu := len(pdu)/2 - 1
	at, p, _ := playback(t, step{want: "AT+CMGS=" + strconv.Itoa(tpdu) + "\r", reply: "\r\n+CMS ERROR: 302\r\n"})
	_, err := at.SendPDU(t.Context(), tpdu, pdu, wait)
	if !cms(302, "operation not allowed")(err) {
		t.Fatalf("error %v, want +CMS ERROR: 302", err)
	}
	if strings.Contains(p.Written(), pdu) {
		t.Fatal("PDU written without a prompt")
	}
}

func TestBadInputIsRefusedUnsent(t *testing.T) {
	at, p, _ := playback(t)
	for _, cmd := range []string{"", "A", "CSQ", "AT+CSQ\r", "AT\nATD112;", "AT+CMGS=1\x1a", "AT+CPIN=\"1234\"\x1b", strings.Repeat("AT", 400)} {
		if _, err := at.Command(t.Context(), cmd, time.Second); !errors.Is(err, modem.ErrInvalid) {
			t.Errorf("Command(%q): %v, want ErrInvalid", cmd, err)
		}
	}
	for _, c := range []struct {
		n   int
		pdu string
	}{
		{0, "00"}, {-1, "0011"}, {2, "001"}, {2, "00zz11"}, {3, "001122"}, {2, "011122"}, {1, ""}, {200, strings.Repeat("00", 201)},
	} {
		if _, err := at.SendPDU(t.Context(), c.n, c.pdu, time.Second); !errors.Is(err, modem.ErrInvalid) {
			t.Errorf("SendPDU(%d, %q): %v, want ErrInvalid", c.n, c.pdu, err)
		}
	}
	if w := p.Written(); w != "" {
		t.Fatalf("refused input reached the port: %q", w)
	}
}

func TestPINIsRedactedInErrors(t *testing.T) {
	at, _, _ := playback(t, step{want: "AT+CPIN=\"4321\"\r", reply: "\r\n+CME ERROR: 16\r\n"})
	_, err := command(t, at, `AT+CPIN="4321"`)
	if !errors.Is(err, modem.ErrWrongPIN) {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "4321") {
		t.Fatalf("error %q shows the PIN", err)
	}
}

func TestEOFMidCommand(t *testing.T) {
	at, _, _ := playback(t, step{want: "AT+CMGL=4\r", reply: "\r\n+CMGL: 1,0,,5\r\n", hangUp: true})
	_, err := command(t, at, "AT+CMGL=4")
	if !errors.Is(err, modem.ErrClosed) {
		t.Fatalf("error %v, want ErrClosed", err)
	}
	select {
	case <-at.Done():
	case <-time.After(wait):
		t.Fatal("Done not closed after EOF")
	}
	if !errors.Is(at.Err(), io.EOF) {
		t.Fatalf("Err() = %v, want EOF", at.Err())
	}
	if _, err := command(t, at, "AT"); !errors.Is(err, modem.ErrClosed) {
		t.Fatalf("command after EOF: %v, want ErrClosed", err)
	}
}

func TestCloseFailsCommandInFlight(t *testing.T) {
	at, p, _ := playback(t, step{want: "AT+COPS?\r"})
	errc := make(chan error, 1)
	go func() {
		_, err := at.Command(t.Context(), "AT+COPS?", wait)
		errc <- err
	}()
	poll.True(t, wait, "command sent", func() bool { return p.Written() == "AT+COPS?\r" })
	at.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, modem.ErrClosed) {
			t.Fatalf("error %v, want ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatal("command still waiting after Close")
	}
}

func TestTimeoutAndLateAnswer(t *testing.T) {
	gate := make(chan struct{})
	at, _, u := playback(t,
		step{want: "AT+COPS?\r", gate: gate, reply: "\r\n+COPS: 0,0,\"TELKOMSEL\",2\r\n\r\nOK\r\n\r\nRING\r\n"},
		step{want: "AT+CSQ\r", reply: "\r\n+CSQ: 12,0\r\n\r\nOK\r\n"})
	_, err := at.Command(t.Context(), "AT+COPS?", 100*time.Millisecond)
	if !errors.Is(err, modem.ErrTimeout) || !strings.Contains(err.Error(), "AT+COPS?") {
		t.Fatalf("error %v, want ErrTimeout naming the command", err)
	}
	close(gate)
	// RING comes after the late answer, so once it is seen the late answer has been dealt with.
	poll.True(t, wait, "RING after the late answer", func() bool {
		for _, x := range u.get() {
			if x.Kind == modem.URCRing {
				return true
			}
		}
		return false
	})
	lines, err := command(t, at, "AT+CSQ")
	if err != nil {
		t.Fatal(err)
	}
	if !equal(lines, []string{"+CSQ: 12,0"}) {
		t.Fatalf("next command got %q: the late answer leaked into it", lines)
	}
}

func TestContextCancelEndsCommand(t *testing.T) {
	at, p, _ := playback(t, step{want: "AT+CSQ\r"})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := at.Command(ctx, "AT+CSQ", wait)
		errc <- err
	}()
	poll.True(t, wait, "command sent", func() bool { return p.Written() == "AT+CSQ\r" })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatal("command still waiting after cancel")
	}
}

func TestTimeoutForLongCommands(t *testing.T) {
	base := 5 * time.Second
	for cmd, want := range map[string]time.Duration{
		"AT+CMGS=23": 60 * time.Second,
		"AT+COPS?":   30 * time.Second,
		"AT+CSQ":     base,
		"AT+CMGL=4":  60 * time.Second,
	} {
		if got := modem.TimeoutFor(cmd, base); got != want {
			t.Errorf("TimeoutFor(%q) = %v, want %v", cmd, got, want)
		}
	}
}

func TestNilPortFailsCleanly(t *testing.T) {
	at := modem.NewAT(nil, nil, nil)
	if _, err := at.Command(t.Context(), "AT", time.Second); !errors.Is(err, modem.ErrClosed) {
		t.Fatalf("command on a nil port: %v, want ErrClosed", err)
	}
}

// BenchmarkCommand measures one command's round trip through the engine (writer, reader,
// line routing) against a peer that answers at once.
func BenchmarkCommand(b *testing.B) {
	host, dev := net.Pipe()
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := dev.Read(buf); err != nil {
				return
			}
			if _, err := dev.Write([]byte("\r\n+CSQ: 21,0\r\n\r\nOK\r\n")); err != nil {
				return
			}
		}
	}()
	at := modem.NewAT(host, nil, nil)
	defer at.Close()
	ctx := context.Background()
	for b.Loop() {
		if _, err := at.Command(ctx, "AT+CSQ", time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
