// Package mochi is the hub's embedded MQTT broker (github.com/mochi-mqtt/server/v2) and the
// hub.Bus on top of it.
//
// The hub does not subscribe as a network client of its own broker. mochi v2.7.9 silently drops
// QoS 1 messages to a network subscriber once its outbound queue fills (measured: 35–74 % of a
// burst to a paho subscriber), while the publishers still get their PUBACKs; spillHook turns
// that loss into a later delivery. The hub itself uses an inline
// subscription, which runs the handler synchronously in the publishing client's goroutine, so
// a handler that blocks holds back that one publisher and loses nothing.
package mochi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
)

// Options configure the broker. New fills zero fields with the defaults documented on each.
type Options struct {
	// Listen is the TCP address for kiosks; default ":1883". "127.0.0.1:0" picks a free port,
	// which Addr reports.
	Listen string
	Logger *slog.Logger // default slog.Default()

	// ReceiveMaximum is how many QoS 1/2 publishes one client may have unacknowledged towards
	// the broker (announced to MQTT 5 clients); default 256, ample for a kiosk's outbox replay.
	ReceiveMaximum uint16
	// MaximumInflight is how many QoS 1/2 messages the broker keeps in flight per client before
	// dropping; default 65535, the protocol's limit, so that acks to a kiosk catching up on a
	// long outage are not dropped.
	MaximumInflight uint16
	// MaximumPacketSize refuses (by disconnecting) packets larger than this; default 64 KiB,
	// well above mqtt.MaxPayload so that an oversized incident still reaches the hub and gets
	// a "too_large" rejection, while a hostile megabyte does not.
	MaximumPacketSize uint32
	// MaximumClientWritesPending is the per-client outbound queue; default 1024. Each client
	// preallocates it (8 bytes a slot), which counts against RSS per connected kiosk. A QoS 1
	// message that finds it full is not lost: see spillHook.
	MaximumClientWritesPending int32
	// WriteTimeout is how long a write to a client may block before the connection is dropped
	// (see writeTimeoutListener); default 10s. The client's session keeps what was not sent.
	WriteTimeout time.Duration

	// DisablePlain turns the plain TCP listener (Listen) off, leaving only the TLS one.
	DisablePlain bool
	// TLSListen is the address of the device listener: TLS, client certificates required
	// and verified by TLSConfig (enroll.CA.ServerTLS); "" has none. "127.0.0.1:0" picks a free
	// port, which TLSAddr reports.
	TLSListen string
	TLSConfig *tls.Config
	// Auth is the device registry that authenticates certificates and keeps enrolled devices
	// off the plain listener; nil accepts no device certificate.
	Auth DeviceAuth
	// Registerer, if set, gets kentongan_hub_broker_refused_total{reason}.
	Registerer prometheus.Registerer
}

