package hubd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/deadline"
	"github.com/kentongan/kentongan/hub/ingest"
	"github.com/kentongan/kentongan/hub/yamlkey"
	"github.com/kentongan/kentongan/mqtt"
)

// Config is the hub's configuration file (YAML). Keys are named by their yaml tags; see
// DefaultConfig for defaults.
type Config struct {
	DataDir     string            `yaml:"data_dir"`
	Store       StoreConfig       `yaml:"store"`
	Leader      LeaderConfig      `yaml:"leader"`
	HTTP        HTTPConfig        `yaml:"http"`
	MQTT        MQTTConfig        `yaml:"mqtt"`
	Ingest      IngestConfig      `yaml:"ingest"`
	Routing     RoutingConfig     `yaml:"routing"`
	Deadlines   deadline.Config   `yaml:"deadlines"`
	Supervision SupervisionConfig `yaml:"supervision"`
	FalseAlarms FalseAlarmConfig  `yaml:"false_alarms"`
	Webhooks    WebhookConfig     `yaml:"webhooks"`
	Devices     []DeviceConfig    `yaml:"devices"`
}

// StoreConfig is the "store" section: where tickets, accounts and the device registry live.
type StoreConfig struct {
	// PostgresURL selects PostgreSQL (postgres://user@host/db) instead of the SQLite file in
	// data_dir; hub replicas share one database (docs/scale-out.md). PostgresURLEnv names an
	// environment variable holding it instead, so that the password stays out of the file.
	PostgresURL    string `yaml:"postgres_url"`
	PostgresURLEnv string `yaml:"postgres_url_env"`
	// MaxConns is the PostgreSQL connection pool's size; default 10.
	MaxConns int `yaml:"max_conns"`
}

// PostgresDSN is the PostgreSQL DSN in force, "" for SQLite.
func (c StoreConfig) PostgresDSN() string {
	if c.PostgresURLEnv != "" {
		return os.Getenv(c.PostgresURLEnv)
	}
	return c.PostgresURL
}

// LeaderConfig is the "leader" section: how replicas on PostgreSQL elect the one that runs
// deadline marks, alert notifications and webhooks (hub/leader).
type LeaderConfig struct {
	// Retry is how often a replica that does not lead tries to; default (0 too) 3s. The leader
	// checks its lock's connection three times as often.
	Retry time.Duration `yaml:"retry"`
}

// RoutingConfig is the "routing" section: where tickets go (hub/route, docs/routing.md).
type RoutingConfig struct {
	// File is the routing file; "" uses the built-in one for Kabupaten Tangerang. The hub
	// reloads it on SIGHUP and when it changes.
	File string `yaml:"file"`
	// Watch is how often the file is checked for changes; default 5s, 0 in a file means the
	// default, and a negative value turns watching off (SIGHUP and the API still reload).
	Watch time.Duration `yaml:"watch"`
}

// SupervisionConfig is the "supervision" section.
type SupervisionConfig struct {
	// Interval is how long a kiosk may be unheard before a kiosk_offline alert; default 90s,
	// three of the kiosk's 30 s heartbeats. A device's own supervision overrides it.
	Interval time.Duration `yaml:"interval"`
	// Scan is how often kiosks, deadlines and false-alarm rates are checked; default 5s.
	Scan time.Duration `yaml:"scan"`
}

// FalseAlarmConfig is the "false_alarms" section: when a kiosk is flagged.
type FalseAlarmConfig struct {
	Window     time.Duration `yaml:"window"`      // default 720h (30 days)
	MaxRate    float64       `yaml:"max_rate"`    // 0..1, default 0.5
	MinTickets int           `yaml:"min_tickets"` // default 4
}

