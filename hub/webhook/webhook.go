// Package webhook posts ticket events to the agencies that asked for them, and alerts to the
// supervisor.
//
// Agencies' deliveries are durable. The store's audit trail is the outbox: a Dispatcher reads
// the events past its cursor, and stores one delivery per event and interested agency in the
// same transaction that moves the cursor on. Whatever stops the hub, an event is then either
// not yet fanned out (and is, after the restart) or has its deliveries stored; each is retried
// with exponential backoff until the receiver answers 2xx, and one that keeps failing is kept,
// shown (Deliveries with Failing) and can be retried by hand.
//
// Every POST carries the JSON Payload, the header X-Kentongan-Signature: sha256=<hex of the
// HMAC-SHA256 of the body under the agency's secret>, and X-Kentongan-Delivery, which is the
// same on every attempt, so that the receiver can drop a repeat. Deliveries to one agency are
// attempted in order, but a retried one may arrive after later ones: a receiver orders events by
// event.id (or the ticket's version).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/route"
)

// Headers of every POST.
const (
	HeaderSignature = "X-Kentongan-Signature" // "sha256=" + hex HMAC-SHA256 of the body
	HeaderDelivery  = "X-Kentongan-Delivery"  // the delivery's key, the same on every attempt
	HeaderEvent     = "X-Kentongan-Event"     // the event's kind
)

// Sign returns the signature header value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is the signature of body under secret, in constant time.
func Verify(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(Sign(secret, body)))
}

// Payload is the JSON body posted for a ticket event.
type Payload struct {
	// Delivery is "<agency>:<event id>": unique, and the same on every attempt.
	Delivery string     `json:"delivery"`
	Agency   string     `json:"agency"`
	Event    hub.Event  `json:"event"`
	Ticket   hub.Ticket `json:"ticket"` // as it was when the event was fanned out
	SentBy   string     `json:"sent_by"`
}

// Targets are the agencies' webhooks in force; *route.Router is one.
type Targets interface {
	Table() *route.Table
}

// Options configure a Dispatcher.
type Options struct {
	Store   hub.Store // required: events, tickets and the deliveries
	Targets Targets   // required
	// Feed, if set, wakes the dispatcher as soon as a ticket changes; without it, it looks
	// every PollInterval.
	Feed   hub.EventFeed
	Client *http.Client // default: one with Timeout
	Clock  hub.Clock    // default hub.SystemClock
	Logger *slog.Logger // default slog.Default()
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer

	Timeout      time.Duration // per attempt; default 10s
	RetryInitial time.Duration // wait after the first failure; default 10s, doubling
	RetryMax     time.Duration // longest wait; default 30m
	MaxAttempts  int           // then the delivery is failed; default 60 (about a day at the cap)
	PollInterval time.Duration // default 2s
	// Hub names the sender in payloads (Payload.SentBy); default "kentongan-hub".
	Hub string
}

func (o *Options) fill() {
	if o.Clock == nil {
		o.Clock = hub.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.RetryInitial <= 0 {
		o.RetryInitial = 10 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 30 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 60
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.Hub == "" {
		o.Hub = "kentongan-hub"
	}
}

// Dispatcher fans ticket events out into deliveries and posts them. It implements
// hub.WebhookService.
type Dispatcher struct {
	opts  Options
	store hub.Store
	log   *slog.Logger
	clock hub.Clock

	kick chan struct{}
	// seen is how far fan-out has read without storing: events no agency wants move the cursor
	// in memory, and the stored cursor catches up at most every cursorEvery, so that a burst of
	// tickets for agencies without webhooks costs no writes. Only the loop touches it.
	seen      int64
	seenSaved time.Time
	cancel    context.CancelFunc
	done      chan struct{}
	start     sync.Once
	stop      sync.Once

	attempts *prometheus.CounterVec
}

var _ hub.WebhookService = (*Dispatcher)(nil)

// New builds a Dispatcher; Start runs it.
func New(opts Options) (*Dispatcher, error) {
	opts.fill()
	if opts.Store == nil || opts.Targets == nil {
		return nil, errors.New("webhook: Store and Targets are required")
	}
	d := &Dispatcher{
		opts: opts, store: opts.Store, log: opts.Logger, clock: opts.Clock,
		kick: make(chan struct{}, 1), done: make(chan struct{}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_webhook_attempts_total",
			Help: "Attempts to post a ticket event to an agency's webhook, by result: delivered, retry (failed, tried again later) or failed (given up).",
		}, []string{"result"}),
	}
	for _, r := range []string{"delivered", "retry", "failed"} {
		d.attempts.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		cs := []prometheus.Collector{d.attempts, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kentongan_hub_webhook_failing",
			Help: "Deliveries failed, or pending after a failed attempt (at most 1000 counted).",
		}, d.failingCount)}
		for _, c := range cs {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("webhook: register metrics: %w", err)
			}
		}
	}
	return d, nil
}

func (d *Dispatcher) failingCount() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ds, err := d.store.Deliveries(ctx, hub.DeliveryFilter{Failing: true, Limit: hub.MaxLimit})
	if err != nil {
		return 0
	}
	return float64(len(ds))
}

