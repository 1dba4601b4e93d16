package http

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/mqtt"
)

// Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2) lets civic-report tools read and
// file non-emergency requests. Kentongan serves its JSON format only. Requests are tickets of
// priority normal; emergencies are never filed this way: the tool is told to call 112.

// SourceOpen311 is the source of tickets filed through Open311.
const SourceOpen311 = "open311"

// Category is a routing category, which Open311 calls a service.
type Category struct {
	Code     string       // "water"
	Agency   string       // the agency's ID its tickets go to
	Priority hub.Priority // emergency categories are not offered
}

// RequestService is what Open311 needs from the rest of the hub.
type RequestService interface {
	// Categories lists the routing configuration's categories.
	Categories(ctx context.Context) []Category
	// FileRequest routes a request as ingest routes a kiosk's report (agency, unit, deadlines),
	// stores it as a ticket and announces it to the dashboard.
	FileRequest(ctx context.Context, nt hub.NewTicket) (*hub.Ticket, error)
}

// serviceNames names the categories of the default routing (hub/route) for residents, in
// Bahasa Indonesia; a category not listed is named by its code.
var serviceNames = map[string][2]string{
	"electricity":    {"Listrik", "Gangguan listrik: padam, kabel putus, tiang miring"},
	"water":          {"Air bersih (PDAM)", "Air PDAM mati, keruh, atau pipa bocor"},
	"road":           {"Jalan dan saluran air", "Jalan rusak, lubang, saluran air tersumbat"},
	"waste":          {"Sampah dan lingkungan", "Sampah menumpuk, pembuangan liar, pencemaran"},
	"administration": {"Administrasi kependudukan", "KTP, KK, akta: pertanyaan dan kendala"},
	"social":         {"Sosial", "Warga terlantar, bantuan sosial"},
	"public_order":   {"Ketertiban umum", "Gangguan ketertiban, pedagang liar, bangunan liar"},
	"other":          {"Lainnya", "Laporan lain yang bukan keadaan darurat"},
}

// emergencyNotice is the answer to an emergency filed through Open311.
const emergencyNotice = "Ini keadaan darurat: telepon 112 sekarang. Laporan darurat tidak diterima lewat layanan ini. " +
	"(This is an emergency: call 112 now. Emergencies are not taken through this service.)"

// wib is the zone Open311 times are given in: Western Indonesia Time, which residents read.
var wib = time.FixedZone("WIB", 7*3600)

// open311Error is GeoReport's error shape: a list of code and description.
type open311Error struct {
	Code        int    `json:"code"`
	Description string `json:"description"`
}

func (s *Server) open311Error(w http.ResponseWriter, r *http.Request, err error) {
	code := hub.ErrorCode(err)
	status := ErrorStatus(code)
	switch code {
	case hub.CodeInternal:
		s.log.Error("open311 request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case hub.CodeUnauthorized, hub.CodeForbidden:
		s.logRefusal(r, code, err)
	}
	if code == hub.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kentongan"`)
	}
	s.json(w, status, []open311Error{{Code: status, Description: hub.ErrorMessage(err)}})
}

func (s *Server) handleOpen311NoRoute(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, ".xml") {
		s.open311Error(w, r, hub.Errorf(hub.CodeInvalid, "only the JSON format is served: use .json"))
		return
	}
	s.open311Error(w, r, hub.Errorf(hub.CodeNotFound, "no Open311 endpoint %s %s", r.Method, r.URL.Path))
}

// service is one entry of services.json.
type service struct {
	Code        string `json:"service_code"`
	Name        string `json:"service_name"`
	Description string `json:"description"`
	Metadata    bool   `json:"metadata"`
	Type        string `json:"type"`
	Keywords    string `json:"keywords"`
	Group       string `json:"group"`
	Agency      string `json:"-"`
	Emergency   bool   `json:"-"`
}

// handleServices lists the non-emergency categories. It is public, as in most Open311 servers:
// it says what may be asked, not what anyone asked.
func (s *Server) handleServices(w http.ResponseWriter, r *http.Request) {
	if s.opts.Requests == nil {
		s.open311Error(w, r, hub.Errorf(hub.CodeUnavailable, "Open311 is not enabled on this hub"))
		return
	}
	s.json(w, http.StatusOK, s.services(r.Context(), false))
}

