package modemtest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tarm/serial"

	"github.com/kentongan/kentongan/drivers/modem/modemtest"
	"github.com/kentongan/kentongan/drivers/modem/pdu"
	"github.com/kentongan/kentongan/test/poll"
)

// wait is the deadline for anything to arrive: generous, it only matters when something broke.
const wait = 10 * time.Second

// host is the code under test's side: a real serial port on the sim's Path.
type host struct {
	t    testing.TB
	port *serial.Port

	mu   sync.Mutex
	buf  []byte
	pos  int   // what expect and cmd have consumed
	err  error // the read error that ended reading
	done chan struct{}
	stop chan struct{}
	once sync.Once
}

func newSim(t testing.TB, o modemtest.Options) *modemtest.Sim {
	t.Helper()
	s, err := modemtest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// open opens path as the code under test would. Reads time out every 100 ms (tarm/serial then
// returns io.EOF) so that the reader can be stopped: closing a port under a blocked read waits
// for the read.
func open(t testing.TB, path string) *host {
	t.Helper()
	p, err := serial.OpenPort(&serial.Config{Name: path, Baud: 115200, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	h := &host{t: t, port: p, done: make(chan struct{}), stop: make(chan struct{})}
	go h.read()
	t.Cleanup(h.close)
	return h
}

// read collects everything the modem sends until the port fails or close is called.
func (h *host) read() {
	defer close(h.done)
	b := make([]byte, 512)
	for {
		n, err := h.port.Read(b)
		h.mu.Lock()
		h.buf = append(h.buf, b[:n]...)
		if err != nil && err != io.EOF {
			h.err = err
		}
		h.mu.Unlock()
		if err != nil && err != io.EOF {
			return
		}
		select {
		case <-h.stop:
			return
		default:
		}
	}
}

func (h *host) close() {
	h.once.Do(func() {
		close(h.stop)
		<-h.done
		h.port.Close()
	})
}

func (h *host) write(s string) {
	h.t.Helper()
	if _, err := h.port.Write([]byte(s)); err != nil {
		h.t.Fatalf("write %q: %v", s, err)
	}
}

// unread returns what arrived after the consumed part.
func (h *host) unread() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.buf[h.pos:])
}

// expect waits for re to match what arrived after the consumed part, consumes up to the end of
// the match and returns the consumed text.
func (h *host) expect(re *regexp.Regexp) string {
	h.t.Helper()
	return h.await("modem output matching "+re.String(), func(b []byte) int {
		if loc := re.FindIndex(b); loc != nil {
			return loc[1]
		}
		return -1
	})
}

func (h *host) expectText(s string) string {
	h.t.Helper()
	return h.await(fmt.Sprintf("modem output %q", s), func(b []byte) int {
		if i := bytes.Index(b, []byte(s)); i >= 0 {
			return i + len(s)
		}
		return -1
	})
}

// await waits until end finds the end of what it looks for in the unconsumed output, and
// consumes up to there.
func (h *host) await(what string, end func([]byte) int) string {
	h.t.Helper()
	var got string
	poll.Until(h.t, wait, what, func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		rest := h.buf[h.pos:]
		n := end(rest)
		if n < 0 {
			return false, fmt.Sprintf("%q", rest)
		}
		got = string(rest[:n])
		h.pos += n
		return true, ""
	})
	return got
}

var final = regexp.MustCompile(`\r\n(OK|ERROR|\+CM[ES] ERROR: [^\r\n]*)\r\n|\r\n> `)

// cmd sends a command line and returns everything up to its final result code or prompt.
func (h *host) cmd(line string) string {
	h.t.Helper()
	h.write(line + "\r")
	return h.expect(final)
}

// ready opens the sim's port, waits for the boot to finish and switches echo off.
func ready(t testing.TB, s *modemtest.Sim) *host {
	t.Helper()
	h := open(t, s.Path())
	h.expectText("SMS Ready\r\n")
	if got := h.cmd("ATE0"); !strings.HasSuffix(got, "\r\nOK\r\n") {
		t.Fatalf("ATE0 answered %q", got)
	}
	return h
}

