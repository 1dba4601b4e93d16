// Package http is the hub's JSON API for operators and tools (docs/api.md), plus /healthz and
// Prometheus /metrics.
package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
)

// Options are the services the API serves. Metrics may be nil (then /metrics is 404).
type Options struct {
	Tickets hub.TicketService
	Devices hub.DeviceService
	Stats   hub.StatsService
	Metrics http.Handler
	Logger  *slog.Logger // default slog.Default()
}

// Server serves the API.
type Server struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	srv  *http.Server
	ln   net.Listener
}

// DefaultActor is who acknowledged a ticket when the request does not say.
const DefaultActor = "operator"

// maxBody bounds request bodies; an acknowledgement is a few hundred bytes.
const maxBody = 64 << 10

// NewServer builds the routes.
func NewServer(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("GET /api/v1/tickets", s.handleTickets)
	s.mux.HandleFunc("GET /api/v1/tickets/{id}", s.handleTicket)
	s.mux.HandleFunc("POST /api/v1/tickets/{id}/ack", s.handleAck)
	s.mux.HandleFunc("GET /api/v1/devices", s.handleDevices)
	s.mux.HandleFunc("POST /api/v1/devices/{id}/ping", s.handlePing)
	s.mux.HandleFunc("GET /api/v1/status", s.handleStatus)
	s.mux.HandleFunc("/api/", s.handleNoRoute)
	if opts.Metrics != nil {
		s.mux.Handle("GET /metrics", opts.Metrics)
	}
	return s
}

// Handler returns the API's handler, for tests and for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.mux }

// Open listens on addr and serves in the background.
func (s *Server) Open(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
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
	if code == hub.CodeInternal {
		s.log.Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Debug("http request refused", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	var body errorBody
	body.Error.Code, body.Error.Message = code, hub.ErrorMessage(err)
	s.json(w, status, body)
}

func (s *Server) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
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
	for _, m := range []string{http.MethodGet, http.MethodPost} {
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

func (s *Server) handleTickets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := hub.TicketFilter{Status: hub.Status(q.Get("status")), DeviceID: q.Get("device_id")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > hub.MaxLimit {
			s.error(w, r, hub.Errorf(hub.CodeInvalid, "limit must be a number from 1 to %d", hub.MaxLimit))
			return
		}
		f.Limit = n
	}
	tickets, err := s.opts.Tickets.Tickets(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, tickets)
}

// ticketWithEvents is a ticket with its audit trail, as GET /api/v1/tickets/{id} returns it.
type ticketWithEvents struct {
	*hub.Ticket
	Events []hub.Event `json:"events"`
}

func (s *Server) handleTicket(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := s.opts.Tickets.Ticket(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	events, err := s.opts.Tickets.Events(r.Context(), t.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, ticketWithEvents{Ticket: t, Events: events})
}

// ackRequest is the optional body of POST /api/v1/tickets/{id}/ack.
type ackRequest struct {
	By   string `json:"by"`
	Note string `json:"note"`
}

func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	var req ackRequest
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if req.By == "" {
		req.By = DefaultActor
	}
	id := r.PathValue("id")
	if _, ok := hub.ParseNumber(id); ok {
		t, err := s.opts.Tickets.Ticket(r.Context(), id)
		if err != nil {
			s.error(w, r, err)
			return
		}
		id = t.ID
	}
	t, err := s.opts.Tickets.Acknowledge(r.Context(), id, req.By, req.Note)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusOK, t)
}

// decodeOptionalJSON reads one JSON object into v, strictly: an unknown field is as likely a
// misspelt "note" as anything, and silently dropping it would lose what the operator wrote. An
// empty body leaves v as it is.
func decodeOptionalJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return hub.Errorf(hub.CodeInvalid, "request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
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

func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request) {
	s.json(w, http.StatusOK, s.opts.Devices.Devices(r.Context()))
}

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	id, err := s.opts.Devices.Ping(r.Context(), r.PathValue("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.json(w, http.StatusAccepted, map[string]string{"device_id": r.PathValue("id"), "command_id": id})
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	s.json(w, http.StatusOK, s.opts.Stats.Stats(r.Context()))
}