func (s *Server) services(ctx context.Context, withEmergencies bool) []service {
	names := s.agencyNames(ctx)
	out := []service{}
	for _, c := range s.opts.Requests.Categories(ctx) {
		emergency := c.Priority == hub.PriorityEmergency
		if emergency && !withEmergencies {
			continue
		}
		sv := service{Code: c.Code, Name: c.Code, Metadata: false, Type: "realtime", Group: names[c.Agency], Agency: c.Agency, Emergency: emergency}
		if n, ok := serviceNames[c.Code]; ok {
			sv.Name, sv.Description = n[0], n[1]
		}
		if sv.Group == "" {
			sv.Group = c.Agency
		}
		sv.Keywords = strings.ReplaceAll(c.Code, "_", " ")
		out = append(out, sv)
	}
	return out
}

func (s *Server) agencyNames(ctx context.Context) map[string]string {
	names := map[string]string{hub.AgencyTriage: "Call Center 112 Kabupaten Tangerang"}
	if s.opts.Routing != nil {
		for _, a := range s.opts.Routing.Agencies(ctx) {
			names[a.ID] = a.Name
		}
	}
	return names
}

// request is one service request as GeoReport shows it.
type request struct {
	ID                string   `json:"service_request_id"`
	Status            string   `json:"status"` // open or closed
	StatusNotes       string   `json:"status_notes"`
	ServiceName       string   `json:"service_name"`
	ServiceCode       string   `json:"service_code"`
	Description       string   `json:"description"`
	AgencyResponsible string   `json:"agency_responsible"`
	ServiceNotice     string   `json:"service_notice"`
	Requested         string   `json:"requested_datetime"`
	Updated           string   `json:"updated_datetime"`
	Expected          string   `json:"expected_datetime,omitempty"`
	Address           string   `json:"address"`
	AddressID         string   `json:"address_id"`
	Zipcode           string   `json:"zipcode"`
	Lat               *float64 `json:"lat"`
	Long              *float64 `json:"long"`
	MediaURL          string   `json:"media_url"`
}

func open311Time(t time.Time) string { return t.In(wib).Format(time.RFC3339) }

func (s *Server) toRequest(t *hub.Ticket, names map[string]string, services map[string]service) request {
	rq := request{
		ID:                t.Number,
		Status:            "closed",
		StatusNotes:       string(t.Status),
		ServiceName:       t.Category,
		ServiceCode:       t.Category,
		Description:       t.Text,
		AgencyResponsible: names[t.Agency],
		Requested:         open311Time(t.CreatedAt),
		Updated:           open311Time(t.CreatedAt),
		Address:           address(t.Site),
	}
	if t.Status.Open() {
		rq.Status = "open"
	}
	if sv, ok := services[t.Category]; ok {
		rq.ServiceName = sv.Name
	}
	if rq.AgencyResponsible == "" {
		rq.AgencyResponsible = t.Agency
	}
	if !t.UpdatedAt.IsZero() {
		rq.Updated = open311Time(t.UpdatedAt)
	}
	if t.ResolveDue != nil {
		rq.Expected = open311Time(*t.ResolveDue)
	}
	if t.Site.Lat != 0 || t.Site.Lon != 0 {
		lat, lon := t.Site.Lat, t.Site.Lon
		rq.Lat, rq.Long = &lat, &lon
	}
	if t.FalseAlarm {
		rq.StatusNotes = "closed: not a genuine request"
	}
	if t.Source == SourceOpen311 {
		desc, addr := splitText(t.Text)
		rq.Description = desc
		if addr != "" {
			rq.Address = addr
		}
	}
	return rq
}