func mustCmd(t *testing.T, h *host, line, want string) string {
	t.Helper()
	got := h.cmd(line)
	if !strings.Contains(got, want) {
		t.Fatalf("%s answered %q, want it to contain %q", line, got, want)
	}
	return got
}

func TestBootBannerAndEcho(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{})
	h := open(t, s.Path())
	banner := h.expectText("SMS Ready\r\n")
	want := []string{"RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"}
	at := 0
	for _, w := range want {
		i := strings.Index(banner[at:], "\r\n"+w+"\r\n")
		if i < 0 {
			t.Fatalf("banner %q lacks %q in order", banner, w)
		}
		at += i + len(w)
	}

	if got := h.cmd("AT"); got != "AT\r\r\nOK\r\n" {
		t.Fatalf("AT with echo answered %q", got)
	}
	if got := h.cmd("ATE0"); got != "ATE0\r\r\nOK\r\n" {
		t.Fatalf("ATE0 answered %q", got)
	}
	if got := h.cmd("AT"); got != "\r\nOK\r\n" {
		t.Fatalf("AT without echo answered %q", got)
	}
	if got := h.cmd("at+csq"); got != "\r\n+CSQ: 20,0\r\n\r\nOK\r\n" {
		t.Fatalf("lower-case AT+CSQ answered %q", got)
	}
	if got := h.cmd("AT+CSQ;+CREG?"); got != "\r\n+CSQ: 20,0\r\n\r\n+CREG: 0,1\r\n\r\nOK\r\n" {
		t.Fatalf("chained command answered %q", got)
	}
	// A port closed and reopened finds the same modem, echo still off.
	h.close()
	h2 := open(t, s.Path())
	if got := h2.cmd("AT"); got != "\r\nOK\r\n" {
		t.Fatalf("AT after reopening answered %q", got)
	}
}

func TestNetworkCommands(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{RSSI: 14})
	h := ready(t, s)
	mustCmd(t, h, "AT+CSQ", "+CSQ: 14,0")
	s.SetRSSI(99)
	mustCmd(t, h, "AT+CSQ", "+CSQ: 99,0")
	mustCmd(t, h, "AT+CEREG?", "\r\nERROR\r\n")
	mustCmd(t, h, "AT+COPS=3,0", "OK")
	mustCmd(t, h, "AT+COPS?", `+COPS: 0,0,"TELKOMSEL"`)
	mustCmd(t, h, "AT+COPS=3,2", "OK")
	mustCmd(t, h, "AT+COPS?", `+COPS: 0,2,"51010"`)
	mustCmd(t, h, "AT+CREG?", "+CREG: 0,1")
	mustCmd(t, h, "AT+FOO", "\r\nERROR\r\n")
	mustCmd(t, h, "AT+CPMS?", `+CPMS: "SM",0,30,"SM",0,30,"SM",0,30`)
	mustCmd(t, h, `AT+CPMS="SM","SM","SM"`, "+CPMS: 0,30,0,30,0,30")

	// Registration changes are announced once AT+CREG=1 asks for them, as one-field URCs.
	mustCmd(t, h, "AT+CREG=1", "OK")
	s.SetRegistration(2)
	h.expectText("\r\n+CREG: 2\r\n")
	mustCmd(t, h, "AT+CREG?", "+CREG: 1,2")
	mustCmd(t, h, "AT+COPS?", "+COPS: 0\r\n")
	s.SetRegistration(5)
	h.expectText("\r\n+CREG: 5\r\n")

	// V.250 5.2.1: what comes before "AT" on a line is ignored, such as the ESC a host writes
	// to leave a send prompt the modem had already left.
	mustCmd(t, h, "\x1bAT+CSQ", "+CSQ: 99,0")
}

