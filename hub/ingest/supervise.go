package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/deadline"
)

// supervise runs the checks every ScanInterval until ctx ends: a monitoring centre's
// supervision of its panels, for kiosks, deadlines and false alarms.
func (s *Service) supervise(ctx context.Context) {
	defer close(s.superviseDone)
	t := time.NewTicker(s.opts.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Scan(ctx)
		}
	}
}

// Scan runs the supervision checks once, as the loop does every ScanInterval: kiosks silent for
// longer than their supervision interval, open tickets past a deadline, and kiosks' false-alarm
// rates. Tests call it to avoid waiting for the loop.
func (s *Service) Scan(ctx context.Context) {
	s.checkSilence()
	s.checkDeadlines(ctx)
	// Rates move slowly and their query reads the whole window: once a minute is enough, and
	// marking a false alarm checks at once.
	now := s.clock.Now()
	s.scanMu.Lock()
	due := now.Sub(s.ratesAt) >= falseAlarmEvery
	if due {
		s.ratesAt = now
	}
	s.scanMu.Unlock()
	if due {
		s.checkFalseAlarms(ctx)
	}
}

// falseAlarmEvery is how often the supervision loop recomputes false-alarm rates.
const falseAlarmEvery = time.Minute

func (s *Service) supervisionOf(d hub.Device) time.Duration {
	if d.SupervisionSec > 0 {
		return time.Duration(d.SupervisionSec) * time.Second
	}
	return s.opts.Supervision
}

// heard records that a device itself sent something now (a heartbeat, an incident, an online
// presence: an offline presence is the broker speaking for a vanished kiosk), and ends its
// kiosk_offline alert.
func (s *Service) heard(id string) {
	now := s.clock.Now()
	wasSilent := false
	s.updateDevice(id, func(st *hub.DeviceState) {
		st.LastHeard = &now
		wasSilent, st.Silent = st.Silent, false
		// Whatever the kiosk sends proves it is up, if its presence was missed; an explicit
		// offline is left to the presence that follows a reconnect.
		if st.Presence == hub.PresenceUnknown {
			st.Presence = hub.PresenceOnline
		}
	})
	if wasSilent {
		s.log.Info("kiosk heard again", "device", id)
		s.alerts.clear(kioskAlertID(hub.AlertKioskOffline, id))
	}
}

// checkSilence marks kiosks unheard for longer than their interval. A kiosk never heard since
// the hub started counts from the start: kiosks announce themselves within a heartbeat.
func (s *Service) checkSilence() {
	now := s.clock.Now()
	var silenced []hub.DeviceStatus
	s.devMu.Lock()
	for _, d := range s.devices {
		last := s.started
		if d.state.LastHeard != nil {
			last = *d.state.LastHeard
		}
		if d.state.Silent || now.Sub(last) <= s.supervisionOf(d.dev) {
			continue
		}
		d.state.Silent = true
		silenced = append(silenced, d.status())
	}
	s.devMu.Unlock()
	for _, d := range silenced {
		since := "since the hub started"
		if d.State.LastHeard != nil {
			since = "since " + d.State.LastHeard.In(deadline.WIB).Format("2006-01-02 15:04:05 MST")
		}
		s.alerts.raise(hub.Alert{
			ID: kioskAlertID(hub.AlertKioskOffline, d.ID), Kind: hub.AlertKioskOffline, DeviceID: d.ID,
			Message: fmt.Sprintf("kiosk %s (%s) not heard %s, longer than its supervision interval of %v",
				d.ID, d.Name, since, s.supervisionOf(d.Device)),
		}, true)
		s.feed.publish(hub.FeedEvent{Kind: hub.FeedDeviceChanged, At: now, Device: &d})
	}
}

