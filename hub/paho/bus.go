// Package paho is the hub.Bus for an external MQTT broker (kentongan-hub --broker URL), on
// github.com/eclipse/paho.mqtt.golang speaking MQTT 3.1.1.
//
// Choices, each so that a QoS 1 incident is never lost between broker and hub:
//   - A persistent session (clean session off, fixed client ID): the broker keeps the hub's
//     subscriptions and queues incidents while the hub is away.
//   - Routes are registered before connecting, so that incidents the broker replays from the
//     session the moment the hub connects find their handler.
//   - Messages are handled concurrently (order does not matter: each incident stands alone) and
//     paho sends the PUBACK only when the handler returns, i.e. once ingest has queued the
//     incident. A full queue therefore holds back PUBACKs, and the broker's in-flight window
//     holds back further deliveries: back-pressure, not loss.
//   - Replicas (docs/scale-out.md): with SharedGroup set, the filters in SharedFilters are
//     subscribed as $share/<group>/<filter>, so that the broker hands each message to one
//     replica of the group. MQTT 3.1.1 has no shared subscriptions, but Mosquitto 2, EMQX and
//     VerneMQ accept them from 3.1.1 clients. paho's router strips the $share/<group>/ prefix
//     when it matches (router.go, routeSplit), and routes are registered here on the plain
//     filter anyway, so that a message is routed the same whichever way it was subscribed.
//     Replicas use a clean session (CleanSession): a replica that dies must not keep a
//     persistent session that the broker goes on queueing its share of incidents into; what
//     was in flight to it is re-sent by the kiosks, which keep every incident until it is
//     acknowledged.
package paho

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub"
)

// Options configure a Bus. Zero fields take the defaults documented on each.
type Options struct {
	URL            string        // broker, e.g. tcp://mqtt.example:1883; required
	ClientID       string        // default "kentongan-hub"; must be stable for the session to persist
	Logger         *slog.Logger  // default slog.Default()
	ConnectTimeout time.Duration // default 10s
	PublishTimeout time.Duration // default 10s: how long Publish waits for the broker's PUBACK
	// SharedGroup, if set, is the shared-subscription group of the hub's replicas; the filters
	// listed in SharedFilters are then subscribed as $share/<SharedGroup>/<filter>. Filters not
	// listed are subscribed by every replica.
	SharedGroup   string
	SharedFilters []string
	// CleanSession asks the broker to drop the session when the connection ends; see the
	// package documentation for why replicas want it.
	CleanSession bool
}

func (o *Options) fill() {
	if o.ClientID == "" {
		o.ClientID = "kentongan-hub"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 10 * time.Second
	}
}

type subscription struct {
	filter string
	qos    byte
}

// Bus is a hub.Bus over a connection to an external broker.
type Bus struct {
	opts Options
	c    paho.Client
	log  *slog.Logger

	mu        sync.Mutex
	subs      []subscription
	connected bool // Connect has succeeded once; later subscriptions go out at once
	closed    bool

	// firstSubscribed is closed once the first connection's subscriptions are answered, with
	// firstErr set if one failed: Connect waits for it, so that a hub that says it is running
	// is subscribed even on a broker that has never seen its session.
	firstSubscribed chan struct{}
	firstOnce       sync.Once
	firstErr        error
}

var _ hub.Bus = (*Bus)(nil)

// New prepares a client for the broker at opts.URL without connecting: subscribe first, then
// Connect.
func New(opts Options) (*Bus, error) {
	opts.fill()
	if opts.URL == "" {
		return nil, errors.New("external broker: no URL")
	}
	if g := opts.SharedGroup; g != "" && strings.ContainsAny(g, "/+#") {
		return nil, fmt.Errorf("external broker: shared group %q must not contain '/', '+' or '#'", g)
	}
	b := &Bus{opts: opts, log: opts.Logger, firstSubscribed: make(chan struct{})}
	co := paho.NewClientOptions().
		AddBroker(opts.URL).
		SetClientID(opts.ClientID).
		SetProtocolVersion(4).
		SetCleanSession(opts.CleanSession).
		SetOrderMatters(false).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(30 * time.Second).
		SetConnectTimeout(opts.ConnectTimeout).
		SetKeepAlive(30 * time.Second).
		SetOnConnectHandler(b.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			b.log.Warn("external broker connection lost; reconnecting", "broker", opts.URL, "err", err)
		})
	b.c = paho.NewClient(co)
	return b, nil
}

