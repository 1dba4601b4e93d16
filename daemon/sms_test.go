package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kentongan/kentongan/drivers/modem/modemtest"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

// The SMS path's bad input and edge cases (issue 3), through a simulated SIM800L on a pty. The
// happy path and a restart between reading and the hub's ack are in test/e2e.

// byID keeps one incident per ID, the last published: the kiosk re-sends until acked.
func byID(ins []mqtt.Incident) map[string]mqtt.Incident {
	out := map[string]mqtt.Incident{}
	for _, in := range ins {
		out[in.ID] = in
	}
	return out
}

func byReporter(t *testing.T, ins []mqtt.Incident, reporter string) mqtt.Incident {
	t.Helper()
	for _, in := range ins {
		if in.Reporter == reporter {
			return in
		}
	}
	t.Fatalf("no incident from %s in %+v", reporter, ins)
	return mqtt.Incident{}
}

// Under the "unverified" policy an unknown sender's report reaches the hub marked unverified,
// with the sender and the parsed category; an RT head's is not marked.
func TestSMSUnknownSenderRaisedUnverified(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "127.0.0.1:0")
	sim := newModemSim(t, modemtest.Options{})
	d := startDaemon(t, smsConfig(t, b.URL(), sim)) // unknown_senders defaults to unverified
	waitModemState(t, d, "ready")

	deliver(t, sim, stranger, "DARURAT KEBAKARAN rumah di gang 3")
	deliver(t, sim, rtHead, "DARURAT MEDIS warga pingsan di pos ronda")
	var got map[string]mqtt.Incident
	poll.Until(t, smsWait, "both reports published", func() (bool, string) {
		got = byID(b.incidents())
		return len(got) >= 2, fmt.Sprint(len(got))
	})
	var all []mqtt.Incident
	for _, in := range got {
		all = append(all, in)
	}
	if len(all) != 2 {
		t.Fatalf("published %+v, want two incidents", all)
	}
	s := byReporter(t, all, stranger)
	if !s.Unverified || s.Source != mqtt.SourceSMS || s.Category != "fire" || !s.Emergency || s.Text != "DARURAT KEBAKARAN rumah di gang 3" {
		t.Errorf("unknown sender's report published as %+v, want an unverified fire emergency with its text", s)
	}
	if h := byReporter(t, all, rtHead); h.Unverified || h.Category != "medical" {
		t.Errorf("RT head's report published as %+v, want verified medical", h)
	}
	if n := len(smsIncidents(t, d)); n != 2 {
		t.Errorf("%d SMS incidents in the outbox, want 2", n)
	}
	waitSIMEmpty(t, sim)
	if st := smsStats(d); st.Raised != 2 || st.Instructed != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 2 raised, none instructed or dropped", st)
	}
	if q := d.Status().SMSQueue; len(q) != 0 || len(sim.Sent()) != 0 {
		t.Errorf("the kiosk answered by itself: queue %+v, sent %+v", q, sim.Sent())
	}
}

// Under the "instruct" policy an unknown sender gets one SMS with instructions, however often
// the network delivers the message, and no incident; the message is deleted. An RT head's
// report is still raised.
func TestSMSUnknownSenderInstructed(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{})
	d := startSMSKiosk(t, sim, func(c *Config) { c.Modem.UnknownSenders = UnknownInstruct })

	p := encodeDeliver(t, stranger, "DARURAT KEBAKARAN rumah di gang 3", 0)
	deliverPDU(t, sim, p[0])
	deliverPDU(t, sim, p[0]) // the network delivers it again
	waitStats(t, d, "both copies answered", func(s SMSStats) bool { return s.Instructed == 2 })
	waitSIMEmpty(t, sim)
	sent := waitSent(t, sim, 1)
	if sent[0].To != stranger || sent[0].Text != unknownSenderText("id") || !strings.Contains(sent[0].Text, "112") {
		t.Errorf("instructions %+v, want the Indonesian text to %s", sent[0], stranger)
	}
	// Every reply queued so far is sent: a second one for the second copy would be among them.
	poll.Until(t, smsWait, "the SMS queue empty", func() (bool, string) {
		st := d.Status()
		return len(st.SMSQueue) == 0 && st.SMS.Sent >= 1, fmt.Sprintf("queue %+v, sms %+v", st.SMSQueue, *st.SMS)
	})
	if s := sim.Sent(); len(s) != 1 {
		t.Errorf("sent %+v, want one instruction SMS", s)
	}
	if n := len(smsIncidents(t, d)); n != 0 {
		t.Errorf("%d incidents from an unknown sender under the instruct policy", n)
	}

	deliver(t, sim, rtHead, "LAPOR SAMPAH menumpuk di pasar")
	in := waitSMSIncidents(t, d, 1)
	if len(in) != 1 || in[0].Reporter != rtHead || in[0].Unverified || in[0].Category != "waste" {
		t.Errorf("incidents %+v, want the RT head's waste report only", in)
	}
	waitSIMEmpty(t, sim)
}

