package pdu_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/modem/pdu"
)

// clock is a manual clock for the assembler; the assembler runs on one goroutine, so no lock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{t: time.Date(2025, 8, 17, 10, 0, 0, 0, wib)} }

// part builds a decoded part as DecodeDeliver would return it.
func part(from string, ref uint16, total, seq int, text string, ts time.Time) *pdu.Deliver {
	return &pdu.Deliver{
		SMSC:      pdu.Address{Number: "+62811000000", Type: pdu.TypeInternational},
		From:      pdu.Address{Number: from, Type: pdu.TypeInternational},
		Timestamp: ts,
		Concat:    &pdu.Concat{Ref: ref, Total: total, Seq: seq},
		Text:      text,
	}
}

func TestAssemblerSinglePart(t *testing.T) {
	a := pdu.NewAssembler(time.Minute, newClock().now)
	ts := time.Date(2025, 8, 17, 9, 59, 0, 0, wib)
	d := &pdu.Deliver{From: pdu.Address{Number: "+62812"}, Timestamp: ts, Text: "Kebakaran", Alphabet: pdu.GSM7}
	m := a.Add(d, 4)
	if m == nil || m.Text != "Kebakaran" || m.Parts != 1 || !m.Complete() || !slices.Equal(m.Tags, []int{4}) || !m.Timestamp.Equal(ts) {
		t.Fatalf("message %+v", m)
	}
	if a.Pending() != 0 {
		t.Errorf("pending %d", a.Pending())
	}
	if a.Add(nil, 1) != nil {
		t.Error("nil part gave a message")
	}
	// An impossible header is handed on rather than held for parts that cannot come.
	bad := part("+62812", 1, 3, 5, "x", ts)
	if m := a.Add(bad, 9); m == nil || m.Text != "x" || a.Pending() != 0 {
		t.Errorf("seq beyond total: %+v, pending %d", m, a.Pending())
	}
}

func TestAssemblerOutOfOrder(t *testing.T) {
	c := newClock()
	a := pdu.NewAssembler(time.Minute, c.now)
	ts := time.Date(2025, 8, 17, 9, 59, 0, 0, wib)
	if m := a.Add(part("+62812", 9, 3, 3, "C", ts.Add(2*time.Second)), 13); m != nil {
		t.Fatalf("message after 1 of 3: %+v", m)
	}
	if m := a.Add(part("+62812", 9, 3, 1, "A", ts), 11); m != nil {
		t.Fatalf("message after 2 of 3: %+v", m)
	}
	if a.Pending() != 1 {
		t.Errorf("pending %d, want 1", a.Pending())
	}
	c.advance(30 * time.Second)
	m := a.Add(part("+62812", 9, 3, 2, "B", ts.Add(time.Second)), 12)
	if m == nil {
		t.Fatal("no message after 3 of 3")
	}
	if m.Text != "ABC" || m.Parts != 3 || !m.Complete() || len(m.Missing) != 0 {
		t.Errorf("message %+v", m)
	}
	if !slices.Equal(m.Tags, []int{13, 11, 12}) {
		t.Errorf("tags %v", m.Tags)
	}
	if !m.Timestamp.Equal(ts) || m.From.Number != "+62812" || m.SMSC.Number != "+62811000000" {
		t.Errorf("timestamp %s from %+v smsc %+v", m.Timestamp, m.From, m.SMSC)
	}
	if a.Pending() != 0 || len(a.Expire()) != 0 {
		t.Errorf("set kept after completion: pending %d", a.Pending())
	}
}

func TestAssemblerDuplicate(t *testing.T) {
	a := pdu.NewAssembler(time.Minute, newClock().now)
	ts := time.Date(2025, 8, 17, 9, 59, 0, 0, wib)
	a.Add(part("+62812", 1, 2, 1, "Tolong ", ts), 1)
	if m := a.Add(part("+62812", 1, 2, 1, "Tolong ", ts), 5); m != nil {
		t.Fatalf("duplicate completed the set: %+v", m)
	}
	m := a.Add(part("+62812", 1, 2, 2, "segera", ts), 2)
	if m == nil || m.Text != "Tolong segera" {
		t.Fatalf("message %+v", m)
	}
	if !slices.Equal(m.Tags, []int{1, 5, 2}) {
		t.Errorf("tags %v, want the duplicate's too", m.Tags)
	}
}