// Connect connects to the broker and subscribes to what Subscribe registered.
func (b *Bus) Connect(ctx context.Context) error {
	t := b.c.Connect()
	select {
	case <-t.Done():
	case <-ctx.Done():
		b.c.Disconnect(0)
		return fmt.Errorf("connect to broker %s: %w", b.opts.URL, ctx.Err())
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("connect to broker %s: %w", b.opts.URL, err)
	}
	select {
	case <-b.firstSubscribed:
	case <-ctx.Done():
		b.c.Disconnect(0)
		return fmt.Errorf("subscribe at broker %s: %w", b.opts.URL, ctx.Err())
	}
	if b.firstErr != nil {
		b.c.Disconnect(0)
		return fmt.Errorf("subscribe at broker %s: %w", b.opts.URL, b.firstErr)
	}
	b.mu.Lock()
	b.connected = true
	b.mu.Unlock()
	b.log.Info("connected to external MQTT broker", "broker", b.opts.URL, "client_id", b.opts.ClientID)
	return nil
}

// onConnect (re)subscribes on every connection: the broker may have lost the session.
func (b *Bus) onConnect(c paho.Client) {
	b.mu.Lock()
	subs := append([]subscription(nil), b.subs...)
	b.mu.Unlock()
	var errs []error
	for _, s := range subs {
		if err := b.sendSubscribe(s); err != nil {
			b.log.Error("subscribe after connect failed", "filter", s.filter, "err", err)
			errs = append(errs, err)
		}
	}
	b.firstOnce.Do(func() {
		b.firstErr = errors.Join(errs...)
		close(b.firstSubscribed)
	})
}

func (b *Bus) sendSubscribe(s subscription) error {
	// The route is already registered (AddRoute), so a nil callback keeps it.
	t := b.c.Subscribe(b.wireFilter(s.filter), s.qos, nil)
	if !t.WaitTimeout(b.opts.ConnectTimeout) {
		return fmt.Errorf("subscribe %s: no SUBACK within %s", s.filter, b.opts.ConnectTimeout)
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("subscribe %s: %w", s.filter, err)
	}
	if st, ok := t.(*paho.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code == 0x80 {
				return fmt.Errorf("subscribe %s: refused by the broker", f)
			}
		}
	}
	return nil
}

// wireFilter is the filter as sent to the broker: shared or not.
func (b *Bus) wireFilter(filter string) string {
	if b.opts.SharedGroup != "" && slices.Contains(b.opts.SharedFilters, filter) {
		return "$share/" + b.opts.SharedGroup + "/" + filter
	}
	return filter
}

// Subscribe registers h for filter. Before Connect it only registers; after, it also subscribes.
func (b *Bus) Subscribe(filter string, qos byte, h hub.Handler) error {
	b.c.AddRoute(filter, func(_ paho.Client, m paho.Message) {
		h(hub.Message{Topic: m.Topic(), Payload: m.Payload()})
	})
	s := subscription{filter: filter, qos: qos}
	b.mu.Lock()
	b.subs = append(b.subs, s)
	connected := b.connected
	b.mu.Unlock()
	if !connected {
		return nil
	}
	if err := b.sendSubscribe(s); err != nil {
		return fmt.Errorf("external broker: %w", err)
	}
	return nil
}

// Publish sends a message and waits for the broker to take it (PUBACK for QoS 1).
func (b *Bus) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	t := b.c.Publish(topic, qos, retain, payload)
	timer := time.NewTimer(b.opts.PublishTimeout)
	defer timer.Stop()
	select {
	case <-t.Done():
	case <-ctx.Done():
		return fmt.Errorf("publish %s to external broker: %w", topic, ctx.Err())
	case <-timer.C:
		return fmt.Errorf("publish %s to external broker: not taken within %s", topic, b.opts.PublishTimeout)
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("publish %s to external broker: %w", topic, err)
	}
	return nil
}

// Close disconnects. The session stays on the broker, which queues incidents for the next run.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.c.IsConnectionOpen() || b.connected {
		b.c.Disconnect(250)
	}
	return nil
}