// An unknown sender flooding the kiosk is heard up to the burst; the rest is dropped, counted
// and deleted from the SIM, so that the flood cannot fill it.
func TestSMSFloodFromUnknownSenderDropped(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{})
	d := startSMSKiosk(t, sim, func(c *Config) { c.Modem.RateBurst = 2 })

	for i := range 5 {
		deliver(t, sim, stranger, fmt.Sprintf("LAPOR JALAN rusak di gang %d", i+1))
	}
	waitStats(t, d, "five messages handled", func(s SMSStats) bool { return s.Received == 5 })
	waitSIMEmpty(t, sim)
	if st := smsStats(d); st.Dropped != 3 || st.Raised != 2 {
		t.Errorf("stats %+v, want 3 dropped and 2 raised (burst 2)", st)
	}
	ins := smsIncidents(t, d)
	if len(ins) != 2 {
		t.Fatalf("%d incidents, want 2: %+v", len(ins), ins)
	}
	for _, in := range ins {
		if !in.Unverified || in.Reporter != stranger {
			t.Errorf("incident %+v, want unverified from %s", in, stranger)
		}
	}
}

// An RT head over the rate limit still has every report raised; it is the replies that stop,
// including the kiosk's own help text. Another head within the limit is answered.
func TestSMSAllowedSenderOverRateLimitStillRaised(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{})
	d := startSMSKiosk(t, sim, func(c *Config) { c.Modem.RateBurst = 2 })

	for i := range 4 {
		deliver(t, sim, rtHead, fmt.Sprintf("LAPOR LISTRIK padam di RT 0%d", i+1))
	}
	ins := waitSMSIncidents(t, d, 4)
	waitSIMEmpty(t, sim)
	if len(ins) != 4 {
		t.Fatalf("%d incidents, want all 4 reports", len(ins))
	}
	for _, in := range ins {
		if in.Reporter != rtHead || in.Unverified || in.Category != "electricity" {
			t.Errorf("incident %+v", in)
		}
	}
	if st := smsStats(d); st.Dropped != 0 || st.RepliesMuted != 2 {
		t.Errorf("stats %+v, want nothing dropped and the 2 reports over the burst muted", st)
	}

	deliver(t, sim, rtHead, "INFO")
	waitStats(t, d, "help request muted", func(s SMSStats) bool { return s.RepliesMuted == 3 })
	waitSIMEmpty(t, sim)
	deliver(t, sim, rtHead2, "INFO")
	sent := waitSent(t, sim, 1)
	if sent[0].To != rtHead2 || !strings.Contains(sent[0].Text, "DARURAT") {
		t.Errorf("sent %+v, want the help text to %s only (replies to %s are muted)", sent, rtHead2, rtHead)
	}
	if s := sim.Sent(); len(s) != 1 {
		t.Errorf("sent %+v, want one help SMS", s)
	}
}

