// Package http is the hub's HTTP server (docs/api.md): the JSON API for everything the dashboard
// does, an Open311 GeoReport v2 endpoint for non-emergency requests, the browser's login and
// logout forms, /healthz and Prometheus /metrics, with the dashboard (hub/web) mounted at the
// root. Every request goes through hub/account's authentication; every endpoint but the public
// few is registered with the permission it needs, and an agency user's ticket requests are
// confined to their agency.
package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/enroll"
)

// Options are the services the API serves. Tickets, Devices and Stats are required; the others
// may be nil, and then their endpoints answer empty lists (alerts, agencies, deliveries) or
// unavailable (routing reload, Open311 filing). Metrics may be nil (then /metrics is 404).
type Options struct {
	Tickets  hub.TicketService
	Devices  hub.DeviceService
	Stats    hub.StatsService
	Alerts   hub.AlertService
	Routing  hub.RoutingService
	Webhooks hub.WebhookService
	// Requests files Open311 requests as tickets and names the services they may be filed
	// under; nil disables Open311.
	Requests RequestService
	// Accounts authenticates every request (sessions, API tokens) and keeps the audit log.
	// Without it every endpoint but /healthz, /metrics and Open311's service list refuses with
	// unauthorized: the API is never open.
	Accounts *account.Service
	// UI is the operators' dashboard, mounted at the root behind the same authentication; nil
	// leaves the root unserved.
	UI      http.Handler
	Metrics http.Handler
	// Enroll is device provisioning: enrollment, its tokens, revocation and the fleet view;
	// nil leaves those endpoints out and GET /api/v1/devices answers the live view alone.
	Enroll *enroll.Service
	Clock  hub.Clock    // default hub.SystemClock
	Logger *slog.Logger // default slog.Default()
}

// Server serves the API.
type Server struct {
	opts    Options
	log     *slog.Logger
	clock   hub.Clock
	mux     *http.ServeMux
	handler http.Handler
	srv     *http.Server
	ln      net.Listener
}

// maxBody bounds request bodies; the largest, an Open311 request, is a few kilobytes.
const maxBody = 64 << 10

// NewServer builds the routes.
func NewServer(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = hub.SystemClock{}
	}
	s := &Server{opts: opts, log: opts.Logger, clock: opts.Clock, mux: http.NewServeMux()}
	s.routes()
	s.handler = s.mux
	if opts.Accounts != nil {
		s.handler = opts.Accounts.Middleware(s.mux)
	}
	return s
}

// Handler returns the API's handler, authentication included, for tests and for mounting
// elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// Open listens on addr and serves in the background.
func (s *Server) Open(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Long enough for any JSON answer; the dashboard's event stream lifts it for itself
		// (http.ResponseController.SetWriteDeadline).
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	s.log.Info("HTTP API listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the bound address, with the real port when Open was given port 0.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops taking requests and waits for those in progress until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("http: shutdown: %w", err)
	}
	return nil
}

// codeMethodNotAllowed is the one error code of HTTP's own making: a known path with the wrong
// method.
const codeMethodNotAllowed = "method_not_allowed"

// ErrorStatus maps an error code to its HTTP status. It is the only place that does.
func ErrorStatus(code string) int {
	switch code {
	case codeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case hub.CodeInvalid:
		return http.StatusBadRequest
	case hub.CodeNotFound:
		return http.StatusNotFound
	case hub.CodeConflict:
		return http.StatusConflict
	case hub.CodeUnavailable:
		return http.StatusServiceUnavailable
	case hub.CodeUnauthorized:
		return http.StatusUnauthorized
	case hub.CodeForbidden:
		return http.StatusForbidden
	case hub.CodeTooMany:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	code := hub.ErrorCode(err)
	status := ErrorStatus(code)
	switch code {
	case hub.CodeInternal:
		s.log.Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case hub.CodeUnauthorized, hub.CodeForbidden:
		s.logRefusal(r, code, err)
	default:
		s.log.Debug("http request refused", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	switch code {
	case hub.CodeUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="kentongan"`)
	case hub.CodeTooMany:
		if le, ok := errors.AsType[*account.LimitError](err); ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(le.RetryAfter.Seconds()))))
		}
	}
	var body errorBody
	body.Error.Code, body.Error.Message = code, hub.ErrorMessage(err)
	s.json(w, status, body)
}

// logRefusal logs a refused credential or permission. That is what an intrusion looks like,
// so it shows at the log's default level, with who asked from where.
func (s *Server) logRefusal(r *http.Request, code string, err error) {
	user := ""
	if u := account.FromContext(r.Context()); u != nil {
		user = u.Name
	}
	s.log.Warn("http request refused", "method", r.Method, "path", r.URL.Path, "code", code, "user", user,
		"ip", account.ClientIP(r), "err", err)
}

func (s *Server) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		s.log.Debug("http response not written", "err", err)
	}
}

// handleNoRoute answers API requests no route took, in JSON like every other API error. The
// catch-all hides the mux's own 405, so it asks the mux which methods the path has.
func (s *Server) handleNoRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/api/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.error(w, r, hub.Errorf(codeMethodNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	s.error(w, r, hub.Errorf(hub.CodeNotFound, "no API endpoint %s %s", r.Method, r.URL.Path))
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	s.json(w, http.StatusOK, map[string]string{"status": "ok"})
}

// decodeJSON reads one JSON object into v, strictly: an unknown field is as likely a misspelt
// "note" as anything, and silently dropping it would lose what the operator wrote. It is
// called before anything is changed, so a bad body changes nothing. An empty body is an error
// unless optional.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return hub.Errorf(hub.CodeInvalid, "request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return hub.Errorf(hub.CodeInvalid, "request body is missing: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return hub.Errorf(hub.CodeInvalid, "request body is not valid JSON for this endpoint: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return hub.Errorf(hub.CodeInvalid, "request body has data after the JSON object")
	}
	return nil
}
