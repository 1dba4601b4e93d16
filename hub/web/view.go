package web

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// wib is the time zone every time on the dashboard is shown in: the 112 centre's, whatever the
// server's. Asia/Jakarta has had no daylight saving since 1964, so a fixed zone needs no tzdata.
var wib = time.FixedZone("WIB", 7*60*60)

// Actions an operator can take on a ticket; each is the last part of its form's path.
const (
	actAck        = "ack"
	actDispatch   = "dispatch"
	actResolve    = "resolve"
	actClose      = "close"
	actCancel     = "cancel"
	actMerge      = "merge"
	actFalseAlarm = "false-alarm"
)

// ticketView is a ticket as the pages show it: the hub's fields plus what the templates would
// otherwise compute (deadline, breach, place, the actions this user may take).
type ticketView struct {
	*hub.Ticket
	KioskName         string
	Place             string
	HasLocation       bool
	AgencyName        string
	DueKind           string // "ack", "resolve" or "" when no deadline runs
	Due               *time.Time
	Breached          bool
	Confirmation      string // "", "pending", "yes", "no", "disputed"
	ConfirmedBy       string
	ConfirmedAt       time.Time
	DuplicateOfNumber string
	KioskFlagged      bool
	Actions           []string
}

// lookups are the names a page needs to show tickets: devices and agencies by ID.
type lookups struct {
	devices  map[string]hub.DeviceStatus
	agencies []hub.Agency
	byID     map[string]hub.Agency
	numbers  map[string]string // ticket ID → number, for duplicate_of
}

func newLookups(devices []hub.DeviceStatus, agencies []hub.Agency) *lookups {
	l := &lookups{devices: map[string]hub.DeviceStatus{}, agencies: agencies, byID: map[string]hub.Agency{}, numbers: map[string]string{}}
	for _, d := range devices {
		l.devices[d.ID] = d
	}
	for _, a := range agencies {
		l.byID[a.ID] = a
	}
	return l
}

// agencyName is an agency's short name for tables; the ID when the routing no longer has it.
func (l *lookups) agencyName(lang Lang, id string) string {
	switch id {
	case "":
		return ""
	case hub.AgencyTriage:
		return lang.T("agency.triage")
	}
	if a, ok := l.byID[id]; ok {
		if a.Short != "" {
			return a.Short
		}
		return a.Name
	}
	return id
}

func (h *Handler) viewTicket(lang Lang, u *account.User, t *hub.Ticket, l *lookups, now time.Time) *ticketView {
	v := &ticketView{Ticket: t, KioskName: t.DeviceID, AgencyName: l.agencyName(lang, t.Agency)}
	site := t.Site
	if d, ok := l.devices[t.DeviceID]; ok {
		if d.Name != "" {
			v.KioskName = d.Name
		}
		if site == (hub.Site{}) {
			site = d.Site
		}
		v.KioskFlagged = d.State.FalseAlarmFlagged
	}
	v.Place = placeOf(lang, site)
	v.HasLocation = site.Lat != 0 || site.Lon != 0
	switch {
	case t.Status == hub.StatusNew && t.AckDue != nil:
		v.DueKind, v.Due = "ack", t.AckDue
		v.Breached = t.AckBreachedAt != nil || now.After(*t.AckDue)
	case t.Status.Open() && t.ResolveDue != nil:
		v.DueKind, v.Due = "resolve", t.ResolveDue
		v.Breached = t.ResolveBreachedAt != nil || now.After(*t.ResolveDue)
	}
	if t.Status.Open() && t.AckBreachedAt != nil && t.Status == hub.StatusNew {
		v.Breached = true
	}
	v.Confirmation = string(t.Confirmation.State)
	v.ConfirmedBy = t.Confirmation.By
	if t.Confirmation.At != nil {
		v.ConfirmedAt = *t.Confirmation.At
	}
	if t.DuplicateOf != "" {
		v.DuplicateOfNumber = t.DuplicateOf
		if n, ok := l.numbers[t.DuplicateOf]; ok {
			v.DuplicateOfNumber = n
		}
	}
	v.Actions = actionsFor(u, t)
	return v
}

// actionsFor lists the actions u may take on t in its present status. The service checks
// again; this only keeps buttons that cannot work off the page.
func actionsFor(u *account.User, t *hub.Ticket) []string {
	if u == nil || !u.CanAccessAgency(t.Agency) {
		return nil
	}
	handle, resolve := u.Can(account.PermHandleTickets), u.Can(account.PermResolveTickets)
	var out []string
	add := func(ok bool, a ...string) {
		if ok {
			out = append(out, a...)
		}
	}
	switch t.Status {
	case hub.StatusNew:
		add(handle, actAck, actMerge, actCancel)
	case hub.StatusAcknowledged:
		add(handle, actDispatch)
		add(resolve, actResolve)
		add(handle, actMerge, actCancel)
	case hub.StatusDispatched:
		add(resolve, actResolve)
		add(handle, actDispatch, actCancel)
	case hub.StatusResolved, hub.StatusCancelled, hub.StatusDuplicate:
		add(handle, actClose)
	}
	add(handle && !t.FalseAlarm && t.Status != hub.StatusDuplicate, actFalseAlarm)
	return out
}