// A PDU that cannot be decoded is raised, unverified, for the operator to triage rather than
// dropped, counted, and deleted; read again, it is recognised.
func TestSMSMalformedPDURaisedForTriage(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{})
	d := startSMSKiosk(t, sim, nil)

	// An SMS-DELIVER whose originator address claims 255 digits.
	garbage := "0004FFFFFFFFFFFF"
	// A good PDU with its second half lost.
	full := encodeDeliver(t, rtHead, "DARURAT BANJIR air masuk rumah", 0)[0]
	truncated := full[:len(full)/4*2]
	deliverPDU(t, sim, garbage)
	deliverPDU(t, sim, truncated)
	ins := waitSMSIncidents(t, d, 2)
	waitSIMEmpty(t, sim)
	if len(ins) != 2 {
		t.Fatalf("%d incidents, want 2", len(ins))
	}
	for _, raw := range []string{garbage, truncated} {
		i := slices.IndexFunc(ins, func(in mqtt.Incident) bool { return strings.Contains(in.Text, raw) })
		if i < 0 {
			t.Errorf("no incident shows the raw PDU %s: %+v", raw, ins)
			continue
		}
		if in := ins[i]; !in.Unverified || in.Source != mqtt.SourceSMS || !strings.Contains(in.Text, "SMS tidak terbaca") || in.OccurredAt.IsZero() {
			t.Errorf("malformed PDU raised as %+v, want an unverified SMS incident saying it could not be read", in)
		}
	}
	if st := smsStats(d); st.Malformed != 2 || st.Raised != 2 {
		t.Errorf("stats %+v, want 2 malformed, 2 raised", st)
	}

	deliverPDU(t, sim, garbage)
	waitStats(t, d, "the copy recognised", func(s SMSStats) bool { return s.Duplicates == 1 })
	waitSIMEmpty(t, sim)
	if n := len(smsIncidents(t, d)); n != 2 {
		t.Errorf("%d incidents after the same malformed PDU came again, want 2", n)
	}
}

// Text in 8-bit data coding is bytes that are valid in no alphabet: the report still reaches
// the hub as a valid incident.
func TestSMSBytesValidInNoAlphabet(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "127.0.0.1:0")
	sim := newModemSim(t, modemtest.Options{})
	d := startDaemon(t, smsConfig(t, b.URL(), sim))
	waitModemState(t, d, "ready")

	deliverPDU(t, sim, data8PDU(t, 0, 1, 1, []byte{0xFF, 0xFE, 0x80, 'A', 0xC3}))
	var got map[string]mqtt.Incident
	poll.Until(t, smsWait, "the report published", func() (bool, string) {
		got = byID(b.incidents()) // fails the test on an incident the hub would refuse
		return len(got) >= 1, ""
	})
	waitSIMEmpty(t, sim)
	for _, in := range got {
		if in.Reporter != rtHead || !strings.Contains(in.Text, "A") || !utf8.ValidString(in.Text) {
			t.Errorf("published %+v", in)
		}
	}
}

// A long 8-bit SMS of bytes valid in no alphabet must still make an incident the hub accepts.
// Each invalid byte becomes U+FFFD (three bytes) when the incident is encoded, so a text under
// the kiosk's cut can exceed the hub's 4096-byte limit and be refused for ever.
func TestSMSLongBinaryMessageValidForHub(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "127.0.0.1:0")
	sim := newModemSim(t, modemtest.Options{Capacity: 40})
	d := startDaemon(t, smsConfig(t, b.URL(), sim))
	waitModemState(t, d, "ready")

	const parts, perPart = 15, 134 // 8-bit parts with a concatenation header
	data := bytes.Repeat([]byte{0xFF, 0xFF, 'A'}, parts*perPart/3)
	for seq := 1; seq <= parts; seq++ {
		deliverPDU(t, sim, data8PDU(t, 7, parts, seq, data[(seq-1)*perPart:seq*perPart]))
	}
	poll.Until(t, smsWait, "the report published", func() (bool, string) {
		return len(byID(b.incidents())) >= 1, "" // b.incidents fails the test on an incident the hub would refuse
	})
	waitSIMEmpty(t, sim)
	for _, in := range byID(b.incidents()) {
		if in.Reporter != rtHead || !strings.Contains(in.Text, "A") || !utf8.ValidString(in.Text) {
			t.Errorf("published %+v", in)
		}
	}
}

// threePartText is a report that takes three parts, each starting with words of its own.
func threePartText(t *testing.T) (string, []string) {
	t.Helper()
	text := "DARURAT BANJIR air masuk rumah warga RT 02, " + strings.Repeat("mohon bantuan perahu karet. ", 5) +
		"BAGIANDUA " + strings.Repeat("anak-anak dan lansia sudah di masjid. ", 4) +
		"BAGIANTIGA listrik sudah dipadamkan."
	parts := partTexts(t, text)
	if len(parts) != 3 {
		t.Fatalf("the test text has %d parts, want 3", len(parts))
	}
	return text, parts
}

