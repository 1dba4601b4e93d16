package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
)

// NotifierOptions configure a Notifier.
type NotifierOptions struct {
	URL    string // required
	Secret string // required: signs each body like an agency's webhook
	Client *http.Client
	Logger *slog.Logger
	// Registerer receives the metric; nil leaves it unregistered.
	Registerer prometheus.Registerer
	Timeout    time.Duration // per attempt; default 10s
	// Attempts per alert, a second apart and doubling; default 5.
	Attempts int
	// Retry is the first wait between attempts; default 1s.
	Retry time.Duration
}

// Notifier posts alerts to the supervisor's URL. Unlike agencies' deliveries it keeps no
// record: an alert is also on the dashboard, in the log and in the metrics, and one lost to a
// hub restart is raised again there (not notified again) by the supervision that finds it.
type Notifier struct {
	opts  NotifierOptions
	log   *slog.Logger
	queue chan hub.Alert
	sent  *prometheus.CounterVec

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// notifyQueue bounds alerts waiting to be posted; beyond it the oldest news is least useful
// and a new alert is dropped (and counted) rather than blocking the hub.
const notifyQueue = 256

// AlertPayload is the JSON body posted for an alert.
type AlertPayload struct {
	Alert  hub.Alert `json:"alert"`
	SentBy string    `json:"sent_by"`
}

// NewNotifier starts a Notifier; Close stops it.
func NewNotifier(opts NotifierOptions) (*Notifier, error) {
	if opts.URL == "" || opts.Secret == "" {
		return nil, fmt.Errorf("webhook: a notifier needs a URL and a secret")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Timeout}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Retry <= 0 {
		opts.Retry = time.Second
	}
	n := &Notifier{
		opts: opts, log: opts.Logger, queue: make(chan hub.Alert, notifyQueue),
		stop: make(chan struct{}), done: make(chan struct{}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kentongan_hub_supervisor_notifications_total",
			Help: "Alerts posted to the supervisor's URL, by result: sent, failed (after every attempt) or dropped (queue full).",
		}, []string{"result"}),
	}
	for _, r := range []string{"sent", "failed", "dropped"} {
		n.sent.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(n.sent); err != nil {
			return nil, fmt.Errorf("webhook: register metrics: %w", err)
		}
	}
	go n.run()
	return n, nil
}

// Notify queues an alert without waiting.
func (n *Notifier) Notify(a hub.Alert) {
	select {
	case n.queue <- a:
	default:
		n.sent.WithLabelValues("dropped").Inc()
		n.log.Error("supervisor notification dropped: too many waiting", "alert", a.ID)
	}
}

// Close stops posting; alerts still queued are not sent.
func (n *Notifier) Close() error {
	n.once.Do(func() { close(n.stop) })
	<-n.done
	return nil
}

func (n *Notifier) run() {
	defer close(n.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-n.stop
		cancel()
	}()
	for {
		select {
		case <-n.stop:
			return
		case a := <-n.queue:
			n.send(ctx, a)
		}
	}
}

func (n *Notifier) send(ctx context.Context, a hub.Alert) {
	body, err := json.Marshal(AlertPayload{Alert: a, SentBy: "kentongan-hub"})
	if err != nil {
		n.log.Error("supervisor notification not encoded", "alert", a.ID, "err", err)
		return
	}
	wait := n.opts.Retry
	for i := 1; ; i++ {
		err = n.post(ctx, body)
		if err == nil {
			n.sent.WithLabelValues("sent").Inc()
			return
		}
		if i >= n.opts.Attempts || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait *= 2
	}
	n.sent.WithLabelValues("failed").Inc()
	n.log.Error("supervisor not notified of an alert", "alert", a.ID, "err", err)
}

func (n *Notifier) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.opts.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderSignature, Sign([]byte(n.opts.Secret), body))
	req.Header.Set(HeaderEvent, "alert")
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("supervisor URL answered %s", resp.Status)
	}
	return nil
}
