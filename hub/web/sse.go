package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// streamEvent is what the event stream tells the page: what changed, not the change itself. The
// page then fetches the part it shows through the same handlers as a reload, so that what it
// shows is always what the server renders, under the same rules for who may see what.
type streamEvent struct {
	Kind     hub.FeedKind `json:"kind"`
	TicketID string       `json:"ticket_id,omitempty"`
	Number   string       `json:"number,omitempty"`
	Priority hub.Priority `json:"priority,omitempty"`
	Status   hub.Status   `json:"status,omitempty"`
	DeviceID string       `json:"device_id,omitempty"`
	// Alerts is the number of active alerts this user sees, with alert events.
	Alerts *int `json:"alerts,omitempty"`
}

// visible turns a feed event into what u may be told of it, or false if nothing.
func (h *Handler) visible(r *http.Request, u *account.User, e hub.FeedEvent) (streamEvent, bool) {
	s := streamEvent{Kind: e.Kind}
	switch {
	case e.Ticket != nil:
		if !u.CanAccessAgency(e.Ticket.Agency) {
			return s, false
		}
		s.TicketID, s.Number, s.Priority, s.Status = e.Ticket.ID, e.Ticket.Number, e.Ticket.Priority, e.Ticket.Status
		s.DeviceID = e.Ticket.DeviceID
	case e.Device != nil:
		if !u.Can(account.PermViewDevices) {
			return s, false
		}
		s.DeviceID = e.Device.ID
	case e.Alert != nil:
		if !u.Can(account.PermViewAlerts) || (u.Role == account.RoleAgency && e.Alert.Agency != u.Agency) {
			return s, false
		}
		n := h.alertCount(r.Context(), u)
		s.Alerts, s.TicketID, s.DeviceID = &n, e.Alert.TicketID, e.Alert.DeviceID
	default:
		return s, false
	}
	return s, true
}

// sessionKeeper is an Auth that can mark a session as in use during a long request.
type sessionKeeper interface {
	KeepAlive(r *http.Request)
}

// handleEvents streams server-sent events until the client goes, the hub stops, or the feed
// drops this subscriber for falling behind; the browser's EventSource then reconnects by itself
// and the page reloads its parts, so nothing stays missed.
func (h *Handler) handleEvents(w http.ResponseWriter, r *http.Request, u *account.User) {
	if h.opts.Feed == nil {
		// No live feed: the pages work by reload. 204 tells EventSource not to retry.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rc := http.NewResponseController(w)
	// The server's write timeout is for ordinary requests; a stream lives as long as the page.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		h.log.Debug("dashboard: event stream keeps the write deadline", "err", err)
	}
	ctx := r.Context()
	stopping := h.serverStopping(r)
	events := h.opts.Feed.Subscribe(ctx)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx in front must not hold events back
	w.WriteHeader(http.StatusOK)
	// The retry hint keeps reconnects after a hub restart quick but not hammering.
	if _, err := fmt.Fprint(w, "retry: 3000\n: kentongan\n\n"); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(h.opts.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stopping:
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			// An open dashboard is in use even when no ticket comes for an hour.
			if ka, ok := h.opts.Auth.(sessionKeeper); ok {
				ka.KeepAlive(r)
			}
		case e, ok := <-events:
			if !ok {
				return
			}
			s, show := h.visible(r, u, e)
			if !show {
				continue
			}
			b, err := json.Marshal(s)
			if err != nil {
				h.log.Error("dashboard: encode stream event", "err", err)
				continue
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Kind, b); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// serverStopping returns a channel closed when the server serving r begins to shut down. A
// stream never goes idle, so without this a hub's graceful shutdown would wait out its whole
// timeout for every open dashboard; ending the stream lets the browser reconnect to whichever
// hub comes up next.
func (h *Handler) serverStopping(r *http.Request) <-chan struct{} {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return nil // a test's recorder: the request's context is enough
	}
	h.stopMu.Lock()
	defer h.stopMu.Unlock()
	ch, ok := h.stopping[srv]
	if !ok {
		ch = make(chan struct{})
		h.stopping[srv] = ch
		srv.RegisterOnShutdown(func() {
			h.stopMu.Lock()
			defer h.stopMu.Unlock()
			close(ch)
			delete(h.stopping, srv)
		})
	}
	return ch
}