// A long SMS whose second part never arrives is raised after the reassembly timeout with what
// did arrive, marking the part that is missing, and its parts are deleted.
func TestSMSMultipartMissingPartRaisedAfterTimeout(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{})
	d := startSMSKiosk(t, sim, nil)
	text, parts := threePartText(t)

	start := time.Now()
	if err := sim.DeliverParts(rtHead, text, nil, []int{2}, nil); err != nil {
		t.Fatal(err)
	}
	ins := waitSMSIncidents(t, d, 1)
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("raised after %v, before the reassembly timeout of 2s", waited)
	}
	waitSIMEmpty(t, sim)
	in := ins[0]
	if len(ins) != 1 || !strings.Contains(in.Text, parts[0]) || !strings.Contains(in.Text, parts[2]) || strings.Contains(in.Text, parts[1]) {
		t.Fatalf("incidents %+v, want one with parts 1 and 3", ins)
	}
	if !strings.Contains(in.Text, "…") || !strings.Contains(in.Text, "[SMS 3 bagian, bagian [2] tidak diterima]") {
		t.Errorf("text %q does not mark the missing part", in.Text)
	}
	if in.Reporter != rtHead || in.Category != "disaster" || !in.Emergency {
		t.Errorf("incident %+v, want the flood emergency from %s", in, rtHead)
	}
	if st := smsStats(d); st.Incomplete != 1 || st.Raised != 1 {
		t.Errorf("stats %+v, want one incomplete message raised", st)
	}
}

// Parts that come out of order, some twice, make one incident with the whole text.
func TestSMSMultipartOutOfOrderAndDuplicated(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{})
	d := startSMSKiosk(t, sim, nil)
	text, _ := threePartText(t)

	if err := sim.DeliverParts(rtHead, text, []int{3, 1, 2}, nil, []int{3, 1}); err != nil {
		t.Fatal(err)
	}
	waitSMSIncidents(t, d, 1)
	// A duplicate that started a set of its own would stay in the SIM until it expired and
	// was raised as a second, partial report.
	waitSIMEmpty(t, sim)
	ins := smsIncidents(t, d)
	if len(ins) != 1 || ins[0].Text != text {
		t.Fatalf("incidents %+v, want one with the whole text %q", ins, text)
	}
	deletes := 0
	for i := 1; i <= modemtest.DefaultCapacity; i++ {
		deletes += sim.Deletes(i)
	}
	if deletes != 5 {
		t.Errorf("%d deletes, want one for each of the 5 parts stored", deletes)
	}
	if st := smsStats(d); st.Incomplete != 0 || st.Raised != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A part of a long SMS already raised, delivered again later, is recognised and deleted: no
// second, partial report.
func TestSMSMultipartPartRedeliveredLater(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{})
	d := startSMSKiosk(t, sim, nil)
	text, _ := threePartText(t)

	pdus := encodeDeliver(t, rtHead, text, 0x42)
	for _, p := range pdus {
		deliverPDU(t, sim, p)
	}
	waitSMSIncidents(t, d, 1)
	waitSIMEmpty(t, sim)

	deliverPDU(t, sim, pdus[1])
	waitStats(t, d, "the late part recognised", func(s SMSStats) bool { return s.Duplicates >= 1 })
	// Held for reassembly instead, the part would stay in the SIM until raised on its own.
	waitSIMEmpty(t, sim)
	ins := smsIncidents(t, d)
	if len(ins) != 1 || ins[0].Text != text {
		t.Fatalf("incidents %+v, want only the first, whole report", ins)
	}
	if st := smsStats(d); st.Incomplete != 0 || st.Raised != 1 {
		t.Errorf("stats %+v", st)
	}
}