// checkDeadlines marks open tickets that missed a deadline, once each (the mark is stored), and
// keeps an alert up for each breach until the ticket moves on. A replica that does not lead
// marks nothing: it raises, without notifying, the alerts of the marks the leader stored.
func (s *Service) checkDeadlines(ctx context.Context) {
	now := s.clock.Now()
	ts, err := s.store.Tickets(ctx, hub.TicketFilter{Overdue: now, Limit: hub.MaxLimit})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("deadline check failed; trying again at the next scan", "err", err)
		}
		return
	}
	leading := s.opts.Leading == nil || s.opts.Leading()
	for _, t := range ts {
		for _, k := range t.Overdue(now) {
			if !leading {
				break
			}
			nt, marked, err := s.store.MarkBreach(ctx, t.ID, k)
			if err != nil {
				s.log.Error("deadline breach not recorded; trying again at the next scan", "ticket", t.Number, "deadline", k, "err", err)
				continue
			}
			t = nt
			if marked {
				s.metrics.breaches.WithLabelValues(string(k)).Inc()
				s.log.Warn("deadline missed", "ticket", t.Number, "id", t.ID, "deadline", k, "priority", t.Priority, "agency", t.Agency)
				s.raiseBreach(t, k, true)
				s.announce(ctx, t, false)
			}
		}
		// After a restart the marks are there but the alerts are not.
		if t.AckBreachedAt != nil && t.Status == hub.StatusNew {
			s.raiseBreach(t, hub.BreachAck, false)
		}
		if t.ResolveBreachedAt != nil && t.Status.Open() {
			s.raiseBreach(t, hub.BreachResolve, false)
		}
	}
}

func (s *Service) raiseBreach(t *hub.Ticket, k hub.BreachKind, notify bool) {
	id := breachAlertID(k, t.ID)
	if s.alerts.isActive(id) {
		return
	}
	due, what := t.AckDue, "acknowledged"
	if k == hub.BreachResolve {
		due, what = t.ResolveDue, "resolved"
	}
	msg := fmt.Sprintf("ticket %s (%s, %s) was not %s by its deadline", t.Number, t.Priority, t.Agency, what)
	if due != nil {
		msg = fmt.Sprintf("ticket %s (%s, %s) was not %s by %s", t.Number, t.Priority, t.Agency, what,
			due.In(deadline.WIB).Format("2006-01-02 15:04 MST"))
	}
	s.alerts.raise(hub.Alert{ID: id, Kind: hub.AlertDeadlineBreach, DeviceID: t.DeviceID, TicketID: t.ID,
		TicketNumber: t.Number, Agency: t.Agency, Breach: k, Message: msg}, notify)
}

// checkFalseAlarms recomputes every kiosk's false-alarm rate over the window and flags those
// above the limit. Flagging informs; it never holds back a kiosk's reports.
func (s *Service) checkFalseAlarms(ctx context.Context) {
	now := s.clock.Now()
	counts, err := s.store.DeviceCounts(ctx, now.Add(-s.opts.FalseAlarms.Window))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("false-alarm check failed; trying again at the next scan", "err", err)
		}
		return
	}
	p := s.opts.FalseAlarms
	type change struct {
		d       hub.DeviceStatus
		flagged bool
		flip    bool
	}
	var changes []change
	s.devMu.Lock()
	for id, d := range s.devices {
		c := counts[id]
		flagged := c.Tickets >= p.MinTickets && float64(c.FalseAlarms) > p.MaxRate*float64(c.Tickets)
		st := &d.state
		if st.WindowTickets == c.Tickets && st.WindowFalseAlarms == c.FalseAlarms && st.FalseAlarmFlagged == flagged {
			continue
		}
		flip := st.FalseAlarmFlagged != flagged
		st.WindowTickets, st.WindowFalseAlarms, st.FalseAlarmFlagged = c.Tickets, c.FalseAlarms, flagged
		changes = append(changes, change{d.status(), flagged, flip})
	}
	s.devMu.Unlock()
	for _, c := range changes {
		id := kioskAlertID(hub.AlertFalseAlarmRate, c.d.ID)
		switch {
		case c.flip && c.flagged:
			s.alerts.raise(hub.Alert{ID: id, Kind: hub.AlertFalseAlarmRate, DeviceID: c.d.ID,
				Message: fmt.Sprintf("kiosk %s (%s): %d of its %d tickets in the last %v were false alarms, above the limit of %.0f%%",
					c.d.ID, c.d.Name, c.d.State.WindowFalseAlarms, c.d.State.WindowTickets, p.Window, p.MaxRate*100)}, true)
		case c.flip:
			s.alerts.clear(id)
		}
		s.feed.publish(hub.FeedEvent{Kind: hub.FeedDeviceChanged, At: now, Device: &c.d})
	}
}
