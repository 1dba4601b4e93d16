package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/ingest"
	"github.com/kentongan/kentongan/mqtt"
)

// smsCommands returns the sms_send commands published so far to device.
func (b *fakeBus) smsCommands(t *testing.T, device string) []smsCmd {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []smsCmd
	for _, m := range b.published {
		if m.Topic != mqtt.Topic(device, mqtt.KindCommand) {
			continue
		}
		c, err := mqtt.DecodeCommand(m.Payload)
		if err != nil {
			t.Fatalf("hub published an unreadable command %s: %v", m.Payload, err)
		}
		s, err := mqtt.DecodeSMSSend(c)
		if err != nil {
			t.Fatalf("hub published an unreadable sms_send %s: %v", m.Payload, err)
		}
		out = append(out, smsCmd{c.ID, s})
	}
	return out
}

type smsCmd struct {
	ID string
	mqtt.SMSSend
}

func smsIncident(t *testing.T, device, reporter, category string, mod func(*mqtt.Incident)) (mqtt.Incident, []byte) {
	t.Helper()
	id, err := mqtt.NewIncidentID()
	if err != nil {
		t.Fatal(err)
	}
	in := mqtt.Incident{V: 1, ID: id, DeviceID: device, Source: mqtt.SourceSMS, Category: category,
		Text: "DARURAT KEBAKARAN rumah di gang 3", Reporter: reporter, OccurredAt: time.Now(), Attempt: 1}
	if mod != nil {
		mod(&in)
	}
	b, err := mqtt.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	return in, b
}

const rtHead = "+6281234567890"

