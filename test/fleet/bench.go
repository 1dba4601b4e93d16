package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// ScaleOptions sets up Scale.
type ScaleOptions struct {
	Hub       string // the kentongan-hub binary
	Dir       string // a scratch directory; the hub's data and log go under it
	Kiosks    int
	Heartbeat time.Duration // default 60s
	Window    time.Duration // CPU and heartbeats are measured over it; default 60s
	// Settle bounds the wait for the hub's RSS to settle after the kiosks connect; default 60s.
	Settle             time.Duration
	ConnectConcurrency int
	Logger             *slog.Logger
}

// ScaleResult is Scale's figure; the JSON names are read by the benchmark runner.
type ScaleResult struct {
	Kiosks            int     `json:"kiosks"`
	HubRSSBaseKiB     int64   `json:"hub_rss_base_kib"`
	HubRSSKiB         int64   `json:"hub_rss_kib"`
	RSSPerKioskKiB    float64 `json:"rss_per_kiosk_kib"`
	Heartbeats        int64   `json:"heartbeats"` // handled by the hub during the window
	CPUSec            float64 `json:"cpu_sec"`
	CPUPerHeartbeatUS float64 `json:"cpu_per_heartbeat_us"`
	// DBWritesDuringHeartbeats counts the seconds of the window in which the hub's database
	// file or its WAL changed: 0 means heartbeats wrote nothing.
	DBWritesDuringHeartbeats int     `json:"db_writes_during_heartbeats"`
	WindowSec                float64 `json:"window_sec"`
}

// Scale starts the hub binary, connects opts.Kiosks kiosks with staggered heartbeats, and
// measures the hub's memory per connected kiosk and its CPU time per heartbeat.
func Scale(ctx context.Context, opts ScaleOptions) (res ScaleResult, err error) {
	if opts.Kiosks < 1 {
		return res, fmt.Errorf("%w: %d kiosks", ErrConfig, opts.Kiosks)
	}
	opts.Heartbeat = cmp0(opts.Heartbeat, 60*time.Second)
	opts.Window = cmp0(opts.Window, 60*time.Second)
	opts.Settle = cmp0(opts.Settle, 60*time.Second)
	log := logger(opts.Logger)
	res.Kiosks = opts.Kiosks
	h, err := StartHub(ctx, opts.Hub, opts.Dir, Devices(DefaultDevicePrefix, opts.Kiosks, opts.Heartbeat, 1))
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, h.Stop()) }()
	if res.HubRSSBaseKiB, err = settledRSS(ctx, h, 3*time.Second, opts.Settle); err != nil {
		return res, err
	}
	log.Info("hub started", "rss_kib", res.HubRSSBaseKiB, "broker", h.BrokerURL)
	f, err := New(Config{Broker: h.BrokerURL, Kiosks: opts.Kiosks, Heartbeat: opts.Heartbeat,
		ConnectConcurrency: opts.ConnectConcurrency, SpreadSources: true, Logger: log})
	if err != nil {
		return res, err
	}
	defer f.Close()
	start := time.Now()
	if err := f.Connect(ctx); err != nil {
		return res, fmt.Errorf("scale: %w", err)
	}
	log.Info("kiosks connected", "kiosks", opts.Kiosks, "took", time.Since(start).Round(time.Millisecond))
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go f.RunHeartbeats(hbCtx)
	if res.HubRSSKiB, err = settledRSS(ctx, h, 5*time.Second, opts.Settle); err != nil {
		return res, err
	}
	res.RSSPerKioskKiB = round2(float64(res.HubRSSKiB-res.HubRSSBaseKiB) / float64(opts.Kiosks))
	log.Info("hub memory settled", "rss_kib", res.HubRSSKiB, "per_kiosk_kib", res.RSSPerKioskKiB)

	hb0, err := h.Metric(ctx, "kentongan_hub_device_messages_total", `kind="heartbeat"`)
	if err != nil {
		return res, err
	}
	cpu0, err := h.CPUTime()
	if err != nil {
		return res, err
	}
	db, err := h.DBState()
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(t0) < opts.Window {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
		now, err := h.DBState()
		if err != nil {
			return res, err
		}
		if now != db {
			res.DBWritesDuringHeartbeats++
			db = now
		}
	}
	cpu1, err := h.CPUTime()
	if err != nil {
		return res, err
	}
	window := time.Since(t0)
	hb1, err := h.Metric(ctx, "kentongan_hub_device_messages_total", `kind="heartbeat"`)
	if err != nil {
		return res, err
	}
	res.WindowSec = round2(window.Seconds())
	res.Heartbeats = int64(hb1 - hb0)
	res.CPUSec = round2((cpu1 - cpu0).Seconds())
	if res.Heartbeats > 0 {
		res.CPUPerHeartbeatUS = round2(float64((cpu1 - cpu0).Microseconds()) / float64(res.Heartbeats))
	}
	if s := f.Stats(); s.Connected < opts.Kiosks {
		return res, fmt.Errorf("scale: only %d of %d kiosks connected at the end (%d disconnects)", s.Connected, opts.Kiosks, s.Disconnects)
	}
	return res, nil
}