// placeOf names a site as operators say it: "RT 01/RW 03, Ciakar, Panongan".
func placeOf(lang Lang, s hub.Site) string {
	var parts []string
	switch {
	case s.RT != "" && s.RW != "":
		parts = append(parts, fmt.Sprintf("RT %s/RW %s", s.RT, s.RW))
	case s.RW != "":
		parts = append(parts, "RW "+s.RW)
	}
	for _, p := range []string{s.Kelurahan, s.Kecamatan} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// sortQueue puts what needs an operator first: open tickets before the rest, emergencies
// before other tickets, then the nearest deadline (a breached one is the nearest), then the
// oldest. Tickets no longer open follow, newest first.
func sortQueue(ts []*ticketView) {
	slices.SortStableFunc(ts, func(a, b *ticketView) int {
		ao, bo := a.Status.Open(), b.Status.Open()
		if ao != bo {
			if ao {
				return -1
			}
			return 1
		}
		if !ao {
			return b.CreatedAt.Compare(a.CreatedAt)
		}
		ae, be := a.Priority == hub.PriorityEmergency, b.Priority == hub.PriorityEmergency
		if ae != be {
			if ae {
				return -1
			}
			return 1
		}
		switch {
		case a.Due != nil && b.Due != nil:
			if c := a.Due.Compare(*b.Due); c != 0 {
				return c
			}
		case a.Due != nil:
			return -1
		case b.Due != nil:
			return 1
		}
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Number, b.Number))
	})
}

// kioskView is a kiosk row of the kiosks page and a marker of the map.
type kioskView struct {
	ID, Name, Place string
	Presence        string
	PresenceAt      *time.Time
	LastHeartbeat   *time.Time
	Signal          string
	Modem           string
	LED             string
	Fault           string
	QueueDepth      int
	FalseAlarms     string
	Flagged         bool
	Firmware        string
	Lat, Lon        float64
}

func viewKiosk(lang Lang, d hub.DeviceStatus) kioskView {
	st := d.State
	k := kioskView{
		ID: d.ID, Name: cmp.Or(d.Name, d.ID), Place: placeOf(lang, d.Site),
		Presence: cmp.Or(st.Presence, hub.PresenceUnknown), PresenceAt: st.PresenceAt,
		LastHeartbeat: st.LastHeartbeat, LED: st.LEDState, Fault: st.Fault, QueueDepth: st.QueueDepth,
		Flagged: st.FalseAlarmFlagged, Firmware: st.Firmware, Lat: d.Site.Lat, Lon: d.Site.Lon,
		Signal: "—", Modem: "—",
	}
	if st.Silent {
		k.Presence = hub.PresenceOffline
	}
	if m := st.Modem; m != nil {
		k.Modem = cmp.Or(m.State, "—")
		if m.SignalDBm != 0 {
			k.Signal = fmt.Sprintf("%d dBm", m.SignalDBm)
		}
		if m.Operator != "" {
			k.Modem += " · " + m.Operator
		}
	}
	if st.WindowTickets > 0 {
		k.FalseAlarms = fmt.Sprintf("%d/%d", st.WindowFalseAlarms, st.WindowTickets)
	}
	return k
}

// alertView is an alert as the alerts page words it.
type alertView struct {
	Kind         string
	TicketID     string
	TicketNumber string
	DeviceID     string
	DeviceName   string
	Since        time.Time
	Message      string
}

func viewAlert(lang Lang, a hub.Alert, l *lookups) alertView {
	v := alertView{Kind: string(a.Kind), TicketID: a.TicketID, TicketNumber: cmp.Or(a.TicketNumber, a.TicketID),
		DeviceID: a.DeviceID, DeviceName: a.DeviceID, Since: a.RaisedAt, Message: a.Message}
	if d, ok := l.devices[a.DeviceID]; ok && d.Name != "" {
		v.DeviceName = d.Name
	}
	key := "alertmsg." + string(a.Kind)
	if a.Kind == hub.AlertDeadlineBreach {
		key += "." + string(a.Breach)
	}
	if Has(key) {
		switch a.Kind {
		case hub.AlertDeadlineBreach:
			v.Message = lang.T(key, v.TicketNumber)
		case hub.AlertKioskOffline, hub.AlertFalseAlarmRate:
			v.Message = lang.T(key, v.DeviceName)
		default:
			v.Message = lang.T(key)
		}
	}
	return v
}
