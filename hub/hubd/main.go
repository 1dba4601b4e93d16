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
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/deadline"
	"github.com/kentongan/kentongan/hub/enroll"
	hubhttp "github.com/kentongan/kentongan/hub/http"
	"github.com/kentongan/kentongan/hub/ingest"
	"github.com/kentongan/kentongan/hub/mochi"
	"github.com/kentongan/kentongan/hub/paho"
	"github.com/kentongan/kentongan/hub/route"
	"github.com/kentongan/kentongan/hub/web"
	"github.com/kentongan/kentongan/hub/webhook"
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

	// Set by Run, for the demo and for tests; nil before Run and after Close. Service is also
	// the hub.AlertService and hub.EventFeed, Routes the hub.RoutingService, Webhooks the
	// hub.WebhookService.
	Store    hub.Store
	Service  *ingest.Service
	Routes   *route.Router
	Webhooks *webhook.Dispatcher
	// Accounts are the hub's users, sessions and API tokens (hub/account).
	Accounts *account.Service
	// Enroll is device provisioning: the registry, enrollment tokens, the CA (hub/enroll).
	Enroll *enroll.Service

	mu       sync.Mutex
	running  bool
	registry *prometheus.Registry
	broker   *mochi.Broker
	external *paho.Bus
	bus      hub.Bus
	http     *hubhttp.Server
	notifier *webhook.Notifier
	closers  []func() error
	// leading is set while this hub leads its replicas (always, alone on SQLite); stopLead ends
	// the election and leadDone is closed once it has.
	leading  atomic.Bool
	stopLead context.CancelFunc
	leadDone chan struct{}
	knownMu  sync.Mutex
	known    map[string]bool
	lookedUp map[string]time.Time
	// stopWatch ends the routing file's watcher and the SIGHUP handler; watchDone is closed
	// when both have.
	stopWatch context.CancelFunc
	watchDone chan struct{}
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
		mqttsAddr  = fs.String("mqtts", m.Config.MQTT.TLSListen, "embedded broker's TLS device listener `address` (\"off\" for none)")
		brokerURL  = fs.String("broker", m.Config.MQTT.BrokerURL, "external MQTT broker `URL` (tcp://host:1883) instead of the embedded one")
		demo       = fs.Bool("demo", false, "start the demo kiosk fleet against this hub")
		pgURL      = fs.String("postgres", m.Config.Store.PostgresURL, "PostgreSQL `DSN` (postgres://user@host/db) instead of the SQLite file")
		pgEnv      = fs.String("postgres-env", m.Config.Store.PostgresURLEnv, "environment `variable` holding the PostgreSQL DSN, to keep its password off the command line")
		replica    = fs.String("replica-id", m.Config.MQTT.ReplicaID, "this replica's stable `ID`, with --broker and --postgres (docs/scale-out.md)")
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
		case "mqtts":
			m.Config.MQTT.TLSListen = *mqttsAddr
		case "broker":
			m.Config.MQTT.BrokerURL = *brokerURL
		case "postgres":
			m.Config.Store.PostgresURL, m.Config.Store.PostgresURLEnv = *pgURL, ""
		case "postgres-env":
			m.Config.Store.PostgresURL, m.Config.Store.PostgresURLEnv = "", *pgEnv
		case "replica-id":
			m.Config.MQTT.ReplicaID = *replica
		}
	})
	m.Demo = *demo
	if flagSet(fs, "postgres") && flagSet(fs, "postgres-env") {
		return errors.New("give --postgres or --postgres-env, not both")
	}
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
	stores, err := m.openStore(ctx)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	store := stores.tickets
	m.Store = store
	if stores.kind == "sqlite" {
		m.leading.Store(true) // alone: no election to wait for
	}

	// Each Run gets its own registry: no global state, and a re-Run registers afresh.
	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	static := make([]hub.Device, 0, len(m.Config.Devices))
	for _, d := range m.Config.Devices {
		static = append(static, d.Device())
	}
	prov, err := m.openProvisioning(stores.devices, static)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	m.Enroll = prov.svc

	if url := m.Config.MQTT.BrokerURL; url != "" {
		ext, err := paho.New(m.busOptions(url, log.With("component", "bus")))
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		m.external, m.bus = ext, ext
		prov.deviceURL = m.Config.MQTT.DeviceURL
	} else {
		bo := mochi.Options{Listen: m.Config.MQTT.Listen, DisablePlain: m.Config.MQTT.DisablePlain,
			Logger: log.With("component", "broker"), Auth: prov.svc, Registerer: m.registry}
		var public string
		if tl := m.Config.MQTT.DeviceListen(); tl != "" {
			var hosts []string
			public, hosts = m.serverHosts(tl)
			if bo.TLSConfig, err = prov.ca.ServerTLS(hosts, m.Clock.Now()); err != nil {
				return fmt.Errorf("hub: %w", err)
			}
			bo.TLSListen = tl
		}
		b, err := mochi.New(bo)
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		m.broker, m.bus = b, b
		prov.broker = b
		if m.Config.MQTT.ConnectRate != 0 || m.Config.MQTT.ConnectBurst != 0 {
			l := mochi.ConnectLimit{Rate: m.Config.MQTT.ConnectRate, Burst: m.Config.MQTT.ConnectBurst}
			if l.Rate == 0 {
				l.Rate = mochi.DefaultConnectRate
			}
			if l.Burst <= 0 {
				l.Burst = mochi.DefaultConnectBurst
			}
			b.SetConnectLimit(l)
		}
		if a := b.TLSAddr(); a != "" {
			_, port, _ := net.SplitHostPort(a)
			prov.deviceURL = "mqtts://" + net.JoinHostPort(public, port)
		}
		m.registerBrokerMetrics(b)
	}

	enrolled, err := prov.enrolledDevices(ctx, static, log.Warn)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	devices := append(static, enrolled...)

	// The router reports refused reloads to ingest's alerts, and ingest does not exist yet.
	var alertSink func(error)
	routes, err := route.New(route.Options{
		Path:       m.Config.Routing.File,
		Clock:      m.Clock,
		Logger:     log.With("component", "routing"),
		Registerer: m.registry,
		OnReload: func(err error) {
			if alertSink != nil {
				alertSink(err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	m.Routes = routes
	policy, err := deadline.New(m.Config.Deadlines)
	if err != nil {
		return fmt.Errorf("hub: deadlines: %w", err)
	}
	m.registerLeaderMetric()
	var notify func(hub.Alert)
	if wc := m.Config.Webhooks; wc.SupervisorURL != "" {
		secret := wc.SupervisorSecret
		if wc.SupervisorSecretEnv != "" {
			secret = os.Getenv(wc.SupervisorSecretEnv)
		}
		n, err := webhook.NewNotifier(webhook.NotifierOptions{URL: wc.SupervisorURL, Secret: secret, Timeout: wc.Timeout,
			Logger: log.With("component", "notify"), Registerer: m.registry})
		if err != nil {
			return fmt.Errorf("hub: supervisor notifications: %w", err)
		}
		// Every replica sees every heartbeat and raises the same kiosk alerts; the leader alone
		// tells the supervisor.
		m.notifier, notify = n, func(a hub.Alert) {
			if m.leading.Load() {
				n.Notify(a)
			}
		}
	}

	svc, err := ingest.New(ingest.Options{
		Store:        store,
		Bus:          m.registryBus(prov, devices),
		Devices:      devices,
		Clock:        m.Clock,
		Logger:       log.With("component", "ingest"),
		Registerer:   m.registry,
		QueueSize:    m.Config.Ingest.QueueSize,
		BatchMax:     m.Config.Ingest.BatchMax,
		SMSLang:      m.Config.Ingest.SMSLang,
		Routes:       routes,
		Deadlines:    policy,
		Supervision:  m.Config.Supervision.Interval,
		ScanInterval: m.Config.Supervision.Scan,
		FalseAlarms: ingest.FalseAlarmPolicy{Window: m.Config.FalseAlarms.Window, MaxRate: m.Config.FalseAlarms.MaxRate,
			MinTickets: m.Config.FalseAlarms.MinTickets},
		Notify:  notify,
		Leading: m.leading.Load,
	})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	m.Service = svc
	prov.ingest = svc
	alertSink = svc.RoutingReloaded

	wh, err := webhook.New(webhook.Options{
		Store:        store,
		Targets:      routes,
		Feed:         svc,
		Clock:        m.Clock,
		Logger:       log.With("component", "webhook"),
		Registerer:   m.registry,
		Timeout:      m.Config.Webhooks.Timeout,
		RetryInitial: m.Config.Webhooks.RetryInitial,
		RetryMax:     m.Config.Webhooks.RetryMax,
		MaxAttempts:  m.Config.Webhooks.MaxAttempts,
	})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	m.Webhooks = wh
	m.watchRouting(routes)
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

	accounts, err := m.openAccounts(ctx, stores.accounts, routes)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	m.Accounts = accounts
	ui, err := web.New(web.Options{Tickets: svc, Devices: svc, Alerts: svc, Routing: routes, Feed: svc,
		Auth: accounts.Browser(), Clock: m.Clock, Logger: log.With("component", "web"),
		TileURL: m.Config.HTTP.TileURL, TileAttribution: m.Config.HTTP.TileAttribution})
	if errors.Is(err, web.ErrTileURL) {
		return fmt.Errorf("hub: config http.tile_url: %w", err)
	}
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	metricsHandler := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry, ErrorLog: metricsLog{log},
		// A store too slow to count tickets in time (a flood, a locked file) must not blank every
		// other metric, which is when operators need them most: the failed collector is logged
		// and left out of that scrape.
		ErrorHandling: promhttp.ContinueOnError})
	m.http = hubhttp.NewServer(hubhttp.Options{
		UI:       ui,
		Accounts: accounts,
		Requests: requests{routes: routes, svc: svc, log: log.With("component", "http").Warn},
		Tickets:  svc,
		Devices:  svc,
		Stats:    svc,
		Alerts:   svc,
		Routing:  routes,
		Webhooks: wh,
		Metrics:  metricsHandler,
		Enroll:   prov.svc,
		Logger:   log.With("component", "http"),
	})
	if err := m.http.Open(m.Config.HTTP.Listen); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	m.startLeading(stores)
	log.Info("kentongan-hub running", "http", m.http.Addr(), "broker", m.brokerURLLocked(),
		"data", m.Config.DataDir, "devices", len(devices), "store", stores.kind, "replica", m.Config.MQTT.ReplicaID)

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

// watchRouting reloads the routing file when it changes and on SIGHUP, until Close.
func (m *Main) watchRouting(r *route.Router) {
	ctx, cancel := context.WithCancel(context.Background())
	m.stopWatch, m.watchDone = cancel, make(chan struct{})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	interval := m.Config.Routing.Watch
	var wg sync.WaitGroup
	wg.Go(func() { r.Watch(ctx, interval) })
	wg.Go(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				m.Logger.Info("SIGHUP: reloading the routing file")
				_ = r.Reload(ctx)
			}
		}
	})
	go func() {
		wg.Wait()
		close(m.watchDone)
	}()
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
	if m.stopWatch != nil {
		m.stopWatch()
		<-m.watchDone
		m.stopWatch = nil
	}
	m.stopLeading()
	if m.Webhooks != nil {
		errs = append(errs, m.Webhooks.Close())
		m.Webhooks = nil
	}
	if m.Service != nil {
		errs = append(errs, m.Service.Close())
		m.Service = nil
	}
	if m.notifier != nil {
		errs = append(errs, m.notifier.Close())
		m.notifier = nil
	}
	m.Routes = nil
	m.Enroll = nil
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

// TLSAddr is the embedded broker's TLS device listener's bound address; "" when there is none.
func (m *Main) TLSAddr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broker == nil {
		return ""
	}
	return m.broker.TLSAddr()
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
	if addr == "" {
		return "" // the plain listener is off; kiosks enroll and get their URL then
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "tcp://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "tcp://" + net.JoinHostPort(host, port)
}
