package http

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// maxSearchLen bounds the text search; longer is a paste accident.
const maxSearchLen = 200

func (s *Server) handleTickets(w http.ResponseWriter, r *http.Request, u *account.User) error {
	f, search, err := ticketFilter(r, s.clock.Now())
	if err != nil {
		return err
	}
	// The agency scoping rule: an agency user's list is their agency's, and asking for another
	// agency's is refused, not silently narrowed, so that a wrong dashboard link shows.
	if u.Role == account.RoleAgency {
		if f.Agency != "" && f.Agency != u.Agency {
			return s.opts.Accounts.Forbidden(r.Context(), account.ActorOf(r), "list tickets of agency "+f.Agency, f.Agency)
		}
		f.Agency = u.Agency
	}
	limit := f.Limit
	if search != "" {
		// The store has no text index; search the newest tickets that match everything else.
		f.Limit = hub.MaxLimit
	}
	tickets, err := s.opts.Tickets.Tickets(r.Context(), f)
	if err != nil {
		return err
	}
	if search != "" {
		tickets = searchTickets(tickets, search, limit)
	}
	s.json(w, http.StatusOK, tickets)
	return nil
}

// ticketFilter reads GET /api/v1/tickets's query. Unknown values are refused rather than
// ignored: a typo in a filter must not look like an empty queue.
func ticketFilter(r *http.Request, now time.Time) (hub.TicketFilter, string, error) {
	q := r.URL.Query()
	f := hub.TicketFilter{
		Status:   hub.Status(q.Get("status")),
		DeviceID: q.Get("device_id"),
		Agency:   q.Get("agency"),
		Priority: hub.Priority(q.Get("priority")),
		Category: q.Get("category"),
		Source:   q.Get("source"),
	}
	if f.Status != "" && !f.Status.Valid() {
		return f, "", hub.Errorf(hub.CodeInvalid, "status %q: must be one of new, acknowledged, dispatched, resolved, closed, cancelled, duplicate", f.Status)
	}
	if f.Priority != "" && f.Priority != hub.PriorityEmergency && f.Priority != hub.PriorityNormal {
		return f, "", hub.Errorf(hub.CodeInvalid, "priority %q: must be emergency or normal", f.Priority)
	}
	var err error
	if f.Open, err = boolParam(q, "open"); err != nil {
		return f, "", err
	}
	if f.Breached, err = boolParam(q, "breached"); err != nil {
		return f, "", err
	}
	overdue, err := boolParam(q, "overdue")
	if err != nil {
		return f, "", err
	}
	if overdue {
		f.Overdue = now
	}
	if f.Limit, err = limitParam(q.Get("limit")); err != nil {
		return f, "", err
	}
	search := strings.TrimSpace(q.Get("q"))
	if len(search) > maxSearchLen {
		return f, "", hub.Errorf(hub.CodeInvalid, "q is longer than %d bytes", maxSearchLen)
	}
	for k := range q {
		switch k {
		case "status", "device_id", "agency", "priority", "category", "source", "open", "breached", "overdue", "limit", "q":
		default:
			return f, "", hub.Errorf(hub.CodeInvalid, "unknown query parameter %q", k)
		}
	}
	return f, search, nil
}

func boolParam(q map[string][]string, name string) (bool, error) {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(vs[0])
	if err != nil {
		return false, hub.Errorf(hub.CodeInvalid, "%s must be true or false, not %q", name, vs[0])
	}
	return b, nil
}

