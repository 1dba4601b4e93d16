package web

import (
	"cmp"
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// queueLimit is how many tickets the queue shows. A 112 centre's open queue is tens; the rest is
// history, which the filters and the JSON API reach.
const queueLimit = 500

// pageFunc handles a request from a signed-in user.
type pageFunc func(w http.ResponseWriter, r *http.Request, u *account.User)

// page wraps fn with the session check: a browser without a session is sent to the login page
// (a fragment or the event stream gets 401, which the script turns into a reload to it), and a
// form without its CSRF token is refused before anything changes.
func (h *Handler) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := h.opts.Auth.User(r)
		badCSRF := r.Method == http.MethodPost && (hub.ErrorCode(account.AuthError(r.Context())) == hub.CodeForbidden ||
			u != nil && !h.opts.Auth.CheckCSRF(r))
		if badCSRF {
			// The account middleware drops the user of a form without its token, so the
			// session is known only from the error it left.
			h.log.Warn("dashboard form refused: missing or wrong CSRF token", "path", r.URL.Path)
			p := h.newPage(r, nil, "", "")
			p.Title = p.L.T("error.title")
			p.Data = struct{ Message string }{p.L.T("action.csrf")}
			h.render(w, http.StatusForbidden, "error", p)
			return
		}
		if u == nil || u.Disabled {
			if isFragment(r) {
				http.Error(w, "not signed in", http.StatusUnauthorized)
				return
			}
			q := url.Values{}
			if account.AuthError(r.Context()) != nil {
				q.Set("error", account.LoginErrExpired)
			}
			next := r.URL.RequestURI()
			if r.Method != http.MethodGet {
				next = r.Header.Get("Referer")
				if ref, err := url.Parse(next); err == nil {
					next = ref.RequestURI()
				}
			}
			if next = localPath(next, "/"); next != "/" {
				q.Set(account.FieldNext, next)
			}
			target := "/login"
			if len(q) > 0 {
				target += "?" + q.Encode()
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		fn(w, r, u)
	}
}

// isFragment reports whether r is the script's request for part of a page.
func isFragment(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasSuffix(p, "/rows") || strings.HasSuffix(p, "/live") || p == "/events" || p == "/map/data"
}

// forbidden answers a user who asked for what is not theirs, and logs it: an agency user who
// reaches another agency's ticket has either followed a stale link or is probing.
func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, u *account.User, what string) {
	h.log.Warn("dashboard: forbidden", "user", u.Name, "role", u.Role, "agency", u.Agency, "path", r.URL.Path, "what", what)
	h.renderError(w, r, u, hub.Errorf(hub.CodeForbidden, "%s", what))
}

// agencies returns the routing's agencies, or none without a routing service.
func (h *Handler) agencies(ctx context.Context) []hub.Agency {
	if h.opts.Routing == nil {
		return nil
	}
	return h.opts.Routing.Agencies(ctx)
}

// alertFilter is the part of the alerts u may see.
func alertFilter(u *account.User) hub.AlertFilter {
	if u.Role == account.RoleAgency {
		return hub.AlertFilter{Agency: u.Agency}
	}
	return hub.AlertFilter{}
}

// alertCount is the number on the alerts tab.
func (h *Handler) alertCount(ctx context.Context, u *account.User) int {
	if h.opts.Alerts == nil || !u.Can(account.PermViewAlerts) {
		return 0
	}
	return len(h.opts.Alerts.Alerts(ctx, alertFilter(u)))
}

// decorate fills what every full page shows about the user.
func (h *Handler) decorate(ctx context.Context, p *page, u *account.User, l *lookups) {
	p.AlertCount = h.alertCount(ctx, u)
	if p.User != nil && u.Agency != "" && l != nil {
		if a, ok := l.byID[u.Agency]; ok {
			p.User.AgencyName = cmp.Or(a.Short, a.Name)
		}
	}
}

// queueFilter is the queue's filter as the form sets it.
type queueFilter struct {
	Open     bool
	Status   hub.Status
	Priority hub.Priority
	Agency   string
}