func (o *Options) fill() {
	if o.Listen == "" && !o.DisablePlain {
		o.Listen = ":1883"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReceiveMaximum == 0 {
		o.ReceiveMaximum = 256
	}
	if o.MaximumInflight == 0 {
		o.MaximumInflight = 65535
	}
	if o.MaximumPacketSize == 0 {
		o.MaximumPacketSize = 64 << 10
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaximumClientWritesPending == 0 {
		o.MaximumClientWritesPending = 1024
	}
}

// Broker is a running embedded broker. It implements hub.Bus.
type Broker struct {
	srv     *mochi.Server
	tcp     *listeners.Net // nil with Options.DisablePlain
	tls     *tlsListener   // nil without Options.TLSListen
	log     *slog.Logger
	nextSub atomic.Int64
	auth    DeviceAuth
	sec     *SecurityHook
	refused *prometheus.CounterVec
	// refusedN mirrors refused for Refused, without a metrics scrape.
	refusedMu sync.Mutex
	refusedN  map[string]uint64

	mu      sync.Mutex
	serving bool
	closed  bool
}

var _ hub.Bus = (*Broker)(nil)

// New creates the broker and binds its TCP listener, but does not accept connections until
// Serve, so that the hub can subscribe first and miss no message.
func New(opts Options) (*Broker, error) {
	opts.fill()
	caps := mochi.NewDefaultServerCapabilities()
	caps.ReceiveMaximum = opts.ReceiveMaximum
	caps.MaximumInflight = opts.MaximumInflight
	caps.MaximumPacketSize = opts.MaximumPacketSize
	caps.MaximumClientWritesPending = opts.MaximumClientWritesPending

	log := opts.Logger
	srv := mochi.New(&mochi.Options{
		Capabilities: caps,
		Logger:       log,
		InlineClient: true,
	})
	b := &Broker{srv: srv, log: log, auth: opts.Auth, refusedN: map[string]uint64{}}
	b.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kentongan_hub_broker_refused_total",
		Help: "Clients, publishes and subscriptions the embedded broker refused, by reason.",
	}, []string{"reason"})
	for _, r := range refusalReasons {
		b.refused.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(b.refused); err != nil {
			return nil, fmt.Errorf("embedded broker: register metrics: %w", err)
		}
	}
	b.sec = &SecurityHook{b: b, ids: map[*mochi.Client]identity{}}
	if err := srv.AddHook(b.sec, nil); err != nil {
		return nil, fmt.Errorf("embedded broker: add security hook: %w", err)
	}
	if err := srv.AddHook(&spillHook{log: log}, nil); err != nil {
		return nil, fmt.Errorf("embedded broker: add spill hook: %w", err)
	}
	if opts.DisablePlain && opts.TLSListen == "" {
		return nil, errors.New("embedded broker: both listeners are off")
	}
	if !opts.DisablePlain {
		ln, err := net.Listen("tcp", opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded broker: listen on %s: %w", opts.Listen, err)
		}
		b.tcp = listeners.NewNet("tcp", writeTimeoutListener{Listener: ln, timeout: opts.WriteTimeout})
		if err := srv.AddListener(b.tcp); err != nil {
			ln.Close()
			return nil, fmt.Errorf("embedded broker: listen on %s: %w", opts.Listen, err)
		}
	}
	if opts.TLSListen != "" {
		if opts.TLSConfig == nil || len(opts.TLSConfig.Certificates) == 0 || opts.TLSConfig.ClientCAs == nil {
			return nil, errors.New("embedded broker: the TLS listener needs a server certificate and the CA of client certificates")
		}
		cfg := opts.TLSConfig.Clone()
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		b.tls = &tlsListener{address: opts.TLSListen, cfg: cfg, writeTimeout: opts.WriteTimeout, onFail: func(remote string, err error) {
			b.countRefusal(RefuseTLSHandshake)
			b.log.Warn("broker refused client", "reason", RefuseTLSHandshake, "listener", tlsListenerID, "remote", remote, "err", err)
		}}
		if err := srv.AddListener(b.tls); err != nil {
			if b.tcp != nil {
				b.tcp.Close(func(string) {})
			}
			return nil, fmt.Errorf("embedded broker: TLS listen on %s: %w", opts.TLSListen, err)
		}
	}
	return b, nil
}

// DisconnectDevice drops every connection of a device at once: those authenticated by its
// certificate and any using its client ID. It returns how many it dropped.
func (b *Broker) DisconnectDevice(deviceID string) int {
	seen := map[*mochi.Client]bool{}
	for _, cl := range b.sec.clientsOf(deviceID) {
		seen[cl] = true
	}
	if cl, ok := b.srv.Clients.Get(KioskClientPrefix + deviceID); ok {
		seen[cl] = true
	}
	n := 0
	for cl := range seen {
		if cl.Net.Inline || cl.Closed() {
			continue
		}
		_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
		n++
	}
	if n > 0 {
		b.log.Warn("broker disconnected device", "device", deviceID, "connections", n)
	}
	return n
}

// Refused is how many refusals of reason the broker has counted.
func (b *Broker) Refused(reason string) uint64 {
	b.refusedMu.Lock()
	defer b.refusedMu.Unlock()
	return b.refusedN[reason]
}

func (b *Broker) countRefusal(reason string) {
	b.refused.WithLabelValues(reason).Inc()
	b.refusedMu.Lock()
	b.refusedN[reason]++
	b.refusedMu.Unlock()
}

