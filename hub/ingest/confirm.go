package ingest

import (
	"context"
	"slices"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/reply"
	"github.com/kentongan/kentongan/mqtt"
)

// Confirmation by RT/RW heads. A panic button at a public post is pressed by children too; the
// people who can tell quickly are the post's RT/RW heads. When a press becomes a ticket, the hub
// texts each head through the kiosk's own modem, and records their YA or TIDAK on the ticket for
// the operator to see. None of it holds the ticket back: the ack, the LED and the operators'
// queue do not wait for an answer, and an answer changes neither status nor priority.

// confirmID is the command ID of the question to one head about one ticket, so that asking
// again (after a reconnect) texts nobody twice.
func confirmID(ticketID, number string) string { return "confirm:" + ticketID + ":" + number }

// deviceHeads returns a device's RT/RW heads and the name of its post.
func (s *Service) deviceHeads(id string) (heads []string, name string, ok bool) {
	s.devMu.RLock()
	defer s.devMu.RUnlock()
	d, ok := s.devices[id]
	if !ok {
		return nil, "", false
	}
	return d.dev.RTRWHeads, d.dev.Name, true
}

// askConfirmation texts the heads of t's post, if t is an open, unanswered button press whose
// post has heads, and records that they were asked.
func (s *Service) askConfirmation(ctx context.Context, t *hub.Ticket) {
	if t.Source != mqtt.SourceButton || t.Test || !t.Status.Open() {
		return
	}
	if st := t.Confirmation.State; st != hub.ConfirmNone && st != hub.ConfirmPending {
		return
	}
	heads, name, _ := s.deviceHeads(t.DeviceID)
	if len(heads) == 0 {
		return
	}
	text := reply.ConfirmRequest(s.opts.SMSLang, t.Number, name)
	for _, h := range heads {
		s.sendSMS(ctx, t.DeviceID, confirmID(t.ID, h), h, text, t.Number)
	}
	if t.Confirmation.AskedAt != nil {
		return // asked before; this repeats the question to a kiosk that may have missed it
	}
	s.metrics.confirmations.WithLabelValues("asked").Inc()
	nt, err := s.store.RequestConfirmation(ctx, t.ID, len(heads))
	if err != nil {
		s.log.Error("confirmation request not recorded on the ticket; the heads were texted", "ticket", t.Number, "err", err)
		return
	}
	s.log.Info("RT/RW heads asked to confirm", "ticket", t.Number, "device", t.DeviceID, "heads", len(heads))
	s.announce(ctx, nt, false)
}

// handleConfirm records an RT/RW head's YA (RequestConfirm) or TIDAK (RequestDeny) and answers
// them. Like other requests it makes no ticket, and a replay is answered alike.
func (s *Service) handleConfirm(in mqtt.Incident) {
	ctx, cancel := context.WithTimeout(s.workerCtx, 10*time.Second)
	defer cancel()
	yes := in.Request == mqtt.RequestConfirm
	answer := hub.ConfirmNo
	if yes {
		answer = hub.ConfirmYes
	}
	heads, _, _ := s.deviceHeads(in.DeviceID)
	reporter, err := NormalizeNumber(in.Reporter)
	if err != nil {
		reporter = in.Reporter
	}
	// Without a list at the hub, the kiosk's own allow-list of heads decides.
	isHead := slices.Contains(heads, reporter) || (len(heads) == 0 && !in.Unverified)

	t, err := s.confirmTarget(ctx, in, reporter)
	if err != nil {
		s.countUnanswered("store_error", 1)
		s.log.Error("confirmation not answered; the kiosk will re-send it", "device", in.DeviceID, "incident", in.ID, "err", err)
		return
	}
	outcome := reply.ConfirmRecorded
	switch {
	case !isHead:
		outcome = reply.ConfirmNotHead
	case t == nil:
		outcome = reply.ConfirmNotFound
	default:
		nt, changed, err := s.store.RecordConfirmation(ctx, t.ID, reporter, answer)
		if err != nil {
			s.countUnanswered("store_error", 1)
			s.log.Error("confirmation not recorded; the kiosk will re-send it", "device", in.DeviceID, "ticket", t.Number, "err", err)
			return
		}
		t = nt
		if changed {
			s.metrics.confirmations.WithLabelValues(string(answer)).Inc()
			s.log.Info("RT/RW head answered", "ticket", t.Number, "device", in.DeviceID, "from", reporter, "answer", answer, "state", t.Confirmation.State)
			s.announce(ctx, t, false)
		}
	}
	s.metrics.requests.WithLabelValues(in.Request, outcome).Inc()
	a := mqtt.Ack{IncidentID: in.ID, Status: mqtt.AckReceived}
	number := in.Target
	if t != nil {
		a.TicketID, a.TicketNumber, number = t.ID, t.Number, t.Number
	}
	s.publishAck(ctx, in.DeviceID, a)
	if in.Reporter != "" {
		s.sendSMS(ctx, in.DeviceID, requestReplyID(in.ID), in.Reporter, reply.ConfirmReply(s.opts.SMSLang, number, yes, outcome), number)
	}
}

// confirmTarget finds the ticket an answer is about: the one it names, if it is this kiosk's,
// or else the latest press at this kiosk whose heads were asked within confirmWindow. nil when
// there is none; an error only when the store fails.
func (s *Service) confirmTarget(ctx context.Context, in mqtt.Incident, reporter string) (*hub.Ticket, error) {
	if in.Target != "" {
		t, err := s.store.Ticket(ctx, in.Target)
		switch {
		case hub.ErrorCode(err) == hub.CodeNotFound:
			return nil, nil
		case err != nil:
			return nil, err
		case t.DeviceID != in.DeviceID:
			return nil, nil // another post's ticket looks as if it did not exist
		}
		return t, nil
	}
	ts, err := s.store.Tickets(ctx, hub.TicketFilter{DeviceID: in.DeviceID, Source: mqtt.SourceButton, Limit: 20})
	if err != nil {
		return nil, err
	}
	since := s.clock.Now().Add(-confirmWindow)
	for _, t := range ts {
		if t.Confirmation.AskedAt != nil && t.CreatedAt.After(since) {
			return t, nil
		}
	}
	return nil, nil
}