func TestErrorFormats(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{})
	h := ready(t, s)
	mustCmd(t, h, "AT+CMGD=99", "\r\nERROR\r\n")
	mustCmd(t, h, "AT+CMEE=1", "OK")
	mustCmd(t, h, "AT+CMGD=99", "\r\n+CMS ERROR: 321\r\n")
	mustCmd(t, h, "AT+CPIN=\"1234\"", "\r\n+CME ERROR: 3\r\n") // already unlocked
	mustCmd(t, h, "AT+CMEE=2", "OK")
	mustCmd(t, h, "AT+CMGD=99", "\r\n+CMS ERROR: invalid memory index\r\n")
	mustCmd(t, h, "AT+CMGD=x", "\r\nERROR\r\n") // syntax: plain ERROR whatever CMEE says
	if s.Deletes(99) != 0 {
		t.Fatalf("a refused delete was counted")
	}
}

func TestSMSCommandsWaitForSMSReady(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{ReadyDelay: time.Hour})
	h := open(t, s.Path())
	h.expectText("+CPIN: READY\r\n")
	mustCmd(t, h, "AT+CMEE=1", "OK")
	mustCmd(t, h, `AT+CPMS="SM","SM","SM"`, "+CMS ERROR: 302")
	mustCmd(t, h, "AT+CNMI=2,1,0,0,0", "+CMS ERROR: 302")
	mustCmd(t, h, "AT+CREG?", "+CREG: 0,0")
	if idx, err := s.Deliver("+6281234567890", "tolong"); err != nil || idx[0] != 0 || s.Backlog() != 1 {
		t.Fatalf("delivery before SMS Ready: %v %v, backlog %d", idx, err, s.Backlog())
	}
}

func decodeStored(t *testing.T, hexPDU string) *pdu.Deliver {
	t.Helper()
	d, err := pdu.DecodeDeliver(hexPDU)
	if err != nil {
		t.Fatalf("stored PDU %q: %v", hexPDU, err)
	}
	return d
}

func TestListReadDelete(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{})
	h := ready(t, s)
	mustCmd(t, h, "AT+CMGF=0", "OK")
	mustCmd(t, h, "AT+CNMI=2,1,0,0,0", "OK")

	idx, err := s.Deliver("+6281234567890", "Kebakaran di RT 03")
	if err != nil {
		t.Fatal(err)
	}
	if len(idx) != 1 || idx[0] != 1 {
		t.Fatalf("Deliver stored at %v, want [1]", idx)
	}
	h.expectText("\r\n+CMTI: \"SM\",1\r\n")
	if _, err := s.Deliver("+6281298765432", "Banjir"); err != nil {
		t.Fatal(err)
	}
	h.expectText("\r\n+CMTI: \"SM\",2\r\n")

	stored := s.Stored()
	got := h.cmd("AT+CMGL=4")
	want := "\r\n+CMGL: 1,0,," + tpduLen(stored[1]) + "\r\n" + stored[1] + "\r\n" +
		"+CMGL: 2,0,," + tpduLen(stored[2]) + "\r\n" + stored[2] + "\r\n\r\nOK\r\n"
	if got != want {
		t.Fatalf("AT+CMGL=4 answered\n%q\nwant\n%q", got, want)
	}
	d := decodeStored(t, stored[1])
	if d.From.Number != "+6281234567890" || d.Text != "Kebakaran di RT 03" {
		t.Fatalf("stored message is from %q: %q", d.From.Number, d.Text)
	}
	// Listed messages are read now.
	mustCmd(t, h, "AT+CMGL=0", "\r\nOK\r\n")
	if got := h.cmd("AT+CMGL=0"); got != "\r\nOK\r\n" {
		t.Fatalf("unread listing after a full listing: %q", got)
	}
	mustCmd(t, h, "AT+CMGR=2", "\r\n+CMGR: 1,,"+tpduLen(stored[2])+"\r\n"+stored[2]+"\r\n\r\nOK\r\n")

	mustCmd(t, h, "AT+CMGD=1", "OK")
	if _, ok := s.Stored()[1]; ok || s.Deletes(1) != 1 {
		t.Fatalf("after AT+CMGD=1: stored %v, deletes %d", s.Stored(), s.Deletes(1))
	}
	if got := h.cmd("AT+CMGR=1"); got != "\r\nOK\r\n" {
		t.Fatalf("AT+CMGR of an empty slot answered %q, want a bare OK", got)
	}
	mustCmd(t, h, "AT+CMGD=1", "OK") // an empty slot deletes fine, and counts
	mustCmd(t, h, "AT+CMGD=31", "ERROR")
	if s.Deletes(1) != 2 || s.Deletes(31) != 0 {
		t.Fatalf("deletes: index 1 %d, index 31 %d", s.Deletes(1), s.Deletes(31))
	}
	mustCmd(t, h, "AT+CMGD=1,4", "OK")
	if len(s.Stored()) != 0 {
		t.Fatalf("AT+CMGD=1,4 left %v", s.Stored())
	}
	mustCmd(t, h, "AT+CMGF=1", "OK")
	mustCmd(t, h, "AT+CMGL=4", "ERROR") // text mode is not emulated
}