// parseQueueFilter reads the queue's query. An unknown value is an error rather than ignored,
// so that a mistyped link does not quietly show everything.
func parseQueueFilter(r *http.Request, u *account.User) (queueFilter, hub.TicketFilter, error) {
	q := r.URL.Query()
	qf := queueFilter{Open: q.Get("view") != "all", Status: hub.Status(q.Get("status")),
		Priority: hub.Priority(q.Get("priority")), Agency: q.Get("agency")}
	if v := q.Get("view"); v != "" && v != "open" && v != "all" {
		return qf, hub.TicketFilter{}, hub.Errorf(hub.CodeInvalid, "view must be open or all, not %q", v)
	}
	if qf.Status != "" && !qf.Status.Valid() {
		return qf, hub.TicketFilter{}, hub.Errorf(hub.CodeInvalid, "unknown status %q", qf.Status)
	}
	if qf.Priority != "" && qf.Priority != hub.PriorityEmergency && qf.Priority != hub.PriorityNormal {
		return qf, hub.TicketFilter{}, hub.Errorf(hub.CodeInvalid, "unknown priority %q", qf.Priority)
	}
	if qf.Status != "" {
		qf.Open = false // a status says which tickets; "open" would contradict a closed one
	}
	if u.Role == account.RoleAgency {
		qf.Agency = u.Agency
	}
	f := hub.TicketFilter{Status: qf.Status, Priority: qf.Priority, Agency: qf.Agency, Open: qf.Open, Limit: queueLimit}
	return qf, f, nil
}

// queueData is the queue page's data.
type queueData struct {
	Tickets     []*ticketView
	Emergencies int
	Filter      queueFilter
	Query       string
	Statuses    []hub.Status
	Agencies    []hub.Agency
}

