package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
)

// Options configure a Router.
type Options struct {
	// Path is the routing file; "" uses the built-in default and never reloads.
	Path string
	// Getenv looks up webhook secrets named by secret_env; default os.Getenv.
	Getenv func(string) string
	Clock  hub.Clock    // default hub.SystemClock
	Logger *slog.Logger // default slog.Default()
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// OnReload, if set, is called after every reload attempt with its error (nil when the new
	// file is in force), so that the hub can raise or clear an alert.
	OnReload func(err error)
}

// Router holds the routing table in force. It is safe for concurrent use.
type Router struct {
	opts  Options
	log   *slog.Logger
	clock hub.Clock
	table atomic.Pointer[Table]

	mu      sync.Mutex // serialises reloads
	status  hub.RoutingStatus
	modTime time.Time
	size    int64

	reloads *prometheus.CounterVec
	valid   prometheus.Gauge
}

var _ hub.RoutingService = (*Router)(nil)

// New loads the routing file (or the default). A file that is missing or invalid is an error:
// the hub should not start routing by rules nobody wrote.
func New(opts Options) (*Router, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Clock == nil {
		opts.Clock = hub.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Router{
		opts: opts, log: opts.Logger, clock: opts.Clock,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_routing_reloads_total",
			Help: "Attempts to load the routing file, by result: ok, unchanged, invalid (refused, previous kept) or error (unreadable).",
		}, []string{"result"}),
		valid: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kentongan_hub_routing_config_valid",
			Help: "1 when the last attempt to load the routing file succeeded; 0 while a refused file waits to be fixed.",
		}),
	}
	for _, l := range []string{"ok", "unchanged", "invalid", "error"} {
		r.reloads.WithLabelValues(l)
	}
	if opts.Path == "" {
		t, err := Parse(defaultYAML, opts.Getenv)
		if err != nil {
			return nil, fmt.Errorf("built-in routing: %w", err)
		}
		r.install(t, time.Time{}, 0)
	} else {
		data, mod, size, err := r.read()
		if err != nil {
			return nil, err
		}
		t, err := Parse(data, opts.Getenv)
		if err != nil {
			return nil, fmt.Errorf("routing %s: %w", opts.Path, err)
		}
		r.install(t, mod, size)
	}
	r.valid.Set(1)
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{r.reloads, r.valid} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("routing: register metrics: %w", err)
			}
		}
	}
	r.log.Info("routing loaded", "path", r.status.Path, "agencies", r.status.Agencies, "checksum", r.status.Checksum)
	return r, nil
}

func (r *Router) read() (data []byte, mod time.Time, size int64, err error) {
	fi, err := os.Stat(r.opts.Path)
	if err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("routing: %w", err)
	}
	data, err = os.ReadFile(r.opts.Path)
	if err != nil {
		return nil, time.Time{}, 0, fmt.Errorf("routing: %w", err)
	}
	return data, fi.ModTime(), fi.Size(), nil
}

func (r *Router) install(t *Table, mod time.Time, size int64) {
	r.table.Store(t)
	r.modTime, r.size = mod, size
	r.status = hub.RoutingStatus{
		Path:     r.opts.Path,
		LoadedAt: r.clock.Now(),
		Checksum: t.Checksum(),
		Agencies: len(t.agencies),
	}
}

// Table returns the table in force.
func (r *Router) Table() *Table { return r.table.Load() }

// Route routes by the table in force.
func (r *Router) Route(in Input) Decision { return r.Table().Route(in) }

// Reload reads the file again. An invalid file is refused with a hub.CodeInvalid *Error that
// wraps the *Error naming the line; the table in force stays. With no file it does nothing.
func (r *Router) Reload(ctx context.Context) error {
	if r.opts.Path == "" {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	err := r.reloadLocked()
	r.mu.Unlock()
	if r.opts.OnReload != nil {
		r.opts.OnReload(err)
	}
	return err
}

func (r *Router) reloadLocked() error {
	data, mod, size, err := r.read()
	if err != nil {
		r.refused("error", 0, err)
		return hub.Errorf(hub.CodeUnavailable, "routing file cannot be read, the previous routing stays in force: %v", err)
	}
	t, err := Parse(data, r.opts.Getenv)
	if err != nil {
		line := 0
		if e, ok := errors.AsType[*Error](err); ok {
			line = e.Line
		}
		r.refused("invalid", line, err)
		// The message carries the line: it is what the dashboard shows the editor of the file.
		return hub.Errorf(hub.CodeInvalid, "routing file refused, the previous routing stays in force: %v", err)
	}
	r.valid.Set(1)
	if t.Checksum() == r.status.Checksum {
		r.modTime, r.size = mod, size
		r.status.LastError, r.status.LastErrorLine, r.status.LastErrorAt = "", 0, nil
		r.reloads.WithLabelValues("unchanged").Inc()
		return nil
	}
	r.install(t, mod, size)
	r.reloads.WithLabelValues("ok").Inc()
	r.log.Info("routing reloaded", "path", r.opts.Path, "agencies", r.status.Agencies, "checksum", r.status.Checksum)
	return nil
}

func (r *Router) refused(result string, line int, err error) {
	now := r.clock.Now()
	r.status.LastError, r.status.LastErrorLine, r.status.LastErrorAt = err.Error(), line, &now
	r.reloads.WithLabelValues(result).Inc()
	r.valid.Set(0)
	r.log.Error("routing file refused; the previous routing stays in force", "path", r.opts.Path, "line", line, "err", err)
}

// Watch reloads the file whenever its modification time or size changes, checking every
// interval, until ctx ends. Editors that write a file in several steps may be caught halfway;
// the half file is refused and the finished one, which changes the time again, is loaded.
func (r *Router) Watch(ctx context.Context, interval time.Duration) {
	if r.opts.Path == "" || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(r.opts.Path)
		if err != nil {
			continue // a file being replaced is briefly absent; a reload would only log noise
		}
		r.mu.Lock()
		changed := !fi.ModTime().Equal(r.modTime) || fi.Size() != r.size
		if changed {
			// Remember what was seen, so that a refused file is not refused again every tick.
			r.modTime, r.size = fi.ModTime(), fi.Size()
		}
		r.mu.Unlock()
		if changed {
			_ = r.Reload(ctx)
		}
	}
}

// Agencies implements hub.RoutingService.
func (r *Router) Agencies(context.Context) []hub.Agency { return r.Table().Agencies() }

// RoutingStatus implements hub.RoutingService.
func (r *Router) RoutingStatus(context.Context) hub.RoutingStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	if s.LastErrorAt != nil {
		at := *s.LastErrorAt
		s.LastErrorAt = &at
	}
	return s
}

// ReloadRouting implements hub.RoutingService.
func (r *Router) ReloadRouting(ctx context.Context) error { return r.Reload(ctx) }