func tpduLen(hexPDU string) string {
	smsc, err := strconv.ParseUint(hexPDU[:2], 16, 8)
	if err != nil {
		panic(err)
	}
	return itoa(len(hexPDU)/2 - 1 - int(smsc))
}

func itoa(n int) string { return strconv.Itoa(n) }

// send types one PDU at the AT+CMGS prompt and returns the answer to it.
func send(t *testing.T, h *host, part pdu.Submit, end string) string {
	t.Helper()
	if got := h.cmd("AT+CMGS=" + itoa(part.TPDULen)); got != "\r\n> " {
		t.Fatalf("AT+CMGS answered %q, want the prompt", got)
	}
	h.write(part.PDU + end)
	return h.expect(final)
}

func TestSend(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 8, 30, 0, 0, time.FixedZone("WIB", 7*3600))
	s := newSim(t, modemtest.Options{Now: func() time.Time { return at }})
	h := ready(t, s)
	mustCmd(t, h, "AT+CMEE=1", "OK")

	parts, err := pdu.EncodeSubmit("+6281234567890", "Laporan diterima, tiket 112-000042", pdu.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := send(t, h, parts[0], "\x1a"); got != "\r\n+CMGS: 0\r\n\r\nOK\r\n" {
		t.Fatalf("sending answered %q", got)
	}
	sent, err := s.WaitSent(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m := sent[0]; m.To != "+6281234567890" || m.Text != "Laporan diterima, tiket 112-000042" || m.Parts != 1 || !m.At.Equal(at) || len(m.PDUs) != 1 {
		t.Fatalf("sent %+v", m)
	}

	// A two-part message is one Sent once both parts came.
	long := strings.Repeat("Petugas sedang menuju lokasi. ", 8)
	parts, err = pdu.EncodeSubmit("081234567890", long, pdu.SubmitOptions{Ref: 7})
	if err != nil || len(parts) != 2 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	if got := send(t, h, parts[0], "\x1a"); !strings.Contains(got, "+CMGS: 1") {
		t.Fatalf("part 1 answered %q", got)
	}
	if n := len(s.Sent()); n != 1 {
		t.Fatalf("%d messages sent with one part of two", n)
	}
	if got := send(t, h, parts[1], "\x1a"); !strings.Contains(got, "+CMGS: 2") {
		t.Fatalf("part 2 answered %q", got)
	}
	sent, err = s.WaitSent(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if m := sent[1]; m.To != "081234567890" || m.Text != long || m.Parts != 2 || len(m.PDUs) != 2 {
		t.Fatalf("joined message %+v", m)
	}

	// ESC abandons a message.
	if got := send(t, h, parts[0], "\x1b"); got != "\r\nOK\r\n" {
		t.Fatalf("ESC answered %q", got)
	}
	// A length that does not match the PDU, or hex that is no SUBMIT, is refused at once.
	if got := h.cmd("AT+CMGS=" + itoa(parts[0].TPDULen+1)); got != "\r\n> " {
		t.Fatalf("prompt %q", got)
	}
	h.write(parts[0].PDU + "\x1a")
	mustExpect(t, h, "\r\n+CMS ERROR: 304\r\n")
	if got := send(t, h, pdu.Submit{PDU: "00zz", TPDULen: 1}, "\x1a"); got != "\r\n+CMS ERROR: 304\r\n" {
		t.Fatalf("non-hex PDU answered %q", got)
	}
	if n := len(s.SentPDUs()); n != 3 {
		t.Fatalf("%d PDUs accepted, want 3", n)
	}

	// Unregistered, the network refuses.
	s.SetRegistration(0)
	if got := send(t, h, parts[0], "\x1a"); got != "\r\n+CMS ERROR: 331\r\n" {
		t.Fatalf("sending unregistered answered %q", got)
	}
	cmds := s.Commands()
	if last := cmds[len(cmds)-1]; last != parts[0].PDU+"\x1a" {
		t.Fatalf("last command logged %q", last)
	}
}

func mustExpect(t *testing.T, h *host, s string) {
	t.Helper()
	h.expectText(s)
}

func TestFullStorageKeepsTheNetworkRetrying(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{Capacity: 2})
	h := ready(t, s)
	mustCmd(t, h, "AT+CNMI=2,1,0,0,0", "OK")
	for i, want := range []int{1, 2, 0, 0} {
		idx, err := s.Deliver("+6281234567890", "pesan "+itoa(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if idx[0] != want {
			t.Fatalf("message %d stored at %v, want %d", i+1, idx, want)
		}
	}
	if s.Backlog() != 2 {
		t.Fatalf("backlog %d, want 2", s.Backlog())
	}
	mustCmd(t, h, "AT+CPMS?", `+CPMS: "SM",2,2,`)
	mustCmd(t, h, "AT+CMGD=2", "OK")
	h.expectText("\r\n+CMTI: \"SM\",2\r\n")
	if s.Backlog() != 1 {
		t.Fatalf("backlog %d after a delete, want 1", s.Backlog())
	}
	if d := decodeStored(t, s.Stored()[2]); d.Text != "pesan 3" {
		t.Fatalf("slot 2 holds %q, want the oldest held message", d.Text)
	}
	mustCmd(t, h, "AT+CMGD=1,4", "OK")
	h.expectText("\r\n+CMTI: \"SM\",1\r\n")
	if s.Backlog() != 0 || decodeStored(t, s.Stored()[1]).Text != "pesan 4" {
		t.Fatalf("backlog %d, stored %v", s.Backlog(), s.Stored())
	}
}

func TestDeliverPartsAndRawPDUs(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{})
	h := ready(t, s)
	mustCmd(t, h, "AT+CNMI=2,1,0,0,0", "OK")
	long := strings.Repeat("Ada orang pingsan di pos ronda RW 05. ", 10) // 3 parts
	if err := s.DeliverParts("+6281234567890", long, []int{3, 1, 2}, []int{2}, []int{1}); err != nil {
		t.Fatal(err)
	}
	h.expectText("\r\n+CMTI: \"SM\",3\r\n")
	var seqs []int
	for _, i := range s.StoredIndexes() {
		d := decodeStored(t, s.Stored()[i])
		if d.Concat == nil || d.Concat.Total != 3 {
			t.Fatalf("part %d: concat %+v", i, d.Concat)
		}
		seqs = append(seqs, d.Concat.Seq)
	}
	if len(seqs) != 3 || seqs[0] != 3 || seqs[1] != 1 || seqs[2] != 1 {
		t.Fatalf("stored parts %v, want [3 1 1]", seqs)
	}
	if err := s.DeliverParts("+6281234567890", long, []int{4}, nil, nil); !errors.Is(err, modemtest.ErrNoPart) {
		t.Fatalf("part 4 of 3: %v", err)
	}

	idx, err := s.DeliverPDU("00FFFF")
	if err != nil || idx != 4 {
		t.Fatalf("raw PDU stored at %d, %v", idx, err)
	}
	mustCmd(t, h, "AT+CMGR=4", "\r\n+CMGR: 0,,2\r\n00FFFF\r\n\r\nOK\r\n")
	if _, err := s.DeliverPDU("00\r\nOK"); !errors.Is(err, modemtest.ErrBadPDU) {
		t.Fatalf("PDU with a line break: %v", err)
	}

	// Routed directly, a message is printed, not stored.
	mustCmd(t, h, "AT+CNMI=2,2,0,0,0", "OK")
	idx, err = s.DeliverPDU("00FFEE")
	if err != nil || idx != 0 {
		t.Fatalf("direct delivery: index %d, %v", idx, err)
	}
	h.expectText("\r\n+CMT: ,2\r\n00FFEE\r\n")
	if len(s.Stored()) != 4 {
		t.Fatalf("stored %v", s.Stored())
	}
}

func TestURCInsideAnAnswer(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{})
	h := ready(t, s)
	mustCmd(t, h, "AT+CNMI=2,1,0,0,0", "OK")
	for _, text := range []string{"satu", "dua"} {
		if _, err := s.Deliver("+6281234567890", text); err != nil {
			t.Fatal(err)
		}
	}
	h.expectText("+CMTI: \"SM\",2\r\n")
	if err := s.DeliverDuring("AT+CMGL", "+6281234567890", "tiga", modemtest.AfterFirst); err != nil {
		t.Fatal(err)
	}
	got := h.cmd("AT+CMGL=4")
	entries := strings.Split(got, "+CMGL: ")
	if len(entries) != 3 || !strings.Contains(entries[1], "\r\n+CMTI: \"SM\",3\r\n") || strings.Contains(got, "+CMGL: 3,") {
		t.Fatalf("listing with an interleaved delivery: %q", got)
	}
	if len(s.Stored()) != 3 {
		t.Fatalf("stored %v", s.Stored())
	}

	s.InjectURC("+CSQ", "+CREG: 1", modemtest.BeforeFinal)
	if got := h.cmd("AT+CSQ"); got != "\r\n+CSQ: 20,0\r\n\r\n+CREG: 1\r\n\r\nOK\r\n" {
		t.Fatalf("AT+CSQ with a URC before OK: %q", got)
	}
}

func TestFailNextErrorAllGarbage(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{Seed: 1})
	h := ready(t, s)

	s.FailNext("AT+CSQ", "+CME ERROR: 100")
	mustCmd(t, h, "AT+CSQ", "\r\n+CME ERROR: 100\r\n")
	mustCmd(t, h, "AT+CSQ", "+CSQ: 20,0")

	// The network refuses the message: the prompt comes, the failure answers the PDU.
	s.FailNext("+CMGS", "+CMS ERROR: 500")
	parts, err := pdu.EncodeSubmit("+6281234567890", "halo", pdu.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := send(t, h, parts[0], "\x1a"); got != "\r\n+CMS ERROR: 500\r\n" {
		t.Fatalf("refused send answered %q", got)
	}
	if len(s.Sent()) != 0 {
		t.Fatalf("a refused message was recorded: %+v", s.Sent())
	}

	s.SetErrorAll(true)
	mustCmd(t, h, "AT", "\r\nERROR\r\n")
	s.SetErrorAll(false)
	mustCmd(t, h, "AT", "\r\nOK\r\n")

	s.Garbage(true)
	h.write("AT\r")
	var noise string
	poll.Until(t, wait, "the answer's worth of bytes", func() (bool, string) {
		noise = h.unread()
		return len(noise) >= len("\r\nOK\r\n"), noise
	})
	if strings.Contains(noise, "OK") {
		t.Fatalf("garbage mode answered %q", noise)
	}
	s.Garbage(false)
	h.expectText(noise) // consume it
	mustCmd(t, h, "AT", "\r\nOK\r\n")
}

func TestHangStillReads(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{})
	h := ready(t, s)
	s.Hang(true)
	h.write("AT+CSQ\r")
	poll.True(t, wait, "the hung modem to read the command", func() bool {
		c := s.Commands()
		return c[len(c)-1] == "AT+CSQ"
	})
	s.Hang(false)
	// Commands are handled in order, so an answer to the hung AT+CSQ would come before this one.
	if got := h.cmd("AT"); got != "\r\nOK\r\n" {
		t.Fatalf("after a hang, output was %q", got)
	}

	// A power cycle cures a hang.
	s.Hang(true)
	s.PowerOff()
	s.PowerOn()
	h.expectText("SMS Ready\r\n")
	if got := h.cmd("AT"); got != "AT\r\r\nOK\r\n" {
		t.Fatalf("after a power cycle, AT answered %q", got)
	}
}