// WebhookConfig is the "webhooks" section. Agencies' webhooks are in the routing file; this
// section holds how they are retried, and the supervisor's alert notifications.
type WebhookConfig struct {
	RetryInitial time.Duration `yaml:"retry_initial"` // first wait after a failure; default 10s
	RetryMax     time.Duration `yaml:"retry_max"`     // longest wait; default 30m
	MaxAttempts  int           `yaml:"max_attempts"`  // then the delivery is failed; default 60
	Timeout      time.Duration `yaml:"timeout"`       // per attempt; default 10s
	// SupervisorURL receives every alert raised (deadline breaches, kiosks offline, ...) as a
	// signed JSON POST; "" sends none.
	SupervisorURL       string `yaml:"supervisor_url"`
	SupervisorSecret    string `yaml:"supervisor_secret"`
	SupervisorSecretEnv string `yaml:"supervisor_secret_env"`
}

// HTTPConfig is the "http" section.
type HTTPConfig struct {
	Listen string `yaml:"listen"`
	// TileURL is the dashboard map's tile server ({z}/{x}/{y} template); empty means
	// OpenStreetMap's. A centre without internet access points it at its own tile server.
	TileURL         string `yaml:"tile_url"`
	TileAttribution string `yaml:"tile_attribution"`
}

// MQTTConfig is the "mqtt" section. With BrokerURL set the hub connects to that broker and runs
// none of its own, and Listen is ignored.
type MQTTConfig struct {
	// Listen is the plain TCP listener, without credentials: for the demo, tests and kiosks of
	// "devices"; enrolled devices are refused on it. DisablePlain turns it off.
	Listen       string `yaml:"listen"`
	DisablePlain bool   `yaml:"disable_plain"`
	BrokerURL    string `yaml:"broker_url"`
	// TLSListen is the device listener: TLS with client certificates from the hub's CA
	// (docs/provisioning.md). "" means listen's host on port 8883, or on a free port when
	// listen's port is 0; "off" has none, and then the hub enrolls no device.
	TLSListen string `yaml:"tls_listen"`
	// PublicHost is the name or address kiosks reach the hub's broker at: it goes into the
	// broker URL given to enrolled devices and into the broker's certificate. Default: the
	// TLS listener's host, or 127.0.0.1 when that is a wildcard.
	PublicHost string `yaml:"public_host"`
	// DeviceURL, with an external broker, is the broker URL given to enrolled devices
	// (mqtts://broker.example:8883); that broker must trust the hub's CA (data_dir/ca/ca.crt).
	DeviceURL string `yaml:"device_url"`
	// ReplicaID, with an external broker, makes this hub one replica of several: its MQTT
	// client ID is "kentongan-hub-<replica_id>" with a clean session, and incidents come
	// through the shared subscription $share/<share_group>/... (docs/scale-out.md). Every
	// replica needs its own, stable ID. "" is a hub that runs alone.
	ReplicaID string `yaml:"replica_id"`
	// ShareGroup is the replicas' shared-subscription group; default ("" too) "kentongan-hub".
	ShareGroup string `yaml:"share_group"`
	// ConnectRate and ConnectBurst limit new connections to the embedded broker per remote
	// address (a token bucket): ConnectRate per second, ConnectBurst at once. 0 takes the
	// defaults (20/s, 300 at once: a few hundred kiosks behind one NAT reconnecting after a hub
	// restart); a negative rate turns the limit off.
	ConnectRate  float64 `yaml:"connect_rate"`
	ConnectBurst int     `yaml:"connect_burst"`
}

// ClientID is the hub's MQTT client ID at an external broker.
func (c MQTTConfig) ClientID() string {
	if c.ReplicaID == "" {
		return "kentongan-hub"
	}
	return "kentongan-hub-" + c.ReplicaID
}

// replicaID is what a replica ID and a share group may contain: they go into a client ID and a
// topic filter.
var replicaID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// tlsListenOff is the value of mqtt.tls_listen that turns the device listener off.
const tlsListenOff = "off"

// DeviceListen is the address of the device listener, "" when there is none.
func (c MQTTConfig) DeviceListen() string {
	switch {
	case c.BrokerURL != "" || c.TLSListen == tlsListenOff:
		return ""
	case c.TLSListen != "":
		return c.TLSListen
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return ""
	}
	if port == "0" {
		return net.JoinHostPort(host, "0")
	}
	return net.JoinHostPort(host, "8883")
}

