package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/reply"
	"github.com/kentongan/kentongan/mqtt"
)

// The hub answers an SMS reporter through the kiosk that received the report: it sends the kiosk
// an sms_send command, which the kiosk stores and sends once. The command's ID is derived from
// what it says (the ticket and the status reached, or the request answered), so the hub can
// repeat a reply after a reconnect or a replay without the reporter receiving it twice, and
// needs no queue of its own.

// replyID is the command ID of the SMS telling a ticket's reporter that it reached st.
func replyID(ticketID string, st hub.Status) string { return "sms:" + ticketID + ":" + string(st) }

// requestReplyID is the command ID of the answer to a request (STATUS, BATAL).
func requestReplyID(incidentID string) string { return "req:" + incidentID }

// wantsSMS reports whether t's reporter is told about it by SMS.
func wantsSMS(t *hub.Ticket) bool {
	return t.Source == mqtt.SourceSMS && t.Reporter != "" && !t.Test
}

// ticketSMS is the text telling t's reporter where the ticket is now.
func (s *Service) ticketSMS(t *hub.Ticket) string {
	if t.Status == hub.StatusNew {
		return reply.Receipt(s.opts.SMSLang, t.Number, t.Category, t.Priority == hub.PriorityEmergency)
	}
	return reply.StatusUpdate(s.opts.SMSLang, t.Number, string(t.Status), s.agencyName(t), "")
}

// agencyName is what the reporter's SMS calls the agency a ticket was dispatched to: its short
// name, or nothing when the ticket is not dispatched or its agency is no longer configured.
func (s *Service) agencyName(t *hub.Ticket) string {
	if t.Status != hub.StatusDispatched || s.opts.Routes == nil {
		return ""
	}
	if a, ok := s.opts.Routes.Table().Agency(t.Agency); ok && a.ID != hub.AgencyTriage {
		return a.Short
	}
	return ""
}

// sendTicketSMS tells t's reporter, if it has one, the ticket's current status.
func (s *Service) sendTicketSMS(ctx context.Context, t *hub.Ticket) {
	if !wantsSMS(t) {
		return
	}
	s.sendSMS(ctx, t.DeviceID, replyID(t.ID, t.Status), t.Reporter, s.ticketSMS(t), t.Number)
}

// sendSMS asks device to send text to a number. A failure is logged and counted; the reply is
// repeated when the device next comes online (see resync) or re-sends the incident.
func (s *Service) sendSMS(ctx context.Context, device, id, to, text, ticket string) {
	err := func() error {
		args, err := json.Marshal(mqtt.SMSSend{To: to, Text: text, Ticket: ticket})
		if err != nil {
			return err
		}
		payload, err := mqtt.Encode(mqtt.Command{V: mqtt.SchemaVersion, ID: id, Name: mqtt.CommandSMSSend, Args: args, At: s.clock.Now()})
		if err != nil {
			return err
		}
		return s.bus.Publish(ctx, mqtt.Topic(device, mqtt.KindCommand), payload, mqtt.QoSCommand, false)
	}()
	if err != nil {
		s.metrics.smsCommands.WithLabelValues("error").Inc()
		s.log.Error("SMS reply not sent to the kiosk; it is repeated when the kiosk reconnects", "device", device, "command", id, "ticket", ticket, "err", err)
		return
	}
	s.metrics.smsCommands.WithLabelValues("sent").Inc()
	s.log.Debug("SMS reply handed to the kiosk", "device", device, "command", id, "ticket", ticket)
}

