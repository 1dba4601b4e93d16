package outbox_test

import (
	"errors"
	"testing"
	"time"

	"github.com/kentongan/kentongan/daemon/outbox"
)

func TestSMSQueueIsIdempotentAndSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	first := outbox.SMS{ID: "sms:t1:new", To: "+6281234567890", Text: "Laporan diterima", QueuedAt: t0}
	second := outbox.SMS{ID: "sms:t2:new", To: "+6281234567891", Text: "Laporan diterima", QueuedAt: t0.Add(time.Second)}
	for _, m := range []outbox.SMS{second, first} {
		if added, err := s.QueueSMS(m); err != nil || !added {
			t.Fatalf("queue %s: added=%v err=%v", m.ID, added, err)
		}
	}
	// The hub repeats its commands; a repeat changes nothing, even with another text.
	repeat := first
	repeat.Text = "other"
	if added, err := s.QueueSMS(repeat); err != nil || added {
		t.Fatalf("repeat: added=%v err=%v, want false, nil", added, err)
	}
	if err := s.SMSResult(first.ID, t0.Add(time.Minute), nil, false); err != nil {
		t.Fatal(err)
	}
	if err := s.SMSResult(second.ID, t0.Add(time.Minute), errors.New("+CMS ERROR: 500"), false); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, dir)
	due, err := s.SMSDue()
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != second.ID || due[0].Attempts != 1 || due[0].LastError != "+CMS ERROR: 500" {
		t.Fatalf("due after reopen: %+v", due)
	}
	if added, _ := s.QueueSMS(first); added {
		t.Error("an SMS already sent was queued again")
	}
	all, _ := s.SMSes()
	if len(all) != 2 || all[0].ID != first.ID || all[0].Text != "Laporan diterima" || all[0].SentAt.IsZero() {
		t.Fatalf("all: %+v", all)
	}
	if err := s.SMSResult(second.ID, t0.Add(2*time.Minute), errors.New("invalid number"), true); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.SMSDue(); len(due) != 0 {
		t.Fatalf("given up, still due: %+v", due)
	}

	// Sent and failed SMS are kept for a week, then pruned.
	if n, err := s.PruneSMS(t0.Add(outbox.SMSRetention)); err != nil || n != 0 {
		t.Fatalf("prune within retention: %d, %v", n, err)
	}
	if n, err := s.PruneSMS(t0.Add(outbox.SMSRetention + 3*time.Minute)); err != nil || n != 2 {
		t.Fatalf("prune after retention: %d, %v", n, err)
	}
	if err := s.SMSResult("missing", t0, nil, false); err == nil {
		t.Error("result for an unknown SMS: no error")
	}
}
