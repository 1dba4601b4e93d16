package daemon

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"
)

// adminHandler serves the loopback-only admin API. Besides binding to loopback, it refuses
// non-loopback peers, Host headers that are not loopback (DNS rebinding) and cross-origin browser
// requests, because a page open in the kiosk's browser must not be able to press a button.
func (d *Daemon) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sim/buttons/{name}/press", d.handlePress)
	mux.HandleFunc("GET /sim/leds", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.LEDs())
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.Status())
	})
	// The same paths without a method answer 405 in JSON, like every other error here.
	for path, allow := range map[string]string{
		"/sim/buttons/{name}/press": http.MethodPost,
		"/sim/leds":                 http.MethodGet,
		"/status":                   http.MethodGet,
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+allow)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	return loopbackOnly(cop.Handler(mux))
}

func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopbackHost(r.RemoteAddr, true) {
			writeError(w, http.StatusForbidden, "admin API is for loopback clients only")
			return
		}
		if !isLoopbackHost(r.Host, false) {
			writeError(w, http.StatusForbidden, "Host must be a loopback address")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopbackHost(hostport string, needPort bool) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		if needPort {
			return false
		}
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (d *Daemon) handlePress(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	b := d.buttons[name]
	if d.sim == nil {
		writeError(w, http.StatusConflict, "gpio driver is not sim: buttons can only be pressed by hand")
		return
	}
	if b == nil {
		writeError(w, http.StatusNotFound, "unknown button "+strconv.Quote(name))
		return
	}
	// Without hold_ms, hold just long enough to raise an incident.
	hold := b.cfg.Hold() + 2*b.cfg.Debounce() + 100*time.Millisecond
	if s := r.URL.Query().Get("hold_ms"); s != "" {
		ms, err := strconv.Atoi(s)
		if err != nil || ms < 1 || ms > maxHoldMS {
			writeError(w, http.StatusBadRequest, "hold_ms must be an integer from 1 to 60000")
			return
		}
		hold = time.Duration(ms) * time.Millisecond
	}
	res, err := d.SimPress(r.Context(), name, hold)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.Is(err, ErrNotStored):
		// The resident's report is not on disk: say so loudly, never pretend.
		writeJSON(w, http.StatusInternalServerError, pressError{PressResult: res, Error: err.Error()})
	case errors.Is(err, ErrNotRunning):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusServiceUnavailable, pressError{PressResult: res, Error: err.Error()})
	}
}

type pressError struct {
	PressResult
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
