package ingest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/route"
	"github.com/kentongan/kentongan/mqtt"
)

// route fills a new ticket's site, agency, unit and priority. Without a routing table the ticket
// stays in triage with the priority hub.PriorityFor gave it.
func (s *Service) route(nt *hub.NewTicket, in mqtt.Incident) {
	s.devMu.RLock()
	if d, ok := s.devices[nt.DeviceID]; ok {
		nt.Site = d.dev.Site
	}
	s.devMu.RUnlock()
	if s.opts.Routes == nil {
		return
	}
	d := s.opts.Routes.Route(route.Input{Source: in.Source, Category: in.Category, Emergency: in.Emergency, Test: in.Test, Site: nt.Site})
	nt.Agency, nt.Unit, nt.Priority = d.Agency, d.Unit, d.Priority
	s.log.Debug("incident routed", "incident", in.ID, "agency", d.Agency, "unit", d.Unit, "priority", d.Priority, "rule", d.Rule)
}

// status is the device with a copy of its state, safe to hand out.
func (d *device) status() hub.DeviceStatus {
	st := d.state
	if st.Modem != nil {
		m := *st.Modem
		st.Modem = &m
	}
	dev := d.dev
	dev.RTRWHeads = slices.Clone(dev.RTRWHeads)
	return hub.DeviceStatus{Device: dev, State: st}
}

// deviceChanged tells the event feed about a device's new state.
func (s *Service) deviceChanged(id string) {
	s.devMu.RLock()
	d, ok := s.devices[id]
	var ds hub.DeviceStatus
	if ok {
		ds = d.status()
	}
	s.devMu.RUnlock()
	if ok {
		s.feed.publish(hub.FeedEvent{Kind: hub.FeedDeviceChanged, At: s.clock.Now(), Device: &ds})
	}
}

// NormalizeNumber writes an Indonesian phone number as the kiosk reports its senders:
// "+62" and the national number without the trunk 0 ("0812-3456-7890" is "+6281234567890").
func NormalizeNumber(n string) (string, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(n) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", fmt.Errorf("%q is not a phone number", n)
		}
	}
	s := b.String()
	switch {
	case strings.HasPrefix(s, "+"):
	case strings.HasPrefix(s, "62"):
		s = "+" + s
	case strings.HasPrefix(s, "0"):
		s = "+62" + s[1:]
	default:
		return "", fmt.Errorf("%q is not a phone number: write it as 08… or +62…", n)
	}
	if len(s) < 8 || len(s) > 16 {
		return "", fmt.Errorf("%q is not a phone number: wrong length", n)
	}
	return s, nil
}

func normalizeHeads(heads []string) ([]string, error) {
	out := make([]string, 0, len(heads))
	for _, h := range heads {
		n, err := NormalizeNumber(h)
		if err != nil {
			return nil, fmt.Errorf("rt_rw_heads: %w", err)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// confirmWindow is how long after a press its kiosk's RT/RW heads' answers without a ticket
// number ("YA") are taken to be about it.
const confirmWindow = 24 * time.Hour
