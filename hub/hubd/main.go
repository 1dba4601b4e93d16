// Package hubd assembles kentongan-hub: the store, the broker or external bus, ingest and the
// HTTP API. cmd/kentongan-hub only parses flags and waits for a signal, so that tests and the
// demo run the very same program in-process.
package hubd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kentongan/kentongan/hub"
	hubhttp "github.com/kentongan/kentongan/hub/http"
	"github.com/kentongan/kentongan/hub/ingest"
	"github.com/kentongan/kentongan/hub/mochi"
	"github.com/kentongan/kentongan/hub/paho"
	"github.com/kentongan/kentongan/hub/sqlite"
)

// DBFile is the ticket database's name inside the data directory.
const DBFile = "kentongan-hub.db"

// Main is the hub program. Set Config (or call ParseFlags), then Run, then Close.
type Main struct {
	Config Config
	Logger *slog.Logger
	Clock  hub.Clock

	// Demo is set by --demo. If DemoFunc is also set, Run calls it last, once everything is
	// listening; an error from it fails Run. The demo registers its own devices in Config
	// before Run, and what it starts it hands to DeferClose.
	Demo     bool
	DemoFunc func(ctx context.Context, m *Main) error

	// Set by Run, for the demo and for tests; nil before Run and after Close.
	Store   hub.Store
	Service *ingest.Service

	mu       sync.Mutex
	running  bool
	registry *prometheus.Registry
	broker   *mochi.Broker
	external *paho.Bus
	bus      hub.Bus
	http     *hubhttp.Server
	closers  []func() error
}

// NewMain returns a Main with the default configuration, logging text to stderr.
func NewMain() *Main {
	return &Main{
		Config: DefaultConfig(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Clock:  hub.SystemClock{},
	}
}

// ParseFlags reads the command line. A --config file is loaded first; flags given explicitly
// override it.
func (m *Main) ParseFlags(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kentongan-hub", flag.ContinueOnError)
	var (
		configPath = fs.String("config", "", "YAML configuration `file` (see docs/api.md); defaults apply without one")
		dataDir    = fs.String("data", m.Config.DataDir, "data `dir`ectory: the ticket database lives here")
		httpAddr   = fs.String("http", m.Config.HTTP.Listen, "HTTP API listen `address`")
		mqttAddr   = fs.String("mqtt", m.Config.MQTT.Listen, "embedded MQTT broker listen `address`")
		brokerURL  = fs.String("broker", m.Config.MQTT.BrokerURL, "external MQTT broker `URL` (tcp://host:1883) instead of the embedded one")
		demo       = fs.Bool("demo", false, "start the demo kiosk fleet against this hub")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *configPath != "" {
		cfg, err := LoadConfig(*configPath)
		if err != nil {
			return err
		}
		m.Config = cfg
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "data":
			m.Config.DataDir = *dataDir
		case "http":
			m.Config.HTTP.Listen = *httpAddr
		case "mqtt":
			m.Config.MQTT.Listen = *mqttAddr
		case "broker":
			m.Config.MQTT.BrokerURL = *brokerURL
		}
	})
	m.Demo = *demo
	if err := m.Config.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Run starts the hub and returns once it is listening. ctx bounds start-up only (and is handed
// to DemoFunc); the hub runs until Close.
func (m *Main) Run(ctx context.Context) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		return errors.New("hub: already running")
	}
	if err := m.Config.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	if m.Clock == nil {
		m.Clock = hub.SystemClock{}
	}
	m.running = true
	defer func() {
		if err != nil {
			_ = m.closeLocked()
		}
	}()
	log := m.Logger

	if err := os.MkdirAll(m.Config.DataDir, 0o750); err != nil {
		return fmt.Errorf("hub: create data dir: %w", err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(m.Config.DataDir, DBFile), sqlite.Options{Clock: m.Clock, Logger: log.With("component", "store")})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	m.Store = store

	// Each Run gets its own registry: no global state, and a re-Run registers afresh.
	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if url := m.Config.MQTT.BrokerURL; url != "" {
		ext, err := paho.New(paho.Options{URL: url, Logger: log.With("component", "bus")})
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		m.external, m.bus = ext, ext
	} else {
		b, err := mochi.New(mochi.Options{Listen: m.Config.MQTT.Listen, Logger: log.With("component", "broker")})
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		m.broker, m.bus = b, b
		m.registerBrokerMetrics(b)
	}

	devices := make([]hub.Device, 0, len(m.Config.Devices))
	for _, d := range m.Config.Devices {
		devices = append(devices, d.Device())
	}
	svc, err := ingest.New(ingest.Options{
		Store:      store,
		Bus:        m.bus,
		Devices:    devices,
		Clock:      m.Clock,
		Logger:     log.With("component", "ingest"),
		Registerer: m.registry,
		QueueSize:  m.Config.Ingest.QueueSize,
		BatchMax:   m.Config.Ingest.BatchMax,
		SMSLang:    m.Config.Ingest.SMSLang,
	})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	m.Service = svc
	// Subscribe before the bus delivers anything, so that no early incident goes unheard.
	if err := svc.Start(); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if m.broker != nil {
		if err := m.broker.Serve(); err != nil {
			return fmt.Errorf("hub: %w", err)
		}
	} else if err := m.external.Connect(ctx); err != nil {
		return fmt.Errorf("hub: %w", err)
	}

	m.http = hubhttp.NewServer(hubhttp.Options{
		Tickets: svc,
		Devices: svc,
		Stats:   svc,
		Metrics: promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry}),
		Logger:  log.With("component", "http"),
	})
	if err := m.http.Open(m.Config.HTTP.Listen); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	log.Info("kentongan-hub running", "http", m.http.Addr(), "broker", m.brokerURLLocked(),
		"data", m.Config.DataDir, "devices", len(devices))

	if m.Demo {
		if m.DemoFunc == nil {
			log.Warn("--demo given, but this build has no demo wired in")
		} else {
			// DemoFunc may call the address methods, which take the lock.
			m.mu.Unlock()
			err := m.DemoFunc(ctx, m)
			m.mu.Lock()
			if err != nil {
				return fmt.Errorf("hub: demo: %w", err)
			}
		}
	}
	return nil
}