func (h *Handler) queueData(ctx context.Context, r *http.Request, u *account.User, p *page) (*queueData, *lookups, error) {
	qf, f, err := parseQueueFilter(r, u)
	if err != nil {
		return nil, nil, err
	}
	ts, err := h.opts.Tickets.Tickets(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	l := newLookups(h.opts.Devices.Devices(ctx), h.agencies(ctx))
	for _, t := range ts {
		l.numbers[t.ID] = t.Number
	}
	d := &queueData{Filter: qf, Agencies: l.agencies,
		Statuses: []hub.Status{hub.StatusNew, hub.StatusAcknowledged, hub.StatusDispatched, hub.StatusResolved,
			hub.StatusClosed, hub.StatusCancelled, hub.StatusDuplicate}}
	q := r.URL.Query()
	q.Del("ok")
	d.Query = q.Encode()
	for _, t := range ts {
		// The filter already confines an agency user; this is the rule itself, in case a
		// store's filter ever differs from it.
		if !u.CanAccessAgency(t.Agency) {
			continue
		}
		v := h.viewTicket(p.L, u, t, l, p.Now)
		if t.Priority == hub.PriorityEmergency && t.Status.Open() {
			d.Emergencies++
		}
		d.Tickets = append(d.Tickets, v)
	}
	sortQueue(d.Tickets)
	return d, l, nil
}

func (h *Handler) handleQueue(w http.ResponseWriter, r *http.Request, u *account.User) {
	ctx, cancel := requestContext(r)
	defer cancel()
	p := h.newPage(r, u, "queue", "")
	p.Title = p.L.T("queue.title")
	d, l, err := h.queueData(ctx, r, u, p)
	if err != nil {
		h.renderError(w, r, u, err)
		return
	}
	p.Data = d
	h.decorate(ctx, p, u, l)
	h.render(w, http.StatusOK, "queue", p)
}

// handleQueueRows is the queue's table body and counts, for the script to swap in when the
// event stream says a ticket changed.
func (h *Handler) handleQueueRows(w http.ResponseWriter, r *http.Request, u *account.User) {
	ctx, cancel := requestContext(r)
	defer cancel()
	p := h.newPage(r, u, "queue", "")
	d, _, err := h.queueData(ctx, r, u, p)
	if err != nil {
		http.Error(w, hub.ErrorMessage(err), http.StatusBadRequest)
		return
	}
	p.Data = d
	h.renderTemplate(w, http.StatusOK, "queue", "fragment", p)
}

// ticketData is the ticket page's data.
type ticketData struct {
	Ticket   *ticketView
	Events   []hub.Event
	Agencies []hub.Agency
}

// loadTicket reads a ticket for u, refusing one of another agency.
func (h *Handler) loadTicket(ctx context.Context, w http.ResponseWriter, r *http.Request, u *account.User, p *page) (*ticketData, *lookups, bool) {
	id := r.PathValue("id")
	t, err := h.opts.Tickets.Ticket(ctx, id)
	if err != nil {
		if hub.ErrorCode(err) == hub.CodeNotFound {
			err = hub.Errorf(hub.CodeNotFound, "%s", p.L.T("ticket.notfound"))
		}
		h.renderError(w, r, u, err)
		return nil, nil, false
	}
	if !u.CanAccessAgency(t.Agency) {
		h.forbidden(w, r, u, "ticket "+t.Number+" of agency "+t.Agency)
		return nil, nil, false
	}
	events, err := h.opts.Tickets.Events(ctx, t.ID)
	if err != nil {
		h.renderError(w, r, u, err)
		return nil, nil, false
	}
	l := newLookups(h.opts.Devices.Devices(ctx), h.agencies(ctx))
	if t.DuplicateOf != "" {
		if o, err := h.opts.Tickets.Ticket(ctx, t.DuplicateOf); err == nil {
			l.numbers[o.ID] = o.Number
		}
	}
	d := &ticketData{Ticket: h.viewTicket(p.L, u, t, l, p.Now), Events: events}
	for _, a := range l.agencies {
		if a.ID != hub.AgencyTriage {
			d.Agencies = append(d.Agencies, a)
		}
	}
	return d, l, true
}

func (h *Handler) handleTicket(w http.ResponseWriter, r *http.Request, u *account.User) {
	ctx, cancel := requestContext(r)
	defer cancel()
	p := h.newPage(r, u, "queue", "")
	d, l, ok := h.loadTicket(ctx, w, r, u, p)
	if !ok {
		return
	}
	p.Title = p.L.T("ticket.title", d.Ticket.Number)
	p.Data = d
	h.decorate(ctx, p, u, l)
	h.render(w, http.StatusOK, "ticket", p)
}

// handleTicketLive is the ticket page's facts and history, for the script to swap in.
func (h *Handler) handleTicketLive(w http.ResponseWriter, r *http.Request, u *account.User) {
	ctx, cancel := requestContext(r)
	defer cancel()
	p := h.newPage(r, u, "queue", "")
	d, _, ok := h.loadTicket(ctx, w, r, u, p)
	if !ok {
		return
	}
	p.Data = d
	h.renderTemplate(w, http.StatusOK, "ticket", "live", p)
}

// mapData is what the map draws, also served as JSON for live updates.
type mapData struct {
	Kiosks  []mapKiosk  `json:"kiosks"`
	Tickets []mapTicket `json:"tickets"`
}

type mapKiosk struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Place    string  `json:"place"`
	Presence string  `json:"presence"`
	Label    string  `json:"label"` // presence in the page's language
	Lat      float64 `json:"lat"`
	Lon      float64 `json:"lon"`
	Flagged  bool    `json:"flagged,omitempty"`
}

type mapTicket struct {
	ID       string  `json:"id"`
	Number   string  `json:"number"`
	Priority string  `json:"priority"`
	Label    string  `json:"label"` // category and status in the page's language
	Kiosk    string  `json:"kiosk"`
	Breached bool    `json:"breached,omitempty"`
	Lat      float64 `json:"lat"`
	Lon      float64 `json:"lon"`
}