// Serve starts accepting connections. It returns at once.
func (b *Broker) Serve() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("embedded broker: serve after close")
	}
	if b.serving {
		return nil
	}
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("embedded broker: serve: %w", err)
	}
	b.serving = true
	b.log.Info("embedded MQTT broker listening", "addr", b.Addr(), "tls_addr", b.TLSAddr())
	return nil
}

// Addr is the address the plain TCP listener is bound to, with the real port when Listen asked
// for 0; "" when it is off.
func (b *Broker) Addr() string {
	if b.tcp == nil {
		return ""
	}
	return b.tcp.Address()
}

// TLSAddr is the address the TLS device listener is bound to; "" when there is none.
func (b *Broker) TLSAddr() string {
	if b.tls == nil {
		return ""
	}
	return b.tls.Address()
}

// Subscribe registers an inline subscription. h runs in the publishing client's goroutine after
// mochi has sent that client its PUBACK; while h blocks, that client's messages wait in TCP.
// qos is ignored: inline delivery has no QoS to negotiate.
func (b *Broker) Subscribe(filter string, qos byte, h hub.Handler) error {
	id := int(b.nextSub.Add(1))
	err := b.srv.Subscribe(filter, id, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		// The packet's buffers belong to mochi; the handler may keep the payload.
		h(hub.Message{Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload)})
	})
	if err != nil {
		return fmt.Errorf("embedded broker: subscribe %s: %w", filter, err)
	}
	return nil
}

// Publish hands a message to the broker for its subscribers. It does not block on them: mochi
// queues per client, keeping QoS 1 messages for disconnected persistent sessions.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded broker: publish %s: %w", topic, err)
	}
	if err := b.srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("embedded broker: publish %s: %w", topic, err)
	}
	return nil
}

// BrokerStats are the broker's own counters, for metrics.
type BrokerStats struct {
	ClientsConnected int64
	MessagesDropped  int64 // outbound queue of a client was full
	InflightDropped  int64 // in-flight window of a client was full
}

// Stats reads the broker's counters.
func (b *Broker) Stats() BrokerStats {
	return BrokerStats{
		ClientsConnected: atomic.LoadInt64(&b.srv.Info.ClientsConnected),
		MessagesDropped:  atomic.LoadInt64(&b.srv.Info.MessagesDropped),
		InflightDropped:  atomic.LoadInt64(&b.srv.Info.InflightDropped),
	}
}

// Close disconnects every client and stops listening. It is safe to call more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.closeClients()
	// mochi's Close waits for every client goroutine; one that never ends must not hang the hub.
	done := make(chan struct{})
	go func() {
		b.srv.Close() // always nil
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(closeTimeout):
		return fmt.Errorf("embedded broker: close: clients still running after %v", closeTimeout)
	}
}

// closeTimeout bounds each stage of Close: disconnecting clients, then mochi's own close.
const closeTimeout = 5 * time.Second

// closeClients stops the listener and disconnects every client before mochi's own Close runs.
//
// mochi v2.7.9's Close reaches Clients.GetByListener, which takes the clients' read lock twice;
// a client connecting or leaving at that moment asks for the write lock in between, and the
// broker deadlocks for good (mochi-mqtt/server#488, seen here as a hub that never finished
// stopping). So the listener is taken out of mochi's hands and closed without that callback,
// every client is disconnected here, and mochi's Close then finds nothing left to close.
func (b *Broker) closeClients() {
	for _, id := range []string{"tcp", tlsListenerID} {
		if l, ok := b.srv.Listeners.Get(id); ok {
			b.srv.Listeners.Delete(id)
			l.Close(func(string) {})
		}
	}
	deadline := time.Now().Add(closeTimeout)
	quiet := 0
	for {
		// Sweep until two passes in a row find nobody: a connection accepted just before the
		// listener closed may register its client only after an earlier sweep. Waiting on
		// mochi's ClientsWg instead would race with such a connection's Add.
		open := 0
		for _, cl := range b.srv.Clients.GetAll() {
			if !cl.Net.Inline && !cl.Closed() {
				open++
				_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
		if open == 0 && atomic.LoadInt64(&b.srv.Info.ClientsConnected) == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if quiet >= 2 {
			return
		}
		if time.Now().After(deadline) {
			b.log.Error("embedded broker: client connections still open at close", "timeout", closeTimeout)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
