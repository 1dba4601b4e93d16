package ingest

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/kentongan/kentongan/hub"
)

// keepCleared is how many cleared alerts are kept for the dashboard's recent history.
const keepCleared = 200

// alertBook holds the active alerts and the recently cleared ones. Alerts live in memory: what
// they are about (a ticket's breach marks, a kiosk's silence, a rate) is found again by the
// supervision loop after a restart.
type alertBook struct {
	s       *Service
	mu      sync.Mutex
	active  map[string]hub.Alert
	cleared []hub.Alert // oldest first
}

func newAlertBook(s *Service) *alertBook {
	return &alertBook{s: s, active: map[string]hub.Alert{}}
}

func breachAlertID(k hub.BreachKind, ticketID string) string {
	return string(hub.AlertDeadlineBreach) + ":" + string(k) + ":" + ticketID
}

func kioskAlertID(kind hub.AlertKind, device string) string { return string(kind) + ":" + device }

// raise makes a an active alert unless one with its ID is active. notify says whether the
// supervisor is told: not when the alert is only found again after a restart.
func (b *alertBook) raise(a hub.Alert, notify bool) {
	b.mu.Lock()
	if _, ok := b.active[a.ID]; ok {
		b.mu.Unlock()
		return
	}
	a.RaisedAt, a.ClearedAt = b.s.clock.Now(), nil
	b.active[a.ID] = a
	b.mu.Unlock()

	b.s.metrics.alerts.WithLabelValues(string(a.Kind)).Inc()
	b.s.log.Warn("alert raised", "alert", a.ID, "kind", a.Kind, "message", a.Message)
	b.s.feed.publish(hub.FeedEvent{Kind: hub.FeedAlertRaised, At: a.RaisedAt, Alert: &a})
	if notify && b.s.opts.Notify != nil {
		b.s.opts.Notify(a)
	}
}

// clear ends the active alert with the given ID, if there is one.
func (b *alertBook) clear(id string) {
	b.mu.Lock()
	a, ok := b.active[id]
	if !ok {
		b.mu.Unlock()
		return
	}
	delete(b.active, id)
	now := b.s.clock.Now()
	a.ClearedAt = &now
	b.cleared = append(b.cleared, a)
	if len(b.cleared) > keepCleared {
		b.cleared = slices.Delete(b.cleared, 0, len(b.cleared)-keepCleared)
	}
	b.mu.Unlock()

	b.s.log.Info("alert cleared", "alert", a.ID, "kind", a.Kind)
	b.s.feed.publish(hub.FeedEvent{Kind: hub.FeedAlertCleared, At: now, Alert: &a})
}

// clearTicket clears a ticket's breach alerts: it is no longer open.
func (b *alertBook) clearTicket(t *hub.Ticket) {
	b.clear(breachAlertID(hub.BreachAck, t.ID))
	b.clear(breachAlertID(hub.BreachResolve, t.ID))
}

func (b *alertBook) isActive(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.active[id]
	return ok
}

// list returns alerts matching f: active ones newest first, then cleared ones newest first.
func (b *alertBook) list(f hub.AlertFilter) []hub.Alert {
	b.mu.Lock()
	defer b.mu.Unlock()
	match := func(a hub.Alert) bool {
		return (f.Kind == "" || a.Kind == f.Kind) && (f.DeviceID == "" || a.DeviceID == f.DeviceID) &&
			(f.Agency == "" || a.Agency == f.Agency)
	}
	out := []hub.Alert{}
	for _, a := range b.active {
		if match(a) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y hub.Alert) int {
		if c := y.RaisedAt.Compare(x.RaisedAt); c != 0 {
			return c
		}
		return cmp.Compare(x.ID, y.ID)
	})
	if f.IncludeCleared {
		for _, a := range slices.Backward(b.cleared) {
			if match(a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// Alerts implements hub.AlertService.
func (s *Service) Alerts(_ context.Context, f hub.AlertFilter) []hub.Alert {
	return s.alerts.list(f)
}

// Subscribe implements hub.EventFeed.
func (s *Service) Subscribe(ctx context.Context) <-chan hub.FeedEvent {
	return s.feed.Subscribe(ctx)
}

// RoutingReloaded raises or clears the routing-configuration alert; hubd passes it to
// route.Options.OnReload.
func (s *Service) RoutingReloaded(err error) {
	if err == nil {
		s.alerts.clear(string(hub.AlertRoutingConfig))
		return
	}
	msg := hub.ErrorMessage(err) // says what is wrong, where, and that the previous routing stays
	// A second mistake replaces the first: the alert says what is wrong now.
	for _, a := range s.alerts.list(hub.AlertFilter{Kind: hub.AlertRoutingConfig}) {
		if a.Message != msg {
			s.alerts.clear(a.ID)
		}
	}
	s.alerts.raise(hub.Alert{ID: string(hub.AlertRoutingConfig), Kind: hub.AlertRoutingConfig, Message: msg}, true)
}