// IngestConfig is the "ingest" section.
type IngestConfig struct {
	BatchMax  int `yaml:"batch_max"`
	QueueSize int `yaml:"queue_size"`
	// SMSLang is the language of SMS replies to reporters: "id" (Bahasa Indonesia) or "en".
	SMSLang string `yaml:"sms_lang"`
}

// DeviceConfig is one entry of "devices": a kiosk the hub accepts incidents from.
type DeviceConfig struct {
	ID   string   `yaml:"id"`
	Name string   `yaml:"name"`
	Site hub.Site `yaml:"site"`
	// RTRWHeads are the post's RT/RW heads' numbers (08… or +62…), texted to confirm a
	// panic-button press. Provisioning fills them in; they change after RT/RW elections.
	RTRWHeads []string `yaml:"rt_rw_heads"`
	// Supervision overrides supervision.interval for this kiosk (one with a slower heartbeat).
	Supervision time.Duration `yaml:"supervision"`
}

// Device returns the registry entry for d.
func (d DeviceConfig) Device() hub.Device {
	return hub.Device{ID: d.ID, Name: d.Name, Site: d.Site, RTRWHeads: slices.Clone(d.RTRWHeads),
		SupervisionSec: int(d.Supervision / time.Second)}
}

// Limits on ingest settings: beyond them a typo, not a choice.
const (
	maxBatch = 10_000
	maxQueue = 1_000_000
)

// DefaultConfig is the configuration with no file and no flags.
func DefaultConfig() Config {
	return Config{
		DataDir:     "./data",
		HTTP:        HTTPConfig{Listen: ":8080"},
		MQTT:        MQTTConfig{Listen: ":1883", ShareGroup: "kentongan-hub"},
		Leader:      LeaderConfig{Retry: 3 * time.Second},
		Ingest:      IngestConfig{BatchMax: 256, QueueSize: 4096, SMSLang: "id"},
		Routing:     RoutingConfig{Watch: 5 * time.Second},
		Deadlines:   deadline.DefaultConfig(),
		Supervision: SupervisionConfig{Interval: 90 * time.Second, Scan: 5 * time.Second},
		FalseAlarms: FalseAlarmConfig{Window: 30 * 24 * time.Hour, MaxRate: 0.5, MinTickets: 4},
		Webhooks: WebhookConfig{RetryInitial: 10 * time.Second, RetryMax: 30 * time.Minute, MaxAttempts: 60,
			Timeout: 10 * time.Second},
	}
}