// Start runs the dispatcher in the background until Close.
func (d *Dispatcher) Start() {
	d.start.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		d.cancel = cancel
		if d.opts.Feed != nil {
			ch := d.opts.Feed.Subscribe(ctx)
			go d.follow(ctx, ch)
		}
		go d.run(ctx)
		d.log.Info("webhooks running", "agencies", agencies(d.opts.Targets.Table()))
	})
}

// follow kicks the loop on every ticket change. A closed feed (the hub stopping, or this
// reader falling behind) leaves the loop on its poll interval.
func (d *Dispatcher) follow(ctx context.Context, ch <-chan hub.FeedEvent) {
	for e := range ch {
		if e.Kind == hub.FeedTicketCreated || e.Kind == hub.FeedTicketChanged {
			d.Kick()
		}
	}
	if ctx.Err() == nil {
		d.log.Debug("event feed closed; webhooks now poll")
	}
}

// Kick makes the dispatcher look for work now.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Close stops the dispatcher, waiting for attempts in flight; pending deliveries stay stored.
func (d *Dispatcher) Close() error {
	d.stop.Do(func() {
		if d.cancel == nil {
			close(d.done)
			return
		}
		d.cancel()
		<-d.done
	})
	return nil
}

// Run runs the dispatcher until ctx ends, as Start does until Close, for a hub replica that
// dispatches only while it leads (hub/leader): it may be called again after it returns, on
// another leadership term. Use either Start or Run, not both.
func (d *Dispatcher) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if d.opts.Feed != nil {
		go d.follow(ctx, d.opts.Feed.Subscribe(ctx))
	}
	d.loop(ctx)
}

func (d *Dispatcher) run(ctx context.Context) {
	defer close(d.done)
	d.loop(ctx)
}

func (d *Dispatcher) loop(ctx context.Context) {
	for {
		next := d.RunOnce(ctx)
		wait := d.opts.PollInterval
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(d.clock.Now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// RunOnce fans out new events and posts every delivery that is due, then returns when the next
// pending delivery is due (zero if none). The loop calls it; tests may too.
func (d *Dispatcher) RunOnce(ctx context.Context) time.Time {
	for ctx.Err() == nil {
		more, err := d.fanOut(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("webhook fan-out failed; trying again shortly", "err", err)
			}
			break
		}
		if !more {
			break
		}
	}
	d.sendDue(ctx)
	next, ok, err := d.store.NextDeliveryAt(ctx)
	if err != nil || !ok {
		return time.Time{}
	}
	return next
}

// fanBatch is how many events one fan-out transaction takes.
const fanBatch = 200

// fanOut stores the deliveries of the next batch of events; more says there may be others.
func (d *Dispatcher) fanOut(ctx context.Context) (more bool, err error) {
	cursor, err := d.store.DeliveryCursor(ctx)
	if err != nil {
		return false, err
	}
	from := max(cursor, d.seen)
	evs, err := d.store.EventsAfter(ctx, from, fanBatch)
	if err != nil {
		return false, err
	}
	if len(evs) == 0 {
		if d.seen > cursor && d.clock.Now().Sub(d.seenSaved) >= cursorEvery {
			return false, d.saveCursor(ctx, d.seen, nil)
		}
		return false, nil
	}
	table := d.opts.Targets.Table()
	tickets := map[string]*hub.Ticket{}
	var ds []hub.NewDelivery
	for _, e := range evs {
		w, ok := table.Webhook(e.Agency)
		if !ok || !w.Wants(e.Kind) {
			continue
		}
		t, ok := tickets[e.TicketID]
		if !ok {
			if t, err = d.store.Ticket(ctx, e.TicketID); err != nil {
				return false, fmt.Errorf("ticket of event %d: %w", e.ID, err)
			}
			tickets[e.TicketID] = t
		}
		body, err := json.Marshal(Payload{Delivery: e.Agency + ":" + strconv.FormatInt(e.ID, 10), Agency: e.Agency,
			Event: e, Ticket: *t, SentBy: d.opts.Hub})
		if err != nil {
			return false, fmt.Errorf("encode event %d: %w", e.ID, err)
		}
		ds = append(ds, hub.NewDelivery{Agency: e.Agency, EventID: e.ID, TicketID: e.TicketID, Kind: string(e.Kind),
			Payload: body, NextAt: d.clock.Now()})
	}
	last := evs[len(evs)-1].ID
	more = len(evs) == fanBatch
	if len(ds) == 0 && d.clock.Now().Sub(d.seenSaved) < cursorEvery {
		// Nothing to store: a crash now means reading these events again, which costs nothing.
		d.seen = last
		return more, nil
	}
	if err := d.saveCursor(ctx, last, ds); err != nil {
		return false, err
	}
	if len(ds) > 0 {
		d.log.Debug("webhook deliveries queued", "deliveries", len(ds), "through_event", last)
	}
	return more, nil
}

// cursorEvery is how often the stored cursor catches up with events no agency wanted.
const cursorEvery = 30 * time.Second

func (d *Dispatcher) saveCursor(ctx context.Context, to int64, ds []hub.NewDelivery) error {
	if err := d.store.EnqueueDeliveries(ctx, to, ds); err != nil {
		return err
	}
	d.seen, d.seenSaved = to, d.clock.Now()
	return nil
}

// sendDue posts what is due: agencies in parallel, each agency's in order, so that one slow
// receiver does not hold up the others.
func (d *Dispatcher) sendDue(ctx context.Context) {
	due, err := d.store.DueDeliveries(ctx, d.clock.Now(), hub.MaxLimit)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("cannot read due webhook deliveries", "err", err)
		}
		return
	}
	byAgency := map[string][]hub.Delivery{}
	for _, dl := range due {
		byAgency[dl.Agency] = append(byAgency[dl.Agency], dl)
	}
	var wg sync.WaitGroup
	for _, ds := range byAgency {
		wg.Go(func() {
			for _, dl := range ds {
				if ctx.Err() != nil {
					return
				}
				if !d.attempt(ctx, dl) {
					// The receiver is down: the agency's other deliveries would fail alike.
					return
				}
			}
		})
	}
	wg.Wait()
}