func TestAssemblerExpire(t *testing.T) {
	c := newClock()
	a := pdu.NewAssembler(10*time.Minute, c.now)
	ts := time.Date(2025, 8, 17, 9, 59, 0, 0, wib)
	a.Add(part("+62812", 4, 5, 3, "tiga", ts.Add(time.Minute)), 33)
	a.Add(part("+62812", 4, 5, 2, "dua", ts.Add(2*time.Minute)), 22)
	c.advance(5 * time.Minute)
	a.Add(part("+62813", 8, 2, 2, "lain", ts), 88) // a younger set, from another sender
	c.advance(5 * time.Minute)
	if got := a.Expire(); len(got) != 0 {
		t.Fatalf("expired at exactly the timeout: %+v", got)
	}
	c.advance(time.Second)
	got := a.Expire()
	if len(got) != 1 {
		t.Fatalf("expired %d sets, want 1", len(got))
	}
	m := got[0]
	if m.Complete() || !slices.Equal(m.Missing, []int{1, 4, 5}) || m.Parts != 5 {
		t.Errorf("missing %v parts %d", m.Missing, m.Parts)
	}
	if m.Text != "… duatiga …" {
		t.Errorf("text %q", m.Text)
	}
	if !slices.Equal(m.Tags, []int{33, 22}) {
		t.Errorf("tags %v", m.Tags)
	}
	// Part 1 never came, so the earliest SCTS of those that did.
	if !m.Timestamp.Equal(ts.Add(time.Minute)) || m.From.Number != "+62812" {
		t.Errorf("timestamp %s from %+v", m.Timestamp, m.From)
	}
	if a.Pending() != 1 {
		t.Errorf("pending %d, want the younger set", a.Pending())
	}
	c.advance(time.Hour)
	got = a.Expire()
	if len(got) != 1 || got[0].Text != "… lain" || !slices.Equal(got[0].Missing, []int{1}) || a.Pending() != 0 {
		t.Errorf("second expiry %+v, pending %d", got, a.Pending())
	}
}

func TestAssemblerIncompleteText(t *testing.T) {
	c := newClock()
	a := pdu.NewAssembler(time.Minute, c.now)
	ts := time.Date(2025, 8, 17, 9, 59, 0, 0, wib)
	for _, seq := range []int{1, 2, 4, 6} {
		a.Add(part("+62812", 1, 6, seq, string(rune('a'+seq-1)), ts.Add(time.Duration(seq)*time.Second)), seq)
	}
	c.advance(2 * time.Minute)
	got := a.Expire()
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	if got[0].Text != "ab … d … f" || !slices.Equal(got[0].Missing, []int{3, 5}) || !got[0].Timestamp.Equal(ts.Add(time.Second)) {
		t.Errorf("%+v", got[0])
	}
}

func TestAssemblerKeepsSendersApart(t *testing.T) {
	a := pdu.NewAssembler(time.Minute, newClock().now)
	ts := time.Date(2025, 8, 17, 9, 59, 0, 0, wib)
	a.Add(part("+6281111", 42, 2, 1, "Banjir ", ts), 1)
	a.Add(part("+6282222", 42, 2, 1, "Longsor ", ts), 2)
	// Same sender and reference but another total is another set too.
	a.Add(part("+6281111", 42, 3, 1, "Gempa ", ts), 3)
	if a.Pending() != 3 {
		t.Fatalf("pending %d, want 3", a.Pending())
	}
	m2 := a.Add(part("+6282222", 42, 2, 2, "di RW 05", ts), 4)
	m1 := a.Add(part("+6281111", 42, 2, 2, "di RT 03", ts), 5)
	if m1 == nil || m2 == nil {
		t.Fatalf("messages %+v %+v", m1, m2)
	}
	if m1.Text != "Banjir di RT 03" || m1.From.Number != "+6281111" || !slices.Equal(m1.Tags, []int{1, 5}) {
		t.Errorf("first sender %+v", m1)
	}
	if m2.Text != "Longsor di RW 05" || m2.From.Number != "+6282222" || !slices.Equal(m2.Tags, []int{2, 4}) {
		t.Errorf("second sender %+v", m2)
	}
	if a.Pending() != 1 {
		t.Errorf("pending %d, want the 3-part set", a.Pending())
	}
}