// LoadConfig reads a YAML configuration over the defaults. Unknown keys, values of the wrong
// type and invalid values are errors that name the key, e.g. "ingest.batch_max".
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig is LoadConfig on bytes.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, keyedYAMLError(&root, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("more than one YAML document")
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks every setting and names the first bad key. Run calls it too, so devices added
// in code are held to the same rules as devices in a file.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.DataDir) == "" {
		return errors.New("data_dir: must not be empty")
	}
	if err := checkListen(c.HTTP.Listen); err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	if c.MQTT.BrokerURL != "" {
		if err := checkBrokerURL(c.MQTT.BrokerURL); err != nil {
			return fmt.Errorf("mqtt.broker_url: %w", err)
		}
		if c.MQTT.DeviceURL != "" {
			if err := checkBrokerURL(c.MQTT.DeviceURL); err != nil {
				return fmt.Errorf("mqtt.device_url: %w", err)
			}
		}
	} else {
		if err := checkListen(c.MQTT.Listen); err != nil {
			return fmt.Errorf("mqtt.listen: %w", err)
		}
		if c.MQTT.ConnectBurst < 0 {
			return errors.New("mqtt.connect_burst: must not be negative")
		}
		if t := c.MQTT.TLSListen; t != "" && t != tlsListenOff {
			if err := checkListen(t); err != nil {
				return fmt.Errorf("mqtt.tls_listen: %w", err)
			}
		}
		if c.MQTT.DisablePlain && c.MQTT.DeviceListen() == "" {
			return errors.New("mqtt.disable_plain: the TLS listener is off too (mqtt.tls_listen), so no kiosk could connect")
		}
	}
	if err := c.validateScaleOut(); err != nil {
		return err
	}
	if strings.ContainsAny(c.MQTT.PublicHost, "/:@ ") && net.ParseIP(c.MQTT.PublicHost) == nil {
		return fmt.Errorf("mqtt.public_host: %q is not a host name or IP address", c.MQTT.PublicHost)
	}
	if c.Ingest.BatchMax < 1 || c.Ingest.BatchMax > maxBatch {
		return fmt.Errorf("ingest.batch_max: %d is outside 1..%d", c.Ingest.BatchMax, maxBatch)
	}
	if c.Ingest.SMSLang != "id" && c.Ingest.SMSLang != "en" {
		return fmt.Errorf("ingest.sms_lang: %q is neither \"id\" nor \"en\"", c.Ingest.SMSLang)
	}
	if c.Ingest.QueueSize < 1 || c.Ingest.QueueSize > maxQueue {
		return fmt.Errorf("ingest.queue_size: %d is outside 1..%d", c.Ingest.QueueSize, maxQueue)
	}
	if _, err := deadline.New(c.Deadlines); err != nil {
		return fmt.Errorf("deadlines.%w", err)
	}
	if c.Routing.File != "" && strings.TrimSpace(c.Routing.File) == "" {
		return errors.New("routing.file: blank")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
		min time.Duration
	}{
		{"supervision.interval", c.Supervision.Interval, time.Second},
		{"supervision.scan", c.Supervision.Scan, 100 * time.Millisecond},
		{"false_alarms.window", c.FalseAlarms.Window, time.Hour},
		{"webhooks.retry_initial", c.Webhooks.RetryInitial, 100 * time.Millisecond},
		{"webhooks.retry_max", c.Webhooks.RetryMax, 100 * time.Millisecond},
		{"webhooks.timeout", c.Webhooks.Timeout, 100 * time.Millisecond},
	} {
		if d.v < d.min {
			return fmt.Errorf("%s: %v is shorter than %v", d.key, d.v, d.min)
		}
	}
	if c.Webhooks.RetryMax < c.Webhooks.RetryInitial {
		return fmt.Errorf("webhooks.retry_max: %v is shorter than retry_initial %v", c.Webhooks.RetryMax, c.Webhooks.RetryInitial)
	}
	if c.Webhooks.MaxAttempts < 1 || c.Webhooks.MaxAttempts > 10_000 {
		return fmt.Errorf("webhooks.max_attempts: %d is outside 1..10000", c.Webhooks.MaxAttempts)
	}
	if r := c.FalseAlarms.MaxRate; r <= 0 || r > 1 {
		return fmt.Errorf("false_alarms.max_rate: %v is outside (0, 1]", r)
	}
	if c.FalseAlarms.MinTickets < 1 {
		return fmt.Errorf("false_alarms.min_tickets: %d is less than 1", c.FalseAlarms.MinTickets)
	}
	if u := c.Webhooks.SupervisorURL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fmt.Errorf("webhooks.supervisor_url: %q is not an http:// or https:// URL", u)
		}
		if (c.Webhooks.SupervisorSecret == "") == (c.Webhooks.SupervisorSecretEnv == "") {
			return errors.New("webhooks: give supervisor_secret or supervisor_secret_env (one of them) with supervisor_url")
		}
	}
	seen := map[string]int{}
	for i, d := range c.Devices {
		key := fmt.Sprintf("devices[%d]", i)
		if d.ID == "" {
			return fmt.Errorf("%s.id: missing", key)
		}
		if err := mqtt.ValidateDeviceID(d.ID); err != nil {
			return fmt.Errorf("%s.id: %w", key, err)
		}
		if j, ok := seen[d.ID]; ok {
			return fmt.Errorf("%s.id: duplicate device id %q (also devices[%d])", key, d.ID, j)
		}
		seen[d.ID] = i
		if d.Site.Lat < -90 || d.Site.Lat > 90 {
			return fmt.Errorf("%s.site.lat: %v is outside -90..90", key, d.Site.Lat)
		}
		if d.Site.Lon < -180 || d.Site.Lon > 180 {
			return fmt.Errorf("%s.site.lon: %v is outside -180..180", key, d.Site.Lon)
		}
		for j, h := range d.RTRWHeads {
			if _, err := ingest.NormalizeNumber(h); err != nil {
				return fmt.Errorf("%s.rt_rw_heads[%d]: %w", key, j, err)
			}
		}
		if d.Supervision != 0 && d.Supervision < time.Second {
			return fmt.Errorf("%s.supervision: %v is shorter than 1s", key, d.Supervision)
		}
	}
	return nil
}