func (m *Main) registerBrokerMetrics(b *mochi.Broker) {
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kentongan_hub_broker_clients_connected",
			Help: "Clients connected to the embedded broker.",
		}, func() float64 { return float64(b.Stats().ClientsConnected) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kentongan_hub_broker_messages_dropped_total",
			Help: "Messages the embedded broker dropped because a client's outbound queue was full.",
		}, func() float64 { return float64(b.Stats().MessagesDropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kentongan_hub_broker_inflight_dropped_total",
			Help: "QoS 1/2 messages the embedded broker dropped because a client's in-flight window was full.",
		}, func() float64 { return float64(b.Stats().InflightDropped) }),
	)
}

// DeferClose registers f to run at the start of Close, before the hub stops; the last
// registered runs first. It is how the demo's kiosks disconnect before their hub goes away.
func (m *Main) DeferClose(f func() error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closers = append(m.closers, f)
}

// Close stops the hub: HTTP first, then ingest (committing and acking what is queued), then the
// bus and the store. It is safe to call more than once; Run may be called again afterwards.
func (m *Main) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closeLocked()
}

func (m *Main) closeLocked() error {
	if !m.running {
		return nil
	}
	m.running = false
	var errs []error
	closers := m.closers
	m.closers = nil
	for _, f := range slices.Backward(closers) {
		m.mu.Unlock() // a closer may ask for addresses
		errs = append(errs, f())
		m.mu.Lock()
	}
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, m.http.Close(ctx))
		cancel()
		m.http = nil
	}
	if m.Service != nil {
		errs = append(errs, m.Service.Close())
		m.Service = nil
	}
	if m.bus != nil {
		errs = append(errs, m.bus.Close())
		m.bus, m.broker, m.external = nil, nil, nil
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
		m.Store = nil
	}
	m.registry = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("hub: close: %w", err)
	}
	m.Logger.Info("kentongan-hub stopped")
	return nil
}

// DataDir is the data directory in use.
func (m *Main) DataDir() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Config.DataDir
}

// HTTPAddr is the HTTP API's bound address ("" when not running).
func (m *Main) HTTPAddr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.http == nil {
		return ""
	}
	return m.http.Addr()
}

// MQTTAddr is the embedded broker's bound address; "" with an external broker or when stopped.
func (m *Main) MQTTAddr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broker == nil {
		return ""
	}
	return m.broker.Addr()
}

// BrokerURL is what kiosks should connect to: the external broker's URL, or the embedded
// broker's address as tcp://host:port, with a wildcard host replaced by 127.0.0.1.
func (m *Main) BrokerURL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.brokerURLLocked()
}

func (m *Main) brokerURLLocked() string {
	if m.Config.MQTT.BrokerURL != "" {
		return m.Config.MQTT.BrokerURL
	}
	if m.broker == nil {
		return ""
	}
	addr := m.broker.Addr()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "tcp://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "tcp://" + net.JoinHostPort(host, port)
}