func TestUnplugReplug(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{})
	h := ready(t, s)
	if err := s.Unplug(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.done:
	case <-time.After(wait):
		t.Fatal("reads did not fail after Unplug")
	}
	if h.err == nil {
		t.Fatal("no read error after Unplug")
	}
	if _, err := h.port.Write([]byte("AT\r")); err == nil {
		t.Fatal("write succeeded after Unplug")
	}
	if _, err := os.Lstat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Path after Unplug: %v", err)
	}
	if _, err := serial.OpenPort(&serial.Config{Name: s.Path(), Baud: 115200}); err == nil {
		t.Fatal("opened an unplugged modem")
	}
	// The network holds a message for the unplugged modem.
	if idx, err := s.Deliver("+6281234567890", "halo"); err != nil || idx[0] != 0 {
		t.Fatalf("delivery while unplugged: %v %v", idx, err)
	}

	if err := s.Replug(); err != nil {
		t.Fatal(err)
	}
	h2 := open(t, s.Path())
	h2.expectText("\r\nRDY\r\n")
	h2.expectText("SMS Ready\r\n")
	if got := h2.cmd("AT"); got != "AT\r\r\nOK\r\n" {
		t.Fatalf("AT after Replug answered %q (echo should be on again)", got)
	}
	if s.PowerCycles() != 1 || s.Backlog() != 0 || len(s.Stored()) != 1 {
		t.Fatalf("after Replug: %d power cycles, backlog %d, stored %v", s.PowerCycles(), s.Backlog(), s.Stored())
	}
}