// An SMS of more than a thousand characters is one incident with its text; one longer than an
// incident may carry is cut at a character boundary and marked, and still valid for the hub.
func TestSMSLongMessageOneIncident(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{Capacity: 40})
	d := startSMSKiosk(t, sim, nil)

	long := "LAPOR AIR PDAM mati sejak kemarin. " + strings.Repeat("Warga menampung air hujan dan membeli air galon. ", 25)
	if n := len(partTexts(t, long)); len([]rune(long)) < 1000 || n < 8 {
		t.Fatalf("test text: %d characters in %d parts", len([]rune(long)), n)
	}
	deliver(t, sim, rtHead, long)
	ins := waitSMSIncidents(t, d, 1)
	waitSIMEmpty(t, sim)
	if len(ins) != 1 || ins[0].Text != long || ins[0].Category != "water" {
		t.Fatalf("incidents %+v, want one water report with the whole text", ins)
	}

	// UCS-2 with emoji: four bytes each in UTF-8, so the cut falls inside one.
	huge := "LAPOR " + strings.Repeat("🚧", 1000)
	deliver(t, sim, rtHead2, huge)
	ins = waitSMSIncidents(t, d, 2)
	waitSIMEmpty(t, sim)
	in := byReporter(t, ins, rtHead2)
	kept, cut := strings.CutSuffix(in.Text, " […terpotong]")
	if !cut || !strings.HasPrefix(huge, kept) || len(kept) < maxIncidentText-4 || !utf8.ValidString(in.Text) {
		t.Errorf("text of %d bytes (%q…%q): want the first %d bytes of the SMS, whole characters, marked as cut",
			len(in.Text), clip(in.Text, 10), in.Text[max(len(in.Text)-30, 0):], maxIncidentText)
	}
	in.Attempt, in.DeviceID = 1, testDevice
	if err := in.Validate(); err != nil {
		t.Errorf("the hub would refuse the long report: %v", err)
	}
	if st := smsStats(d); st.Raised != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A delete that fails leaves the message in the SIM; read again (after the modem came back),
// it is recognised as raised and deleted: one incident.
func TestSMSDeleteFailureReadAgainOneIncident(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{})
	d := startSMSKiosk(t, sim, nil)

	sim.FailNext("AT+CMGD", "+CMS ERROR: 500")
	deliver(t, sim, rtHead, "DARURAT KECELAKAAN motor di jalan raya")
	waitStats(t, d, "the failed delete counted", func(s SMSStats) bool { return s.DeleteErrors == 1 })
	// The message stays in the SIM until it is read again: by the replug below, or already by
	// the +CMTI read racing the start-up listing (both are real ways to read it twice).
	waitSMSIncidents(t, d, 1)

	if err := sim.Replug(); err != nil {
		t.Fatal(err)
	}
	waitStats(t, d, "the message read again and recognised", func(s SMSStats) bool { return s.Duplicates >= 1 })
	waitSIMEmpty(t, sim)
	if ins := smsIncidents(t, d); len(ins) != 1 || ins[0].Category != "accident" {
		t.Errorf("incidents %+v, want one accident report", ins)
	}
	if st := smsStats(d); st.Raised != 1 {
		t.Errorf("stats %+v, want one raised", st)
	}
}

// More messages come than the SIM holds while the kiosk is off: the network holds the rest, and
// as the kiosk drains the SIM they come in. None is lost.
func TestSMSFullSIMDrainedWithoutLoss(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{Capacity: 3})
	var texts []string
	for i := range 7 {
		text := fmt.Sprintf("LAPOR SAMPAH menumpuk di blok %c", 'A'+i)
		texts = append(texts, text)
		deliver(t, sim, rtHead, text)
	}
	poll.Until(t, smsWait, "the SIM full, the network holding the rest", func() (bool, string) {
		return len(sim.Stored()) == 3 && sim.Backlog() == 4, fmt.Sprintf("stored %d, backlog %d", len(sim.Stored()), sim.Backlog())
	})

	d := startSMSKiosk(t, sim, nil)
	waitSMSIncidents(t, d, 7)
	waitSIMEmpty(t, sim)
	var got []string
	for _, in := range smsIncidents(t, d) {
		got = append(got, in.Text)
	}
	slices.Sort(got)
	if !slices.Equal(got, texts) {
		t.Errorf("raised %q, want every message once: %q", got, texts)
	}
}

