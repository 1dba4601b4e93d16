package ingest

import (
	"context"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/mqtt"
)

// The operator actions. Each is one check-and-set in the store (refused with a conflict when the
// ticket has moved on, so a double click or two operators racing change it once), and then
// reaches the ticket's kiosk (its LEDs follow the status), its SMS reporter, and the event feed.
// Telling them does not depend on the caller's context: the change is committed by then.

// resolveID turns a ticket number ("112-000123") or incident ID into the ticket's ID, which the
// store's changes take; people name tickets by number.
func (s *Service) resolveID(ctx context.Context, ref string) (string, error) {
	if _, ok := hub.ParseNumber(ref); !ok {
		return ref, nil
	}
	t, err := s.store.Ticket(ctx, ref)
	if err != nil {
		return "", err
	}
	return t.ID, nil
}

// announce tells everyone about a change to t. statusChanged sends the kiosk and the reporter
// the new status; other changes (a confirmation, a breach) only reach the dashboard.
func (s *Service) announce(ctx context.Context, t *hub.Ticket, statusChanged bool) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if statusChanged && t.DeviceID != "" {
		s.publishAck(pctx, t.DeviceID, mqtt.Ack{IncidentID: t.IncidentID, TicketID: t.ID, TicketNumber: t.Number, Status: t.Status.AckStatus()})
		s.sendTicketSMS(pctx, t)
	}
	fe := hub.FeedEvent{Kind: hub.FeedTicketChanged, At: t.UpdatedAt, Ticket: t}
	if evs, err := s.store.Events(pctx, t.ID); err == nil && len(evs) > 0 {
		fe.Event = &evs[len(evs)-1]
	}
	s.feed.publish(fe)
	if !t.Status.Open() {
		s.alerts.clearTicket(t)
	} else if t.Status != hub.StatusNew {
		s.alerts.clear(breachAlertID(hub.BreachAck, t.ID))
	}
}

// Transition moves a ticket to another status (see hub.TicketService).
func (s *Service) Transition(ctx context.Context, ticketID string, to hub.Status, by, note string) (*hub.Ticket, error) {
	if to == hub.StatusDispatched {
		return s.Dispatch(ctx, ticketID, "", by, note)
	}
	id, err := s.resolveID(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	t, err := s.store.Transition(ctx, id, to, by, note)
	if err != nil {
		return nil, err
	}
	s.log.Info("ticket status changed", "ticket", t.Number, "id", t.ID, "status", t.Status, "by", by, "device", t.DeviceID)
	s.announce(ctx, t, true)
	return t, nil
}

// Acknowledge records an operator taking a ticket on.
func (s *Service) Acknowledge(ctx context.Context, ticketID, by, note string) (*hub.Ticket, error) {
	return s.Transition(ctx, ticketID, hub.StatusAcknowledged, by, note)
}

// Resolve records that the ticket's emergency or request was dealt with.
func (s *Service) Resolve(ctx context.Context, ticketID, by, note string) (*hub.Ticket, error) {
	return s.Transition(ctx, ticketID, hub.StatusResolved, by, note)
}

// CloseTicket ends a resolved, cancelled or duplicate ticket's life.
func (s *Service) CloseTicket(ctx context.Context, ticketID, by, note string) (*hub.Ticket, error) {
	return s.Transition(ctx, ticketID, hub.StatusClosed, by, note)
}

// Cancel withdraws a ticket that is still open.
func (s *Service) Cancel(ctx context.Context, ticketID, by, note string) (*hub.Ticket, error) {
	return s.Transition(ctx, ticketID, hub.StatusCancelled, by, note)
}

// Dispatch sends an acknowledged ticket to an agency ("" keeps the routed one), with the unit
// that serves the ticket's site.
func (s *Service) Dispatch(ctx context.Context, ticketID, agency, by, note string) (*hub.Ticket, error) {
	id, err := s.resolveID(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	unit := ""
	if agency != "" {
		if s.opts.Routes == nil {
			return nil, hub.Errorf(hub.CodeInvalid, "no agencies are configured; cannot dispatch to %q", agency)
		}
		table := s.opts.Routes.Table()
		if _, ok := table.Agency(agency); !ok || agency == hub.AgencyTriage {
			return nil, hub.Errorf(hub.CodeInvalid, "unknown agency %q", agency)
		}
		t, err := s.store.Ticket(ctx, id)
		if err != nil {
			return nil, err
		}
		unit = table.UnitFor(agency, t.Site)
	}
	t, err := s.store.Dispatch(ctx, id, agency, unit, by, note)
	if err != nil {
		return nil, err
	}
	s.log.Info("ticket dispatched", "ticket", t.Number, "id", t.ID, "agency", t.Agency, "unit", t.Unit, "by", by)
	s.announce(ctx, t, true)
	return t, nil
}

// MergeDuplicate merges a ticket into another that reports the same incident.
func (s *Service) MergeDuplicate(ctx context.Context, ticketID, intoID, by, note string) (*hub.Ticket, error) {
	id, err := s.resolveID(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	dup, survivor, err := s.store.Merge(ctx, id, intoID, by, note)
	if err != nil {
		return nil, err
	}
	s.log.Info("ticket merged", "ticket", dup.Number, "into", survivor.Number, "by", by)
	s.announce(ctx, dup, true)
	s.announce(ctx, survivor, false)
	return dup, nil
}

// MarkFalseAlarm records that a ticket was a false alarm, cancelling it if it is open, and
// updates its kiosk's false-alarm rate.
func (s *Service) MarkFalseAlarm(ctx context.Context, ticketID, by, reason string) (*hub.Ticket, error) {
	id, err := s.resolveID(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	before, err := s.store.Ticket(ctx, id)
	if err != nil {
		return nil, err
	}
	t, err := s.store.MarkFalseAlarm(ctx, id, by, reason)
	if err != nil {
		return nil, err
	}
	s.log.Info("ticket marked a false alarm", "ticket", t.Number, "id", t.ID, "device", t.DeviceID, "by", by, "reason", reason)
	s.announce(ctx, t, t.Status != before.Status)
	s.checkFalseAlarms(context.WithoutCancel(ctx))
	return t, nil
}

// Ticket implements hub.TicketService.
func (s *Service) Ticket(ctx context.Context, id string) (*hub.Ticket, error) {
	return s.store.Ticket(ctx, id)
}

// Tickets implements hub.TicketService.
func (s *Service) Tickets(ctx context.Context, f hub.TicketFilter) ([]*hub.Ticket, error) {
	return s.store.Tickets(ctx, f)
}

// Events implements hub.TicketService.
func (s *Service) Events(ctx context.Context, ticketID string) ([]hub.Event, error) {
	id, err := s.resolveID(ctx, ticketID)
	if err != nil {
		return nil, err
	}
	return s.store.Events(ctx, id)
}