// address words a site the way an Indonesian address reads: RT/RW, kelurahan, kecamatan.
func address(s hub.Site) string {
	var parts []string
	if s.RT != "" || s.RW != "" {
		parts = append(parts, strings.TrimSpace(fmt.Sprintf("RT %s/RW %s", s.RT, s.RW)))
	}
	if s.Kelurahan != "" {
		parts = append(parts, s.Kelurahan)
	}
	if s.Kecamatan != "" {
		parts = append(parts, "Kec. "+s.Kecamatan)
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ") + ", Kabupaten Tangerang"
}

// open311User authenticates an Open311 call: an api_key parameter (GeoReport's way) or an
// "Authorization: Bearer" token, either of a user allowed to file requests. Reading requests
// needs it as well, unlike in many Open311 servers: reports come from residents and may name
// them.
func (s *Server) open311User(r *http.Request, apiKey string) (*account.User, error) {
	if s.opts.Accounts == nil {
		return nil, hub.Errorf(hub.CodeUnauthorized, "this hub has no accounts configured")
	}
	if apiKey == "" {
		u, err := s.opts.Accounts.Require(r, account.PermFileRequests)
		if hub.ErrorCode(err) == hub.CodeUnauthorized && account.AuthError(r.Context()) == nil {
			return nil, hub.Errorf(hub.CodeUnauthorized, "api_key is required: an API token of the hub")
		}
		return u, err
	}
	u, _, err := s.opts.Accounts.TokenUser(r.Context(), apiKey)
	if err != nil {
		return nil, hub.Errorf(hub.CodeUnauthorized, "api_key is unknown, revoked or expired")
	}
	if !u.Can(account.PermFileRequests) {
		return nil, s.opts.Accounts.Forbidden(r.Context(), account.Actor{User: u, From: account.ClientIP(r)}, "use Open311", r.URL.Path)
	}
	return u, nil
}

// maxRequestIDs bounds service_request_id lists.
const maxRequestIDs = 50

// handleRequests lists requests: non-emergency, non-test tickets, newest first, by default
// those of the last 90 days (GeoReport's default), at most 1000.
func (s *Server) handleRequests(w http.ResponseWriter, r *http.Request) {
	if s.opts.Requests == nil {
		s.open311Error(w, r, hub.Errorf(hub.CodeUnavailable, "Open311 is not enabled on this hub"))
		return
	}
	q := r.URL.Query()
	if _, err := s.open311User(r, q.Get("api_key")); err != nil {
		s.open311Error(w, r, err)
		return
	}
	reqs, err := s.listRequests(r.Context(), q)
	if err != nil {
		s.open311Error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, reqs)
}

func (s *Server) listRequests(ctx context.Context, q url.Values) ([]request, error) {
	for k := range q {
		switch k {
		case "api_key", "jurisdiction_id", "service_request_id", "service_code", "start_date", "end_date", "status":
		default:
			return nil, hub.Errorf(hub.CodeInvalid, "unknown parameter %q", k)
		}
	}
	now := s.clock.Now()
	start, end := now.AddDate(0, 0, -90), now
	var err error
	if v := q.Get("start_date"); v != "" {
		if start, err = time.Parse(time.RFC3339, v); err != nil {
			return nil, hub.Errorf(hub.CodeInvalid, "start_date must be a W3C date-time, e.g. 2026-11-01T00:00:00+07:00")
		}
	}
	if v := q.Get("end_date"); v != "" {
		if end, err = time.Parse(time.RFC3339, v); err != nil {
			return nil, hub.Errorf(hub.CodeInvalid, "end_date must be a W3C date-time, e.g. 2026-11-30T23:59:59+07:00")
		}
	}
	wantStatus := map[string]bool{}
	for st := range strings.SplitSeq(q.Get("status"), ",") {
		switch st = strings.TrimSpace(st); st {
		case "":
		case "open", "closed":
			wantStatus[st] = true
		default:
			return nil, hub.Errorf(hub.CodeInvalid, "status %q: must be open or closed", st)
		}
	}
	names, services := s.agencyNames(ctx), s.serviceIndex(ctx)

	var tickets []*hub.Ticket
	if ids := q.Get("service_request_id"); ids != "" {
		// Explicit IDs ignore the other filters, as GeoReport says.
		list := strings.Split(ids, ",")
		if len(list) > maxRequestIDs {
			return nil, hub.Errorf(hub.CodeInvalid, "at most %d service_request_id at once", maxRequestIDs)
		}
		for _, id := range list {
			t, err := s.opts.Tickets.Ticket(ctx, strings.TrimSpace(id))
			if hub.ErrorCode(err) == hub.CodeNotFound {
				continue
			}
			if err != nil {
				return nil, err
			}
			if isRequest(t) {
				tickets = append(tickets, t)
			}
		}
	} else {
		f := hub.TicketFilter{Priority: hub.PriorityNormal, Category: q.Get("service_code"), Limit: hub.MaxLimit}
		if wantStatus["open"] && !wantStatus["closed"] {
			f.Open = true
		}
		all, err := s.opts.Tickets.Tickets(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, t := range all {
			if !isRequest(t) || t.CreatedAt.Before(start) || t.CreatedAt.After(end) {
				continue
			}
			if len(wantStatus) == 1 && wantStatus["closed"] && t.Status.Open() {
				continue
			}
			tickets = append(tickets, t)
		}
	}
	out := make([]request, 0, len(tickets))
	for _, t := range tickets {
		out = append(out, s.toRequest(t, names, services))
	}
	return out, nil
}

// isRequest reports whether a ticket is one Open311 shows: a real non-emergency.
func isRequest(t *hub.Ticket) bool { return t.Priority == hub.PriorityNormal && !t.Test }

func (s *Server) serviceIndex(ctx context.Context) map[string]service {
	idx := map[string]service{}
	for _, sv := range s.services(ctx, true) {
		idx[sv.Code] = sv
	}
	return idx
}

// handleRequest answers GET /open311/v2/requests/{id}.json: a list of one request.
func (s *Server) handleRequest(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	if !ok {
		s.handleOpen311NoRoute(w, r)
		return
	}
	if s.opts.Requests == nil {
		s.open311Error(w, r, hub.Errorf(hub.CodeUnavailable, "Open311 is not enabled on this hub"))
		return
	}
	if _, err := s.open311User(r, r.URL.Query().Get("api_key")); err != nil {
		s.open311Error(w, r, err)
		return
	}
	t, err := s.opts.Tickets.Ticket(r.Context(), id)
	if err == nil && !isRequest(t) {
		err = hub.Errorf(hub.CodeNotFound, "service request %q not found", id)
	}
	if err != nil {
		s.open311Error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, []request{s.toRequest(t, s.agencyNames(r.Context()), s.serviceIndex(r.Context()))})
}

// Limits on what an Open311 request may carry.
const (
	maxDescription = 4000
	maxField       = 256
)

// open311Fields are the POST parameters GeoReport defines; anything else is refused, so that a
// tool that misspells "description" learns it at once.
var open311Fields = []string{"api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id",
	"email", "device_id", "account_id", "first_name", "last_name", "phone", "description", "media_url"}

// Lines a filed request's text gets after its description.
const (
	lineAddress = "Alamat: "
	lineName    = "Pelapor: "
	lineEmail   = "Email: "
)

// splitText takes a filed request's text apart: the description, and the address given. The
// reporter's name and email stay with the operators: Open311 readers see neither.
func splitText(text string) (desc, addr string) {
	lines := strings.Split(text, "\n")
	keep := lines[:0]
	for i, l := range lines {
		switch {
		case i > 0 && strings.HasPrefix(l, lineAddress):
			addr = strings.TrimPrefix(l, lineAddress)
		case i > 0 && (strings.HasPrefix(l, lineName) || strings.HasPrefix(l, lineEmail)):
		default:
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n"), addr
}

// filed is the answer to a POST.
type filed struct {
	ID            string  `json:"service_request_id"`
	ServiceNotice string  `json:"service_notice"`
	AccountID     *string `json:"account_id"`
}

// handleFileRequest files a non-emergency request as a ticket of source open311.
func (s *Server) handleFileRequest(w http.ResponseWriter, r *http.Request) {
	if s.opts.Requests == nil {
		s.open311Error(w, r, hub.Errorf(hub.CodeUnavailable, "Open311 is not enabled on this hub"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseMultipartForm(maxBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		s.open311Error(w, r, hub.Errorf(hub.CodeInvalid, "request body: %v", err))
		return
	}
	form := r.PostForm
	key := form.Get("api_key")
	if key == "" {
		key = r.URL.Query().Get("api_key") // where some clients put it, even for a POST
	}
	u, err := s.open311User(r, key)
	if err != nil {
		s.open311Error(w, r, err)
		return
	}
	nt, err := s.newRequest(r.Context(), form)
	if err != nil {
		s.open311Error(w, r, err)
		return
	}
	t, err := s.opts.Requests.FileRequest(r.Context(), nt)
	if err != nil {
		s.open311Error(w, r, err)
		return
	}
	s.log.Info("open311 request filed", "ticket", t.Number, "service_code", t.Category, "agency", t.Agency, "by", u.Name)
	notice := "Laporan diterima: nomor " + t.Number + ". Dilayani pada jam kerja, Senin–Jumat 08.00–16.00 WIB."
	s.json(w, http.StatusCreated, []filed{{ID: t.Number, ServiceNotice: notice}})
}

// newRequest checks a POST's parameters and makes the ticket request.
func (s *Server) newRequest(ctx context.Context, form url.Values) (hub.NewTicket, error) {
	for k, vs := range form {
		if !slices.Contains(open311Fields, k) && !strings.HasPrefix(k, "attribute[") {
			return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "unknown parameter %q", k)
		}
		if len(vs) > 1 {
			return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "parameter %q is given %d times", k, len(vs))
		}
		if k != "description" && len(vs[0]) > maxField {
			return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "parameter %q is longer than %d bytes", k, maxField)
		}
	}
	code := strings.TrimSpace(form.Get("service_code"))
	if code == "" {
		return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "service_code is required; see services.json")
	}
	sv, ok := s.serviceIndex(ctx)[code]
	if !ok {
		return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "service_code %q is not a service of this hub; see services.json", code)
	}
	if sv.Emergency {
		return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "%s", emergencyNotice)
	}
	desc := strings.TrimSpace(form.Get("description"))
	switch {
	case desc == "":
		return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "description is required: what is the problem?")
	case len(desc) > maxDescription:
		return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "description is longer than %d bytes", maxDescription)
	}
	var site hub.Site
	latS, lonS, addr := form.Get("lat"), form.Get("long"), strings.TrimSpace(form.Get("address_string"))
	if (latS == "") != (lonS == "") {
		return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "lat and long go together")
	}
	if latS != "" {
		lat, err1 := strconv.ParseFloat(latS, 64)
		lon, err2 := strconv.ParseFloat(lonS, 64)
		// The comparisons are written so that NaN, which compares false, fails them.
		if err1 != nil || err2 != nil || !(lat >= -90 && lat <= 90) || !(lon >= -180 && lon <= 180) {
			return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "lat must be a number in -90..90 and long in -180..180")
		}
		site.Lat, site.Lon = lat, lon
	} else if addr == "" && form.Get("address_id") == "" {
		return hub.NewTicket{}, hub.Errorf(hub.CodeInvalid, "a location is required: lat and long, address_string or address_id")
	}
	// The operator reads one text; the address and the person go on lines of their own, which
	// toRequest takes apart again.
	text := desc
	if addr != "" {
		text += "\n" + lineAddress + addr
	}
	if name := strings.TrimSpace(form.Get("first_name") + " " + form.Get("last_name")); name != "" {
		text += "\n" + lineName + name
	}
	if email := strings.TrimSpace(form.Get("email")); email != "" {
		text += "\n" + lineEmail + email
	}
	id, err := mqtt.NewIncidentID()
	if err != nil {
		return hub.NewTicket{}, fmt.Errorf("open311: new request id: %w", err)
	}
	return hub.NewTicket{
		IncidentID: id,
		Source:     SourceOpen311,
		Category:   code,
		Priority:   hub.PriorityNormal,
		Text:       text,
		Reporter:   strings.TrimSpace(form.Get("phone")),
		OccurredAt: s.clock.Now().UTC(),
		Agency:     sv.Agency,
		Site:       site,
	}, nil
}