func TestPowerCycles(t *testing.T) {
	t.Parallel()
	s := newSim(t, modemtest.Options{})
	h := ready(t, s)
	s.PowerOff()
	if s.Powered() {
		t.Fatal("powered after PowerOff")
	}
	s.PowerOn()
	h.expectText("\r\nRDY\r\n")
	h.expectText("SMS Ready\r\n")
	mustCmd(t, h, "AT+CFUN=1,1", "OK")
	h.expectText("\r\nRDY\r\n")
	h.expectText("SMS Ready\r\n")
	s.Brownout()
	h.expectText("\r\nUNDER-VOLTAGE POWER DOWN\r\n")
	h.expectText("SMS Ready\r\n")
	mustCmd(t, h, "ATE0", "OK")
	h.write("AT+CPOWD=1\r")
	h.expectText("\r\nNORMAL POWER DOWN\r\n")
	poll.True(t, wait, "the modem to switch off", func() bool { return !s.Powered() })
	if n := s.PowerCycles(); n != 3 {
		t.Fatalf("%d power cycles, want 3", n)
	}
}

func TestPIN(t *testing.T) {
	t.Parallel()
	t.Run("right", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, modemtest.Options{PIN: "1234"})
		h := open(t, s.Path())
		h.expectText("\r\n+CPIN: SIM PIN\r\n")
		mustCmd(t, h, "ATE0", "OK")
		mustCmd(t, h, "AT+CPIN?", "+CPIN: SIM PIN")
		mustCmd(t, h, "AT+CMGL=4", "ERROR")
		mustCmd(t, h, `AT+CPIN="1234"`, "\r\nOK\r\n")
		h.expectText("\r\n+CPIN: READY\r\n")
		h.expectText("SMS Ready\r\n")
		mustCmd(t, h, "AT+CMGL=4", "\r\nOK\r\n")
	})
	t.Run("wrong", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, modemtest.Options{PIN: "1234"})
		h := open(t, s.Path())
		h.expectText("\r\n+CPIN: SIM PIN\r\n")
		mustCmd(t, h, "ATE0;+CMEE=1", "OK")
		mustCmd(t, h, "AT+SPIC", "+SPIC: 3,10,3,10")
		for range 3 {
			mustCmd(t, h, `AT+CPIN="0000"`, "\r\n+CME ERROR: 16\r\n")
		}
		mustCmd(t, h, "AT+CPIN?", "+CPIN: SIM PUK")
		mustCmd(t, h, "AT+SPIC", "+SPIC: 0,10,3,10")
		// The SIM stays blocked across a power cycle.
		s.PowerOff()
		s.PowerOn()
		h.expectText("\r\n+CPIN: SIM PUK\r\n")
		mustCmd(t, h, "ATE0;+CMEE=1", "OK")
		mustCmd(t, h, `AT+CPIN="12345678","4321"`, "OK")
		h.expectText("SMS Ready\r\n")
		if s.PINState() != "READY" {
			t.Fatalf("PIN state %q after PUK", s.PINState())
		}
	})
}