// TestSMSReceiptAndStatusUpdates: an SMS report is answered with a receipt naming its ticket,
// and each later status with an update, each under an ID that names the ticket and status so the
// kiosk sends it once however often it is repeated. A button press gets no SMS.
func TestSMSReceiptAndStatusUpdates(t *testing.T) {
	s, bus, _ := setup(t, ingest.Options{})
	in, p := smsIncident(t, "pos-1", rtHead, "fire", nil)
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	bid, err := mqtt.NewIncidentID()
	if err != nil {
		t.Fatal(err)
	}
	btn := mqtt.Incident{V: 1, ID: bid, DeviceID: "pos-1", Source: mqtt.SourceButton, Button: "panic", OccurredAt: time.Now(), Attempt: 1}
	pb, _ := mqtt.Encode(btn)
	bus.deliver(mqtt.KindIncident, "pos-1", pb)
	eventually(t, "two received acks", func() bool { return len(bus.acks(t, "pos-1")) == 2 })

	tk, err := s.Ticket(context.Background(), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	cmds := bus.smsCommands(t, "pos-1")
	if len(cmds) != 1 {
		t.Fatalf("commands %+v: want one receipt, and nothing for the button press %s", cmds, btn.ID)
	}
	c := cmds[0]
	if c.ID != "sms:"+tk.ID+":new" || c.To != rtHead || c.Ticket != tk.Number || !strings.Contains(c.Text, tk.Number) {
		t.Errorf("receipt %+v for ticket %s", c, tk.Number)
	}

	if _, err := s.Acknowledge(context.Background(), tk.ID, "siti", ""); err != nil {
		t.Fatal(err)
	}
	cmds = bus.smsCommands(t, "pos-1")
	if len(cmds) != 2 || cmds[1].ID != "sms:"+tk.ID+":acknowledged" || !strings.Contains(cmds[1].Text, tk.Number) {
		t.Fatalf("after ack: %+v", cmds)
	}

	// A reconnect repeats the reply for the ticket's current status, under the same ID.
	pres, _ := mqtt.Encode(mqtt.Presence{V: 1, DeviceID: "pos-1", State: mqtt.Online, At: time.Now()})
	bus.deliver(mqtt.KindPresence, "pos-1", pres)
	eventually(t, "resync", func() bool { return len(bus.smsCommands(t, "pos-1")) == 3 })
	if got := bus.smsCommands(t, "pos-1")[2]; got.ID != cmds[1].ID || got.Text != cmds[1].Text {
		t.Errorf("resync sent %+v, want a repeat of %+v", got, cmds[1])
	}
}

// TestStatusAndCancelRequests: STATUS and BATAL by SMS, and a cancel from a button's cancel
// window, are answered without making tickets; a kiosk learns nothing of another kiosk's tickets;
// a cancel is applied once; another person's SMS report cannot be cancelled.
func TestStatusAndCancelRequests(t *testing.T) {
	s, bus, _ := setup(t, ingest.Options{})
	ctx := context.Background()
	in, p := smsIncident(t, "pos-1", rtHead, "fire", nil)
	bus.deliver(mqtt.KindIncident, "pos-1", p)
	eventually(t, "ticket", func() bool { return len(bus.acks(t, "pos-1")) == 1 })
	tk, err := s.Ticket(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	request := func(device, reporter, req, target string) mqtt.Incident {
		r, b := smsIncident(t, device, reporter, "", func(x *mqtt.Incident) {
			x.Request, x.Target, x.Text = req, target, ""
		})
		bus.deliver(mqtt.KindIncident, device, b)
		return r
	}
	lastSMS := func(device string) smsCmd {
		cmds := bus.smsCommands(t, device)
		if len(cmds) == 0 {
			t.Fatalf("no SMS to %s", device)
		}
		return cmds[len(cmds)-1]
	}

	st := request("pos-1", rtHead, mqtt.RequestStatus, tk.Number)
	if c := lastSMS("pos-1"); c.ID != "req:"+st.ID || c.To != rtHead || !strings.Contains(c.Text, tk.Number) {
		t.Errorf("status reply %+v", c)
	}
	acks := bus.acks(t, "pos-1")
	if a := acks[len(acks)-1]; a.IncidentID != st.ID || a.Status != mqtt.AckReceived || a.TicketNumber != tk.Number {
		t.Errorf("status request ack %+v", a)
	}

	// Another kiosk asking about this ticket hears that it does not exist.
	other := request("pos-2", "+6281111111111", mqtt.RequestStatus, tk.Number)
	if c := lastSMS("pos-2"); c.ID != "req:"+other.ID || c.Text == lastSMS("pos-1").Text {
		t.Errorf("foreign status reply %+v", c)
	}
	if acks := bus.acks(t, "pos-2"); len(acks) != 1 || acks[0].TicketNumber != "" {
		t.Errorf("foreign status ack %+v leaks the ticket", acks)
	}

	// Someone else at the same post cannot cancel this person's SMS report.
	request("pos-1", "+6289999999999", mqtt.RequestCancel, tk.Number)
	if got, _ := s.Ticket(ctx, tk.ID); got.Status != hub.StatusNew {
		t.Fatalf("cancelled by another sender: %s", got.Status)
	}

	// The reporter can, once; a replay changes nothing more.
	c1 := request("pos-1", rtHead, mqtt.RequestCancel, tk.Number)
	raw, _ := mqtt.Encode(c1)
	bus.deliver(mqtt.KindIncident, "pos-1", raw)
	got, _ := s.Ticket(ctx, tk.ID)
	if got.Status != hub.StatusCancelled {
		t.Fatalf("after BATAL: %s", got.Status)
	}
	evs, _ := s.Events(ctx, tk.ID)
	if len(evs) != 2 || evs[1].Actor != "sms:"+rtHead {
		t.Errorf("events %+v: want creation and one cancellation by the reporter", evs)
	}
	if c := lastSMS("pos-1"); c.ID != "sms:"+tk.ID+":cancelled" || c.To != rtHead {
		t.Errorf("after BATAL the reporter should get the status update, got %+v", c)
	}

	// A press cancelled within its window names the incident.
	bID, _ := mqtt.NewIncidentID()
	press, _ := mqtt.Encode(mqtt.Incident{V: 1, ID: bID, DeviceID: "pos-2", Source: mqtt.SourceButton, Button: "panic", OccurredAt: time.Now(), Attempt: 1})
	bus.deliver(mqtt.KindIncident, "pos-2", press)
	eventually(t, "press ticket", func() bool { _, err := s.Ticket(ctx, bID); return err == nil })
	cID, _ := mqtt.NewIncidentID()
	cancel, _ := mqtt.Encode(mqtt.Incident{V: 1, ID: cID, DeviceID: "pos-2", Source: mqtt.SourceButton, Button: "panic",
		Request: mqtt.RequestCancel, Target: bID, OccurredAt: time.Now(), Attempt: 1})
	bus.deliver(mqtt.KindIncident, "pos-2", cancel)
	pt, _ := s.Ticket(ctx, bID)
	if pt.Status != hub.StatusCancelled {
		t.Fatalf("press after cancel: %s", pt.Status)
	}
	var sawCancelled bool
	for _, a := range bus.acks(t, "pos-2") {
		sawCancelled = sawCancelled || (a.IncidentID == bID && a.Status == mqtt.AckCancelled)
	}
	if !sawCancelled {
		t.Error("the kiosk was not told its press was cancelled")
	}
	// Requests make no tickets.
	if all, _ := s.Tickets(ctx, hub.TicketFilter{}); len(all) != 2 {
		t.Errorf("%d tickets, want 2", len(all))
	}
}