// A modem answering ERROR to everything is reported, not ready and with its error, in the
// heartbeat, and nothing panics; back to normal, it is ready again and the message delivered
// meanwhile is raised.
func TestSMSModemAnsweringErrorThenRecovers(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "127.0.0.1:0")
	sim := newModemSim(t, modemtest.Options{})
	cfg := smsConfig(t, b.URL(), sim)
	cfg.HeartbeatInterval = 300 * time.Millisecond
	d := startDaemon(t, cfg)
	waitModemState(t, d, "ready")

	sim.SetErrorAll(true)
	deliver(t, sim, rtHead, "LAPOR LISTRIK padam sejak pagi")
	var broken int
	poll.Until(t, smsWait, "a heartbeat saying the modem is not ready, with its error", func() (bool, string) {
		hbs := heartbeats(t, b)
		for i, h := range hbs {
			if h.Modem != nil && h.Modem.State != "ready" && h.Modem.Error != "" {
				broken = i
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d heartbeats, status %+v", len(hbs), d.Status().Modem)
	})
	if m := d.Status().Modem; m.State == "ready" {
		t.Errorf("status says the modem is ready while it answers ERROR: %+v", m)
	}

	sim.SetErrorAll(false)
	poll.Until(t, smsWait, "a heartbeat saying the modem is ready again", func() (bool, string) {
		hbs := heartbeats(t, b)
		for _, h := range hbs[broken:] {
			if h.Modem != nil && h.Modem.State == "ready" && h.Modem.Error == "" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("status %+v", d.Status().Modem)
	})
	ins := waitSMSIncidents(t, d, 1)
	waitSIMEmpty(t, sim)
	if len(ins) != 1 || ins[0].Text != "LAPOR LISTRIK padam sejak pagi" {
		t.Errorf("incidents %+v", ins)
	}
	if st := smsStats(d); st.ReadErrors < 1 {
		t.Errorf("stats %+v, want the failed read counted", st)
	}
}

func heartbeats(t *testing.T, b *broker) []mqtt.Heartbeat {
	t.Helper()
	var out []mqtt.Heartbeat
	for _, m := range b.messages(mqtt.KindHeartbeat) {
		h, err := mqtt.DecodeHeartbeat(testDevice, m.Payload)
		if err != nil {
			t.Fatalf("invalid heartbeat: %v", err)
		}
		out = append(out, h)
	}
	return out
}

// A USB modem unplugged and plugged in again is reopened: the message the network held
// meanwhile and one sent after are raised.
func TestSMSModemUnpluggedAndReplugged(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{})
	d := startSMSKiosk(t, sim, nil)

	if err := sim.Unplug(); err != nil {
		t.Fatal(err)
	}
	waitModemState(t, d, "absent")
	if f := d.Status().Modem; f.Error == "" {
		t.Errorf("modem status %+v, want the error", f)
	}
	deliver(t, sim, rtHead, "LAPOR JALAN longsor di tanjakan")
	if err := sim.Replug(); err != nil {
		t.Fatal(err)
	}
	waitModemState(t, d, "ready")
	deliver(t, sim, rtHead, "LAPOR AIR sumur tercemar")
	ins := waitSMSIncidents(t, d, 2)
	waitSIMEmpty(t, sim)
	var got []string
	for _, in := range ins {
		got = append(got, in.Text)
	}
	slices.Sort(got)
	if want := []string{"LAPOR AIR sumur tercemar", "LAPOR JALAN longsor di tanjakan"}; !slices.Equal(got, want) {
		t.Errorf("raised %q, want %q", got, want)
	}
}

// A wrong PIN in the configuration is entered once, never again (three wrong PINs would lock the
// SIM behind its PUK), and the kiosk shows a fault saying so.
func TestSMSWrongPINEnteredOnce(t *testing.T) {
	t.Parallel()
	sim := newModemSim(t, modemtest.Options{PIN: "1234"})
	cfg := smsConfig(t, "tcp://"+freeAddr(t), sim)
	cfg.Modem.PIN = "9999"
	d := startDaemon(t, cfg)

	waitModemState(t, d, "sim_locked")
	pinQueries := func() int {
		n := 0
		for _, c := range sim.Commands() {
			if strings.EqualFold(c, "AT+CPIN?") {
				n++
			}
		}
		return n
	}
	// The kiosk keeps looking at the SIM; each look is a chance to enter the PIN again.
	after := pinQueries()
	poll.Until(t, smsWait, "two more looks at the SIM", func() (bool, string) {
		return pinQueries() >= after+2, fmt.Sprint(pinQueries())
	})
	var entered []string
	for _, c := range sim.Commands() {
		if strings.HasPrefix(strings.ToUpper(c), "AT+CPIN=") {
			entered = append(entered, c)
		}
	}
	if len(entered) != 1 || entered[0] != `AT+CPIN="9999"` {
		t.Errorf("PIN entries %q, want the configured PIN exactly once", entered)
	}
	if s := sim.PINState(); s != "SIM PIN" {
		t.Errorf("SIM is %q, want still waiting for its PIN (not PUK-locked)", s)
	}
	st := d.Status()
	if st.Modem.State != "sim_locked" || st.Modem.SIM != "pin_required" || !strings.Contains(st.Modem.Error, "PIN") {
		t.Errorf("modem status %+v, want sim_locked with the reason", st.Modem)
	}
	if !strings.Contains(st.Fault, "modem: ") || !strings.Contains(st.Fault, "PIN") {
		t.Errorf("fault %q, want the modem's wrong PIN", st.Fault)
	}
	eventually(t, "LED fault", func() bool { return ledState(d) == StateFault })
}

func smsSendCommand(t *testing.T, id, to, text string) []byte {
	t.Helper()
	args, err := json.Marshal(mqtt.SMSSend{To: to, Text: text, Ticket: "112-0042"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mqtt.Encode(mqtt.Command{V: mqtt.SchemaVersion, ID: id, Name: mqtt.CommandSMSSend, Args: args, At: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The hub's sms_send is sent once however often the same command comes, before or after it
// was sent; one that comes while the modem is away is kept and sent when it is back.
func TestSMSSendCommandOnceAndAfterModemReturns(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "127.0.0.1:0")
	sim := newModemSim(t, modemtest.Options{})
	d := startDaemon(t, smsConfig(t, b.URL(), sim))
	waitModemState(t, d, "ready")
	eventually(t, "connected and subscribed", func() bool { return d.Status().Connected && b.subscribed() })
	topic := mqtt.Topic(testDevice, mqtt.KindCommand)

	receipt := "Laporan Anda diterima. Nomor tiket 112-0042."
	update := "Tiket 112-0042 sedang ditangani petugas."
	b.publish(topic, smsSendCommand(t, "cmd-receipt", rtHead, receipt))
	b.publish(topic, smsSendCommand(t, "cmd-receipt", rtHead, receipt)) // the hub repeats itself
	// Commands are handled in order: once the next one is sent, the repeat was handled.
	b.publish(topic, smsSendCommand(t, "cmd-update", rtHead, update))
	waitSent(t, sim, 2)
	b.publish(topic, smsSendCommand(t, "cmd-receipt", rtHead, receipt)) // and again, after a reconnect
	b.publish(topic, smsSendCommand(t, "cmd-resolved", rtHead, "Tiket 112-0042 selesai."))
	sent := waitSent(t, sim, 3)
	var texts []string
	for _, s := range sent {
		if s.To != rtHead {
			t.Errorf("SMS to %s, want %s", s.To, rtHead)
		}
		texts = append(texts, s.Text)
	}
	if want := []string{receipt, update, "Tiket 112-0042 selesai."}; !slices.Equal(texts, want) {
		t.Fatalf("sent %q, want %q: each command once", texts, want)
	}
	// The network has the SMS before the kiosk reads the modem's OK; unplugged in between, the
	// kiosk could not know it went out, and would rightly send it again.
	poll.Until(t, smsWait, "the sends recorded", func() (bool, string) {
		st := d.Status()
		return len(st.SMSQueue) == 0 && st.SMS.Sent == 3, fmt.Sprintf("queue %+v, sms %+v", st.SMSQueue, *st.SMS)
	})

	if err := sim.Unplug(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, smsWait, "the modem away", func() (bool, string) {
		m := d.Status().Modem
		return m.State != "ready", m.State
	})
	later := "Tiket 112-0042 sudah diselesaikan. Terima kasih."
	b.publish(topic, smsSendCommand(t, "cmd-later", rtHead, later))
	poll.Until(t, smsWait, "the SMS queued on the kiosk", func() (bool, string) {
		q := d.Status().SMSQueue
		return len(q) == 1 && q[0].ID == "cmd-later" && q[0].Ticket == "112-0042", fmt.Sprintf("%+v", q)
	})
	if err := sim.Replug(); err != nil {
		t.Fatal(err)
	}
	sent = waitSent(t, sim, 4)
	if sent[3].Text != later || sent[3].To != rtHead {
		t.Errorf("after the modem came back, sent %+v", sent[3])
	}
	poll.Until(t, smsWait, "the SMS queue empty", func() (bool, string) {
		q := d.Status().SMSQueue
		return len(q) == 0, fmt.Sprintf("%+v", q)
	})
	if n := len(sim.Sent()); n != 4 {
		t.Errorf("%d SMS sent, want 4", n)
	}
}