// validateScaleOut checks the store, replica and leader settings.
func (c *Config) validateScaleOut() error {
	if c.Store.PostgresURL != "" && c.Store.PostgresURLEnv != "" {
		return errors.New("store: give postgres_url or postgres_url_env, not both")
	}
	if e := c.Store.PostgresURLEnv; e != "" && os.Getenv(e) == "" {
		return fmt.Errorf("store.postgres_url_env: environment variable %s is empty", e)
	}
	if dsn := c.Store.PostgresDSN(); dsn != "" {
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			// Not the DSN itself: it may hold a password.
			return errors.New("store.postgres_url: not a postgres:// or postgresql:// URL")
		}
	}
	if c.Store.MaxConns < 0 || c.Store.MaxConns > 1000 {
		return fmt.Errorf("store.max_conns: %d is outside 0..1000", c.Store.MaxConns)
	}
	if r := c.Leader.Retry; r != 0 && (r < 100*time.Millisecond || r > 5*time.Minute) {
		return fmt.Errorf("leader.retry: %v is outside 100ms..5m", c.Leader.Retry)
	}
	if g := c.MQTT.ShareGroup; g != "" && !replicaID.MatchString(g) {
		return fmt.Errorf("mqtt.share_group: %q must be 1 to 64 letters, digits, '-' or '_'", c.MQTT.ShareGroup)
	}
	if r := c.MQTT.ReplicaID; r != "" {
		if !replicaID.MatchString(r) {
			return fmt.Errorf("mqtt.replica_id: %q must be 1 to 64 letters, digits, '-' or '_'", r)
		}
		if c.MQTT.BrokerURL == "" {
			return errors.New("mqtt.replica_id: replicas share an external broker; set mqtt.broker_url")
		}
		if c.Store.PostgresDSN() == "" {
			return errors.New("mqtt.replica_id: replicas share one database; set store.postgres_url")
		}
	}
	return nil
}

func checkListen(addr string) error {
	if addr == "" {
		return errors.New("must not be empty")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// brokerSchemes are the URL schemes paho dials.
var brokerSchemes = map[string]bool{"tcp": true, "mqtt": true, "ssl": true, "tls": true, "mqtts": true, "ws": true, "wss": true}

func checkBrokerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if !brokerSchemes[u.Scheme] {
		return fmt.Errorf("%q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	return nil
}

// yamlLine matches one entry of a *yaml.TypeError.
var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// keyedYAMLError rewrites yaml.v3's "line 7: field lisen not found in type hubd.HTTPConfig"
// into "http.lisen: unknown key (line 7)", so that the operator sees which key is wrong.
func keyedYAMLError(root *yaml.Node, err error) error {
	te, ok := errors.AsType[*yaml.TypeError](err)
	if !ok {
		return err
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		m := yamlLine.FindStringSubmatch(e)
		if m == nil {
			msgs = append(msgs, e)
			continue
		}
		line, _ := strconv.Atoi(m[1])
		what := m[2]
		if strings.HasPrefix(what, "field ") && strings.Contains(what, " not found in type ") {
			what = "unknown key"
		}
		if key := yamlkey.AtLine(root, line); key != "" {
			msgs = append(msgs, fmt.Sprintf("%s: %s (line %d)", key, what, line))
		} else {
			msgs = append(msgs, e)
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}