func (h *Handler) mapData(ctx context.Context, lang Lang, u *account.User) (mapData, int, error) {
	devices := h.opts.Devices.Devices(ctx)
	ts, err := h.opts.Tickets.Tickets(ctx, hub.TicketFilter{Open: true, Limit: queueLimit})
	if err != nil {
		return mapData{}, 0, err
	}
	l := newLookups(devices, h.agencies(ctx))
	d := mapData{Kiosks: []mapKiosk{}, Tickets: []mapTicket{}}
	unlocated := 0
	for _, dev := range devices {
		k := viewKiosk(lang, dev)
		if k.Lat == 0 && k.Lon == 0 {
			unlocated++
			continue
		}
		d.Kiosks = append(d.Kiosks, mapKiosk{ID: k.ID, Name: k.Name, Place: k.Place, Presence: k.Presence,
			Label: lang.T("presence." + k.Presence), Lat: k.Lat, Lon: k.Lon, Flagged: k.Flagged})
	}
	now := h.clock.Now()
	for _, t := range ts {
		if !u.CanAccessAgency(t.Agency) {
			continue
		}
		v := h.viewTicket(lang, u, t, l, now)
		site := t.Site
		if site.Lat == 0 && site.Lon == 0 {
			site = l.devices[t.DeviceID].Site
		}
		if site.Lat == 0 && site.Lon == 0 {
			continue
		}
		d.Tickets = append(d.Tickets, mapTicket{ID: t.ID, Number: t.Number, Priority: string(t.Priority),
			Label: lang.T("category."+t.Category) + " · " + lang.T("status."+string(t.Status)),
			Kiosk: v.KioskName, Breached: v.Breached, Lat: site.Lat, Lon: site.Lon})
	}
	return d, unlocated, nil
}