func TestBadUse(t *testing.T) {
	t.Parallel()
	for _, o := range []modemtest.Options{{Capacity: -1}, {Capacity: 1000}, {PIN: "12"}, {RSSI: 40}} {
		if _, err := modemtest.New(o); !errors.Is(err, modemtest.ErrBadOption) {
			t.Errorf("New(%+v): %v", o, err)
		}
	}
	s, err := modemtest.New(modemtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver("+62812", "x"); !errors.Is(err, modemtest.ErrClosed) {
		t.Fatalf("Deliver after Close: %v", err)
	}
	if _, err := s.WaitSent(context.Background(), 1); !errors.Is(err, modemtest.ErrClosed) {
		t.Fatalf("WaitSent after Close: %v", err)
	}
	if err := s.Replug(); !errors.Is(err, modemtest.ErrClosed) {
		t.Fatalf("Replug after Close: %v", err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Path after Close: %v", err)
	}
	if _, err := s.Deliver("not a number", "x"); err == nil {
		t.Fatal("delivery from a bad sender")
	}
}

// BenchmarkCommandRoundTrip measures one AT command from the host's write to the OK it reads,
// through tarm/serial and the pty, with no emulated modem delay.
func BenchmarkCommandRoundTrip(b *testing.B) {
	s := newSim(b, modemtest.Options{CommandDelay: -1})
	h := ready(b, s)
	h.close()
	p, err := serial.OpenPort(&serial.Config{Name: s.Path(), Baud: 115200, ReadTimeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	buf := make([]byte, 64)
	for b.Loop() {
		if _, err := p.Write([]byte("AT\r")); err != nil {
			b.Fatal(err)
		}
		var got []byte
		for !bytes.HasSuffix(got, []byte("\r\nOK\r\n")) {
			n, err := p.Read(buf)
			if err != nil && err != io.EOF {
				b.Fatal(err)
			}
			got = append(got, buf[:n]...)
			if len(got) > 32 {
				b.Fatalf("AT answered %q", got)
			}
		}
	}
}
