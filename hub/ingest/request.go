package ingest

// This file is W's (accounts and API): the way in for requests that come from no kiosk, which
// Open311 (hub/http) files.

import (
	"context"
	"fmt"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/route"
)

// RequestDevice is the device ID of tickets filed from outside the kiosks, until the domain
// accepts tickets without a device (hub.NewTicket.Validate requires one). No kiosk is
// registered under it, so nothing is ever sent to it.
const RequestDevice = "open311"

// FileRequest makes a ticket of a non-emergency request that came from no kiosk. It is routed
// by its category and place like a kiosk's report, gets its working-hours deadlines, and is
// announced on the event feed; there is no kiosk to answer. A request that routing makes an
// emergency is refused: emergencies are for the 112 line, not a form.
func (s *Service) FileRequest(ctx context.Context, nt hub.NewTicket) (*hub.Ticket, error) {
	if nt.DeviceID == "" {
		nt.DeviceID = RequestDevice
	}
	nt.Priority = hub.PriorityNormal
	if s.opts.Routes != nil {
		d := s.opts.Routes.Route(route.Input{Source: nt.Source, Category: nt.Category, Site: nt.Site})
		if d.Priority == hub.PriorityEmergency {
			return nil, hub.Errorf(hub.CodeInvalid, "category %q is an emergency: call 112", nt.Category)
		}
		nt.Agency, nt.Unit = d.Agency, d.Unit
	}
	if nt.Agency == "" {
		nt.Agency = hub.AgencyTriage
	}
	nt.Deadlines = s.opts.Deadlines.For(nt.Priority, s.clock.Now())
	res, err := s.store.Ingest(ctx, []hub.NewTicket{nt})
	if err != nil {
		return nil, fmt.Errorf("file request %s: %w", nt.IncidentID, err)
	}
	if res[0].Err != nil {
		return nil, res[0].Err
	}
	t := res[0].Ticket
	if !res[0].Existing {
		s.log.Info("request filed", "ticket", t.Number, "id", t.ID, "source", t.Source, "category", t.Category,
			"agency", t.Agency, "unit", t.Unit)
		s.feed.publish(hub.FeedEvent{Kind: hub.FeedTicketCreated, At: t.CreatedAt, Ticket: t})
	}
	return t, nil
}