// attempt posts one delivery and records the outcome; ok is false when it failed.
func (d *Dispatcher) attempt(ctx context.Context, dl hub.Delivery) (ok bool) {
	w, has := d.opts.Targets.Table().Webhook(dl.Agency)
	now := d.clock.Now()
	a := hub.DeliveryAttempt{At: now}
	if !has {
		a.Error, a.GiveUp = "the agency has no webhook in the routing configuration any more", true
	} else {
		status, err := d.post(ctx, w, dl)
		if ctx.Err() != nil {
			return false // stopping: the attempt does not count
		}
		a.Status = status
		if err == nil {
			a.Delivered = true
		} else {
			a.Error = err.Error()
		}
	}
	if !a.Delivered && !a.GiveUp {
		if dl.Attempts+1 >= d.opts.MaxAttempts {
			a.GiveUp = true
		} else {
			a.NextAt = now.Add(d.backoff(dl.Attempts + 1))
		}
	}
	rec, err := d.store.RecordAttempt(context.WithoutCancel(ctx), dl.ID, a)
	if err != nil {
		d.log.Error("webhook attempt not recorded; it may be repeated", "delivery", dl.ID, "err", err)
		return a.Delivered
	}
	switch {
	case a.Delivered:
		d.attempts.WithLabelValues("delivered").Inc()
		d.log.Info("webhook delivered", "agency", dl.Agency, "delivery", dl.ID, "event", dl.EventID, "attempts", rec.Attempts)
	case a.GiveUp:
		d.attempts.WithLabelValues("failed").Inc()
		d.log.Error("webhook delivery failed for good; retry it from the dashboard", "agency", dl.Agency, "delivery", dl.ID,
			"attempts", rec.Attempts, "err", a.Error)
	default:
		d.attempts.WithLabelValues("retry").Inc()
		d.log.Warn("webhook attempt failed; retrying later", "agency", dl.Agency, "delivery", dl.ID, "attempt", rec.Attempts,
			"next", a.NextAt, "err", a.Error)
	}
	return a.Delivered
}

// maxErrorBody is how much of a refusing receiver's answer is kept with the delivery.
const maxErrorBody = 200

// post sends one delivery; an error says why it was not taken.
func (d *Dispatcher) post(ctx context.Context, w route.Webhook, dl hub.Delivery) (status int, err error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(dl.Payload))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.opts.Hub)
	req.Header.Set(HeaderSignature, Sign([]byte(w.Secret), dl.Payload))
	req.Header.Set(HeaderDelivery, dl.Agency+":"+strconv.FormatInt(dl.EventID, 10))
	req.Header.Set(HeaderEvent, dl.Kind)
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return resp.StatusCode, nil
}

// backoff is the wait after the n-th failed attempt: RetryInitial doubling up to RetryMax.
// Agencies are few, so there is no herd for jitter to spread.
func (d *Dispatcher) backoff(n int) time.Duration {
	w := d.opts.RetryInitial
	for i := 1; i < n && w < d.opts.RetryMax; i++ {
		w *= 2
	}
	return min(w, d.opts.RetryMax)
}

// Deliveries implements hub.WebhookService.
func (d *Dispatcher) Deliveries(ctx context.Context, f hub.DeliveryFilter) ([]hub.Delivery, error) {
	return d.store.Deliveries(ctx, f)
}

// RetryDelivery implements hub.WebhookService.
func (d *Dispatcher) RetryDelivery(ctx context.Context, id int64) (*hub.Delivery, error) {
	dl, err := d.store.RetryDelivery(ctx, id, d.clock.Now())
	if err != nil {
		return nil, err
	}
	d.log.Info("webhook delivery retried by hand", "delivery", id, "agency", dl.Agency)
	d.Kick()
	return dl, nil
}

// agencies lists the agencies with a webhook, for logs.
func agencies(t *route.Table) []string {
	var out []string
	for _, a := range t.Agencies() {
		if a.Webhook {
			out = append(out, a.ID)
		}
	}
	slices.Sort(out)
	return out
}