// handleRequest answers a request about an existing ticket (an SMS "STATUS …" or "BATAL …", or a
// second press within a button's cancel window). It makes no ticket. It is idempotent: a replay
// gets the same answer under the same command ID. When the store fails, nothing is answered and
// the device re-sends.
func (s *Service) handleRequest(in mqtt.Incident) {
	if in.Request == mqtt.RequestConfirm || in.Request == mqtt.RequestDeny {
		s.handleConfirm(in)
		return
	}
	ctx, cancel := context.WithTimeout(s.workerCtx, 10*time.Second)
	defer cancel()
	t, err := s.store.Ticket(ctx, in.Target)
	if err != nil && hub.ErrorCode(err) != hub.CodeNotFound {
		s.countUnanswered("store_error", 1)
		s.log.Error("request not answered; the kiosk will re-send it", "device", in.DeviceID, "incident", in.ID, "request", in.Request, "err", err)
		return
	}
	// A kiosk may ask only about its own tickets; anything else looks as if it did not exist,
	// so that a number guessed by SMS reveals nothing.
	found := err == nil && t.DeviceID == in.DeviceID
	number := in.Target
	if found {
		number = t.Number
	}
	var text, outcome string
	switch in.Request {
	case mqtt.RequestStatus:
		outcome = "answered"
		status := ""
		if found {
			status = string(t.Status)
		} else {
			outcome = "not_found"
		}
		text = reply.StatusReply(s.opts.SMSLang, number, status, found)
	case mqtt.RequestCancel:
		var ok bool
		ok, outcome, err = s.cancel(ctx, in, t, found)
		if err != nil {
			s.countUnanswered("store_error", 1)
			s.log.Error("cancel not recorded; the kiosk will re-send it", "device", in.DeviceID, "incident", in.ID, "ticket", number, "err", err)
			return
		}
		// A reporter who cancels their own ticket hears it from the status update.
		if !ok || t.Reporter != in.Reporter {
			text = reply.CancelReply(s.opts.SMSLang, number, ok, outcome)
		}
	}
	s.metrics.requests.WithLabelValues(in.Request, outcome).Inc()
	s.log.Info("request answered", "device", in.DeviceID, "incident", in.ID, "request", in.Request, "target", in.Target, "outcome", outcome)
	a := mqtt.Ack{IncidentID: in.ID, Status: mqtt.AckReceived}
	if found {
		a.TicketID, a.TicketNumber = t.ID, t.Number
	}
	s.publishAck(ctx, in.DeviceID, a)
	if in.Source == mqtt.SourceSMS && in.Reporter != "" && text != "" {
		s.sendSMS(ctx, in.DeviceID, requestReplyID(in.ID), in.Reporter, text, number)
	}
}

// cancel applies a cancel request. ok reports whether the ticket is cancelled (now, or by an
// earlier delivery of the same request); outcome is a short label for metrics and the reply.
// Only a store failure is an error.
func (s *Service) cancel(ctx context.Context, in mqtt.Incident, t *hub.Ticket, found bool) (ok bool, outcome string, err error) {
	if !found {
		return false, "not_found", nil
	}
	// By SMS, a reporter may cancel their own report, and an RT/RW head may cancel a press of
	// the post's button (a child's prank); not another person's SMS report.
	if in.Source == mqtt.SourceSMS && t.Source == mqtt.SourceSMS && t.Reporter != in.Reporter {
		return false, "not_reporter", nil
	}
	actor, note := "device:"+in.DeviceID, "cancelled at the kiosk within the cancel window"
	if in.Source == mqtt.SourceSMS {
		actor, note = "sms:"+in.Reporter, "BATAL by SMS"
	}
	_, err = s.Transition(ctx, t.ID, hub.StatusCancelled, actor, note)
	switch {
	case err == nil:
		return true, "cancelled", nil
	case hub.ErrorCode(err) == hub.CodeConflict:
		if t.Status == hub.StatusCancelled {
			return true, "cancelled", nil
		}
		return false, "too_late", nil
	default:
		return false, "", err
	}
}

var errNoLang = errors.New("sms language must be \"id\" or \"en\"")

func checkLang(l string) error {
	if l != "id" && l != "en" {
		return fmt.Errorf("%w, not %q", errNoLang, l)
	}
	return nil
}