// settledRSS waits minWait (or limit, if shorter), then until the RSS has changed by less than
// 1 % over three seconds, or until limit has passed, and returns it.
func settledRSS(ctx context.Context, h *HubProcess, minWait, limit time.Duration) (int64, error) {
	deadline := time.Now().Add(limit)
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(min(minWait, limit)):
	}
	var last []int64
	for {
		rss, err := h.RSSKiB()
		if err != nil {
			return 0, err
		}
		last = append(last, rss)
		if time.Now().After(deadline) {
			return rss, nil
		}
		if n := len(last); n >= 4 {
			lo, hi := last[n-4], last[n-4]
			for _, v := range last[n-4:] {
				lo, hi = min(lo, v), max(hi, v)
			}
			if float64(hi-lo) < 0.01*float64(hi) {
				return rss, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// DrainOptions sets up Drain.
type DrainOptions struct {
	Hub    string
	Dir    string
	Kiosks int
	Queued int // incidents each kiosk holds when it connects
	// MaxConns bounds the simulator's open connections (see Config.MaxConns); kiosks leave once
	// drained. Default 18,000, under the 20,000 open files a process may hold here.
	MaxConns           int
	ConnectConcurrency int
	SMSShare           float64
	RetryInterval      time.Duration // default kentongand's 15s
	Timeout            time.Duration // default 10m
	Logger             *slog.Logger
}

// DrainResult is Drain's figure; the JSON names are read by the benchmark runner.
type DrainResult struct {
	Kiosks     int     `json:"kiosks"`
	QueuedEach int     `json:"queued_each"`
	Incidents  int     `json:"incidents"`
	Tickets    int     `json:"tickets"` // in the hub's database
	Lost       int     `json:"lost"`    // incidents without a ticket in the database
	Duplicated int     `json:"duplicated"`
	DrainSec   float64 `json:"drain_sec"` // first connect to last "received" ack
	AcksPerSec float64 `json:"acks_per_sec"`
	Resent     int     `json:"resent"`
	P50Sec     float64 `json:"p50_sec"` // queueing→received; includes the wait to connect
	MaxSec     float64 `json:"max_sec"`
}

// Drain starts the hub binary and lets a fleet whose every kiosk holds opts.Queued incidents
// (as after an outage) connect at once; it measures the time until the last is received and
// checks the hub's database for exactly one ticket per incident.
func Drain(ctx context.Context, opts DrainOptions) (res DrainResult, err error) {
	if opts.Kiosks < 1 || opts.Queued < 1 {
		return res, fmt.Errorf("%w: %d kiosks with %d queued each", ErrConfig, opts.Kiosks, opts.Queued)
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 18_000
	}
	opts.Timeout = cmp0(opts.Timeout, 10*time.Minute)
	log := logger(opts.Logger)
	res.Kiosks, res.QueuedEach = opts.Kiosks, opts.Queued
	h, err := StartHub(ctx, opts.Hub, opts.Dir, Devices(DefaultDevicePrefix, opts.Kiosks, 0, 1))
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, h.Stop()) }()
	f, err := New(Config{Broker: h.BrokerURL, Kiosks: opts.Kiosks, RetryInterval: opts.RetryInterval,
		MaxConns: opts.MaxConns, DisconnectDrained: true, ConnectConcurrency: opts.ConnectConcurrency,
		SpreadSources: true, Logger: log})
	if err != nil {
		return res, err
	}
	defer f.Close()
	for i := range opts.Kiosks {
		src := Button
		if float64(i%100) < opts.SMSShare*100 {
			src = SMS
		}
		if err := f.Queue(i, opts.Queued, src); err != nil {
			return res, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	go f.RunRetries(ctx)
	// The figures are filled in even when the drain fails: a partial drain is a finding too.
	waitErr := f.Connect(ctx)
	if waitErr == nil {
		log.Info("every kiosk has connected; waiting for the last acks")
		waitErr = f.WaitAcked(ctx)
	}
	s := f.Stats()
	res.Incidents, res.Duplicated, res.Resent = s.Incidents, s.Duplicated, s.Resent
	if !s.LastAck.IsZero() {
		d := s.LastAck.Sub(s.FirstConnect)
		res.DrainSec = round2(d.Seconds())
		res.AcksPerSec = math.Round(float64(s.Acked) / d.Seconds())
	}
	res.P50Sec, res.MaxSec = round2(s.P50.Seconds()), round2(s.Max.Seconds())
	tickets, err := h.TicketIncidents(context.WithoutCancel(ctx))
	if err != nil {
		return res, err
	}
	for _, id := range f.IncidentIDs() {
		switch n := tickets[id]; {
		case n == 0:
			res.Lost++
		case n > 1:
			res.Duplicated += n - 1
		}
		res.Tickets += tickets[id]
	}
	if waitErr != nil {
		return res, fmt.Errorf("drain: %d of %d incidents not received: %w", s.Unacked, s.Incidents, waitErr)
	}
	return res, nil
}

func cmp0(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
