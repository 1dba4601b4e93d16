// Package web is the 112 operators' dashboard in the browser: the live ticket queue, a ticket
// with its history and the actions on it, the map of kiosks and open tickets, the kiosks' health
// and the alerts. Agency staff get the same pages cut to their agency's tickets.
//
// Pages are rendered on the server with html/template, so that every text comes from one
// catalogue (Bahasa Indonesia by default, English on request) and every page works with a plain
// reload. A small script adds what a reload cannot: it counts the deadline timers down, and it
// listens to server-sent events (/events) to fetch the parts of the page that changed, so that a
// new ticket appears without anyone pressing a key. Everything the browser loads, Leaflet
// included, is embedded in the binary: the 112 centre must not depend on a CDN.
//
// Actions are HTML forms posted with the session's CSRF token; they call the hub's
// TicketService, which tells the kiosk (its LED) and the reporter (SMS) as the JSON API does.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kentongan/kentongan/hub"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultTileURL is OpenStreetMap's standard tile server. A centre that expects heavy use should
// run its own or use a provider, as OpenStreetMap's tile usage policy asks.
const DefaultTileURL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"

// DefaultTileAttribution is the credit OpenStreetMap's licence requires under its tiles.
const DefaultTileAttribution = "© OpenStreetMap contributors"

// Options are what the dashboard shows and how. Tickets, Devices and Auth are required.
type Options struct {
	Tickets hub.TicketService
	Devices hub.DeviceService
	// Alerts, Routing and Feed may be nil: then the alerts page is empty, dispatch offers no
	// agencies, and pages are not updated live (a reload still shows everything).
	Alerts  hub.AlertService
	Routing hub.RoutingService
	Feed    hub.EventFeed
	Auth    Auth

	// TileURL is the map's tile server, with {z}, {x} and {y} (and optionally {s}); default
	// DefaultTileURL. The map still shows every marker when no tile loads.
	TileURL         string
	TileAttribution string

	Clock  hub.Clock    // default hub.SystemClock
	Logger *slog.Logger // default slog.Default()
	// KeepAlive is how often an idle event stream gets a comment, so that proxies and the
	// browser keep it open; default 20 s.
	KeepAlive time.Duration
}

// Handler serves the dashboard. Mount it at the root of the hub's HTTP server; it does not
// answer /api/, /healthz or /metrics, which belong to the JSON API.
type Handler struct {
	opts    Options
	log     *slog.Logger
	clock   hub.Clock
	mux     *http.ServeMux
	pages   map[string]*template.Template
	static  http.Handler
	version map[string]string // static file → content hash, for cache-busting URLs
	csp     string

	stopMu   sync.Mutex
	stopping map[*http.Server]chan struct{} // see serverStopping
}

// Errors of New.
var (
	// ErrMissingService is returned when a required service is nil.
	ErrMissingService = errors.New("web: Tickets, Devices and Auth are required")
	// ErrTileURL is returned for a tile URL that is not an http(s) URL template.
	ErrTileURL = errors.New("web: tile URL must be an http or https URL with {z}, {x} and {y}")
)

// New builds the dashboard's handler.
func New(opts Options) (*Handler, error) {
	if opts.Tickets == nil || opts.Devices == nil || opts.Auth == nil {
		return nil, ErrMissingService
	}
	if opts.TileURL == "" {
		opts.TileURL = DefaultTileURL
		if opts.TileAttribution == "" {
			opts.TileAttribution = DefaultTileAttribution
		}
	}
	tileOrigin, err := checkTileURL(opts.TileURL)
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = hub.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 20 * time.Second
	}
	h := &Handler{opts: opts, log: opts.Logger, clock: opts.Clock, mux: http.NewServeMux(),
		stopping: map[*http.Server]chan struct{}{}}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	if h.version, err = hashFiles(sub); err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	h.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	if h.pages, err = parsePages(h.funcs()); err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	// Tiles are the only thing loaded from elsewhere; Leaflet styles its elements from script,
	// which style-src does not restrict, but its CSS needs data: images.
	h.csp = "default-src 'self'; img-src 'self' data: " + tileOrigin + "; style-src 'self'; script-src 'self'; " +
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	m := h.mux
	m.Handle("GET /static/", h.staticHandler())
	m.HandleFunc("GET /lang", h.handleLang)
	m.HandleFunc("GET /login", h.handleLoginPage)
	m.HandleFunc("GET /{$}", h.page(h.handleQueue))
	m.HandleFunc("GET /queue/rows", h.page(h.handleQueueRows))
	m.HandleFunc("GET /tickets/{id}", h.page(h.handleTicket))
	m.HandleFunc("GET /tickets/{id}/live", h.page(h.handleTicketLive))
	m.HandleFunc("POST /tickets/{id}/{action}", h.page(h.handleAction))
	m.HandleFunc("GET /map", h.page(h.handleMap))
	m.HandleFunc("GET /map/data", h.page(h.handleMapData))
	m.HandleFunc("GET /kiosks", h.page(h.handleKiosks))
	m.HandleFunc("GET /kiosks/rows", h.page(h.handleKioskRows))
	m.HandleFunc("POST /kiosks/{id}/ping", h.page(h.handlePing))
	m.HandleFunc("GET /alerts", h.page(h.handleAlerts))
	m.HandleFunc("GET /alerts/rows", h.page(h.handleAlertRows))
	m.HandleFunc("GET /events", h.page(h.handleEvents))
	m.HandleFunc("/", h.handleNotFound)
}

// ServeHTTP serves the dashboard.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// checkTileURL checks a tile URL template and returns its origin for the CSP.
func checkTileURL(s string) (string, error) {
	probe := strings.NewReplacer("{z}", "0", "{x}", "0", "{y}", "0", "{s}", "a", "{r}", "").Replace(s)
	u, err := url.Parse(probe)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		!strings.Contains(s, "{z}") || !strings.Contains(s, "{x}") || !strings.Contains(s, "{y}") {
		return "", fmt.Errorf("%w: %q", ErrTileURL, s)
	}
	host := u.Host
	if strings.HasPrefix(strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://"), "{s}.") {
		// Leaflet spreads tiles over subdomains a, b, c: allow them all.
		_, parent, _ := strings.Cut(host, ".")
		host = "*." + parent
	}
	return u.Scheme + "://" + host, nil
}

// requestContext bounds the work of one page: a slow store must not pile up requests.
func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}