func (h *Handler) handleMap(w http.ResponseWriter, r *http.Request, u *account.User) {
	if !u.Can(account.PermViewDevices) {
		h.forbidden(w, r, u, "the map")
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	p := h.newPage(r, u, "map", "")
	p.Title = p.L.T("map.title")
	d, unlocated, err := h.mapData(ctx, p.L, u)
	if err != nil {
		h.renderError(w, r, u, err)
		return
	}
	b, err := json.Marshal(d)
	if err != nil {
		h.renderError(w, r, u, err)
		return
	}
	p.Data = struct {
		TileURL, TileAttribution string
		JSON                     template.JS
		Unlocated                int
	}{h.opts.TileURL, h.opts.TileAttribution, template.JS(b), unlocated}
	h.decorate(ctx, p, u, nil)
	h.render(w, http.StatusOK, "map", p)
}

func (h *Handler) handleMapData(w http.ResponseWriter, r *http.Request, u *account.User) {
	if !u.Can(account.PermViewDevices) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	d, _, err := h.mapData(ctx, requestLang(r), u)
	if err != nil {
		h.log.Error("dashboard: map data", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(d)
}

// kiosksData is the kiosks page's data.
type kiosksData struct {
	Kiosks                 []kioskView
	Total, Online, Offline int
}

func (h *Handler) kiosksData(ctx context.Context, lang Lang) *kiosksData {
	d := &kiosksData{}
	for _, dev := range h.opts.Devices.Devices(ctx) {
		k := viewKiosk(lang, dev)
		d.Kiosks = append(d.Kiosks, k)
		d.Total++
		switch k.Presence {
		case hub.PresenceOnline:
			d.Online++
		case hub.PresenceOffline:
			d.Offline++
		}
	}
	return d
}

func (h *Handler) handleKiosks(w http.ResponseWriter, r *http.Request, u *account.User) {
	if !u.Can(account.PermViewDevices) {
		h.forbidden(w, r, u, "the kiosks")
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	p := h.newPage(r, u, "kiosks", "")
	p.Title = p.L.T("kiosks.title")
	p.Data = h.kiosksData(ctx, p.L)
	h.decorate(ctx, p, u, nil)
	h.render(w, http.StatusOK, "kiosks", p)
}

func (h *Handler) handleKioskRows(w http.ResponseWriter, r *http.Request, u *account.User) {
	if !u.Can(account.PermViewDevices) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	p := h.newPage(r, u, "kiosks", "")
	p.Data = h.kiosksData(ctx, p.L)
	h.renderTemplate(w, http.StatusOK, "kiosks", "kioskrows", p)
}

func (h *Handler) handlePing(w http.ResponseWriter, r *http.Request, u *account.User) {
	if !u.Can(account.PermViewDevices) {
		h.forbidden(w, r, u, "pinging kiosks")
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	if _, err := h.opts.Devices.Ping(ctx, r.PathValue("id")); err != nil {
		h.renderError(w, r, u, err)
		return
	}
	http.Redirect(w, r, "/kiosks?ok=ping", http.StatusSeeOther)
}

// alertsData is the alerts page's data.
type alertsData struct {
	Alerts []alertView
}

func (h *Handler) alertsData(ctx context.Context, lang Lang, u *account.User) *alertsData {
	d := &alertsData{}
	if h.opts.Alerts == nil {
		return d
	}
	l := newLookups(h.opts.Devices.Devices(ctx), nil)
	for _, a := range h.opts.Alerts.Alerts(ctx, alertFilter(u)) {
		if a.Active() {
			d.Alerts = append(d.Alerts, viewAlert(lang, a, l))
		}
	}
	return d
}

func (h *Handler) handleAlerts(w http.ResponseWriter, r *http.Request, u *account.User) {
	if !u.Can(account.PermViewAlerts) {
		h.forbidden(w, r, u, "the alerts")
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	p := h.newPage(r, u, "alerts", "")
	p.Title = p.L.T("alerts.title")
	p.Data = h.alertsData(ctx, p.L, u)
	h.decorate(ctx, p, u, nil)
	h.render(w, http.StatusOK, "alerts", p)
}

func (h *Handler) handleAlertRows(w http.ResponseWriter, r *http.Request, u *account.User) {
	if !u.Can(account.PermViewAlerts) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	p := h.newPage(r, u, "alerts", "")
	p.Data = h.alertsData(ctx, p.L, u)
	h.renderTemplate(w, http.StatusOK, "alerts", "alertrows", p)
}

func (h *Handler) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	p := h.newPage(r, nil, "login", "")
	p.Title = p.L.T("login.title")
	if u := h.opts.Auth.User(r); u != nil && !u.Disabled {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next"), "/"), http.StatusSeeOther)
		return
	}
	// A form before login has no session to tie a token to; the login handler has its own
	// defences (rate limit, SameSite cookies).
	p.CSRFField, p.CSRF = h.opts.Auth.CSRF(r)
	errKey := ""
	switch r.URL.Query().Get("error") {
	case "":
	case account.LoginErrLimited:
		errKey = "login.limited"
	case account.LoginErrExpired:
		errKey = "login.expired"
	case account.LoginErrOrigin:
		errKey = "login.origin"
	default:
		errKey = "login.failed"
	}
	p.Data = struct {
		Action, Next, Error, NameField, PasswordField string
	}{h.opts.Auth.LoginPath(), localPath(r.URL.Query().Get(account.FieldNext), "/"), errKey, account.FieldName, account.FieldPassword}
	h.render(w, http.StatusOK, "login", p)
}

// handleLang sets the language cookie and goes back to the page the switch was on.
func (h *Handler) handleLang(w http.ResponseWriter, r *http.Request) {
	l, ok := ParseLang(r.URL.Query().Get("to"))
	if !ok {
		http.Error(w, "language must be id or en", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, localPath(r.URL.Query().Get("back"), "/"), http.StatusSeeOther)
}

// localPath returns p if it is a path on this site, else def: a link must not send the browser
// elsewhere ("//evil.example", "/\evil.example", "https://…").
func localPath(p, def string) string {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.ContainsAny(p, "\r\n") {
		return def
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return def
	}
	return p
}

func (h *Handler) handleNotFound(w http.ResponseWriter, r *http.Request) {
	u := h.opts.Auth.User(r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := h.newPage(r, u, "", "")
	p.Title = p.L.T("error.title")
	p.Data = struct{ Message string }{p.L.T("error.notfound")}
	h.render(w, http.StatusNotFound, "error", p)
}