// searchTickets keeps the tickets whose number, text, reporter, kiosk, category, agency or
// place contains every word of search, ignoring case, at most limit of them.
func searchTickets(ts []*hub.Ticket, search string, limit int) []*hub.Ticket {
	if limit == 0 {
		limit = hub.DefaultLimit
	}
	words := strings.Fields(strings.ToLower(search))
	out := []*hub.Ticket{}
	for _, t := range ts {
		hay := strings.ToLower(strings.Join([]string{t.Number, t.ID, t.Text, t.Reporter, t.DeviceID, t.Category,
			t.Agency, t.Unit, t.Site.Kecamatan, t.Site.Kelurahan, "rw " + t.Site.RW, "rt " + t.Site.RT}, "\n"))
		match := true
		for _, w := range words {
			if !strings.Contains(hay, w) {
				match = false
				break
			}
		}
		if match {
			out = append(out, t)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// ticketDetail is a ticket with its audit trail and its kiosk, as GET /api/v1/tickets/{id}
// returns it. The reporter's number and message are the ticket's own fields.
type ticketDetail struct {
	*hub.Ticket
	Events []hub.Event       `json:"events"`
	Device *hub.DeviceStatus `json:"device"` // null when the ticket came from no kiosk
}

func (s *Server) handleTicket(w http.ResponseWriter, r *http.Request, u *account.User) error {
	t, err := s.scopedTicket(r, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	events, err := s.opts.Tickets.Events(r.Context(), t.ID)
	if err != nil {
		return err
	}
	d := ticketDetail{Ticket: t, Events: events}
	if t.DeviceID != "" {
		for _, ds := range s.opts.Devices.Devices(r.Context()) {
			if ds.ID == t.DeviceID {
				d.Device = &ds
				break
			}
		}
	}
	s.json(w, http.StatusOK, d)
	return nil
}

// scopedTicket looks a ticket up by ID or number and applies the agency scoping rule: another
// agency's ticket is forbidden, and the refusal is logged and audited.
func (s *Server) scopedTicket(r *http.Request, u *account.User, id string) (*hub.Ticket, error) {
	t, err := s.opts.Tickets.Ticket(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !u.CanAccessAgency(t.Agency) {
		// The message names the user's agency, not the ticket's: that is not theirs to know.
		return nil, s.opts.Accounts.Forbidden(r.Context(), account.ActorOf(r),
			"access ticket "+t.Number+", which is not agency "+u.Agency+"'s", t.Number)
	}
	return t, nil
}

// ticketAction is one operator action on a ticket: POST /api/v1/tickets/{id}/{name}.
type ticketAction struct {
	name string
	perm account.Permission
	// body returns a fresh request body to decode into; its fields are the action's only ones.
	body func() actionBody
	do   func(ctx context.Context, s *Server, r *http.Request, u *account.User, t *hub.Ticket, b actionBody) (*hub.Ticket, error)
}

// actionBody is an action's JSON body. "by", when given, must be the caller: the acting user is
// whoever is logged in, and the field is accepted only so that old clients that sent their own
// name keep working.
type actionBody interface{ actor() string }

type noteBody struct {
	By   string `json:"by"`
	Note string `json:"note"`
}

type dispatchBody struct {
	By     string `json:"by"`
	Agency string `json:"agency"`
	Note   string `json:"note"`
}

type mergeBody struct {
	By   string `json:"by"`
	Into string `json:"into"`
	Note string `json:"note"`
}

type falseAlarmBody struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
}

func (b *noteBody) actor() string       { return b.By }
func (b *dispatchBody) actor() string   { return b.By }
func (b *mergeBody) actor() string      { return b.By }
func (b *falseAlarmBody) actor() string { return b.By }

func newNote() actionBody { return &noteBody{} }

var ticketActions = []ticketAction{
	{name: "ack", perm: account.PermHandleTickets, body: newNote,
		do: func(ctx context.Context, s *Server, _ *http.Request, u *account.User, t *hub.Ticket, b actionBody) (*hub.Ticket, error) {
			return s.opts.Tickets.Acknowledge(ctx, t.ID, u.Name, b.(*noteBody).Note)
		}},
	{name: "dispatch", perm: account.PermHandleTickets, body: func() actionBody { return &dispatchBody{} },
		do: func(ctx context.Context, s *Server, _ *http.Request, u *account.User, t *hub.Ticket, b actionBody) (*hub.Ticket, error) {
			d := b.(*dispatchBody)
			return s.opts.Tickets.Dispatch(ctx, t.ID, d.Agency, u.Name, d.Note)
		}},
	{name: "resolve", perm: account.PermResolveTickets, body: newNote,
		do: func(ctx context.Context, s *Server, _ *http.Request, u *account.User, t *hub.Ticket, b actionBody) (*hub.Ticket, error) {
			return s.opts.Tickets.Resolve(ctx, t.ID, u.Name, b.(*noteBody).Note)
		}},
	{name: "close", perm: account.PermHandleTickets, body: newNote,
		do: func(ctx context.Context, s *Server, _ *http.Request, u *account.User, t *hub.Ticket, b actionBody) (*hub.Ticket, error) {
			return s.opts.Tickets.CloseTicket(ctx, t.ID, u.Name, b.(*noteBody).Note)
		}},
	{name: "cancel", perm: account.PermHandleTickets, body: newNote,
		do: func(ctx context.Context, s *Server, _ *http.Request, u *account.User, t *hub.Ticket, b actionBody) (*hub.Ticket, error) {
			return s.opts.Tickets.Cancel(ctx, t.ID, u.Name, b.(*noteBody).Note)
		}},
	{name: "merge", perm: account.PermHandleTickets, body: func() actionBody { return &mergeBody{} },
		do: func(ctx context.Context, s *Server, r *http.Request, u *account.User, t *hub.Ticket, b actionBody) (*hub.Ticket, error) {
			m := b.(*mergeBody)
			if strings.TrimSpace(m.Into) == "" {
				return nil, hub.Errorf(hub.CodeInvalid, "into is required: the ID or number of the ticket this one duplicates")
			}
			into, err := s.scopedTicket(r, u, m.Into)
			if err != nil {
				return nil, err
			}
			return s.opts.Tickets.MergeDuplicate(ctx, t.ID, into.ID, u.Name, m.Note)
		}},
	{name: "false-alarm", perm: account.PermHandleTickets, body: func() actionBody { return &falseAlarmBody{} },
		do: func(ctx context.Context, s *Server, _ *http.Request, u *account.User, t *hub.Ticket, b actionBody) (*hub.Ticket, error) {
			f := b.(*falseAlarmBody)
			if strings.TrimSpace(f.Reason) == "" {
				return nil, hub.Errorf(hub.CodeInvalid, "reason is required: why this was a false alarm")
			}
			return s.opts.Tickets.MarkFalseAlarm(ctx, t.ID, u.Name, f.Reason)
		}},
}

// ticketAction serves one action: the body is read and checked first, then the ticket is looked
// up and scoped, and only then changed, so that a bad request changes nothing.
func (s *Server) ticketAction(a ticketAction) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, u *account.User) error {
		b := a.body()
		if err := decodeJSON(w, r, b, true); err != nil {
			return err
		}
		if by := b.actor(); by != "" && by != u.Name {
			return hub.Errorf(hub.CodeInvalid, "by is %q, but you are logged in as %q: leave by out, the hub records who is logged in", by, u.Name)
		}
		t, err := s.scopedTicket(r, u, r.PathValue("id"))
		if err != nil {
			return err
		}
		t, err = a.do(r.Context(), s, r, u, t, b)
		if err != nil {
			return err
		}
		s.json(w, http.StatusOK, t)
		return nil
	}
}
