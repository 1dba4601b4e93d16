package daemon

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/provisioning"
)

// ProvisionConfig configures a kiosk that is set up over a serial line (kentongand --provision).
type ProvisionConfig struct {
	// StateDir holds the key, the credentials and the configuration the hub issued.
	StateDir string
	// Base is a kentongand configuration (YAML) for what only the kiosk knows: gpio.driver and
	// chip, the modem's port, admin.listen, store.dir. What the hub issues (device ID, broker,
	// buttons, LEDs, SMS allow-list, heartbeat) is set over it. Empty: the defaults, with the
	// outbox under StateDir.
	Base []byte
	// Hardware returns the board's identity (default ReadHardware("/")).
	Hardware func() (provisioning.Hardware, error)
	// Reset: the kiosk was booted with its reset button held, so it takes credentials from any
	// hub. Without it, a provisioned kiosk takes new credentials only from the CA it already
	// trusts, that is, when its hub agreed to re-provision it.
	Reset bool
	// PressTimeout bounds the wait for each button in the self-test (default 60s).
	PressTimeout time.Duration
	// HubTimeout bounds the self-test's wait for the hub: connecting, and the test incident's
	// answer (default 60s). The modem gets as long to register.
	HubTimeout time.Duration
	// Options are passed to every Daemon the provisioner makes.
	Options []Option
}

// Provisioner is a kiosk that can be set up over a serial line: it serves the provisioning
// protocol, and runs the operational daemon once it holds a configuration.
type Provisioner struct {
	cfg      ProvisionConfig
	log      *slog.Logger
	now      func() time.Time
	firmware string
	// write stores a file atomically; tests replace it to fill the disk.
	write func(path string, data []byte) error

	mu     sync.Mutex // guards the fields below and serialises installs
	daemon *Daemon
	// selfTestDaemon is the daemon the self-test has opened but not started yet.
	selfTestDaemon *Daemon
	test           *selfTest
	closed         bool
	started        bool
}

// DefaultPressTimeout is how long the self-test waits for each button.
const DefaultPressTimeout = 60 * time.Second

// NewProvisioner returns a provisioner for cfg. It does not start anything.
func NewProvisioner(cfg ProvisionConfig, log *slog.Logger) (*Provisioner, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("provisioning: no state directory")
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	// The configuration names the key and certificates by absolute path.
	cfg.StateDir = dir
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	if cfg.Hardware == nil {
		cfg.Hardware = func() (provisioning.Hardware, error) { return ReadHardware("/") }
	}
	cfg.PressTimeout = cmp.Or(cfg.PressTimeout, DefaultPressTimeout)
	cfg.HubTimeout = cmp.Or(cfg.HubTimeout, 60*time.Second)
	if log == nil {
		log = slog.Default()
	}
	if _, err := baseMap(cfg.Base); err != nil {
		return nil, fmt.Errorf("provisioning: base config: %w", err)
	}
	return &Provisioner{cfg: cfg, log: log.With("component", "provisioning"), now: time.Now,
		firmware: firmware(), write: writeFileAtomic}, nil
}

// ConfigPath is the configuration in force, whether or not the kiosk is provisioned yet.
func (p *Provisioner) ConfigPath() string {
	return filepath.Join(p.cfg.StateDir, currentLink, configFile)
}

// Start runs the operational daemon if the kiosk is provisioned. A configuration that no
// longer loads is logged, and the kiosk waits to be provisioned again.
func (p *Provisioner) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.started {
		return errors.New("provisioner already started or closed")
	}
	p.started = true
	if p.cfg.Reset {
		p.log.Warn("booted with the reset button held: this kiosk accepts credentials from any hub until it is provisioned")
	}
	gen, err := currentGen(p.cfg.StateDir)
	if err != nil || gen == "" {
		if err != nil {
			p.log.Error("cannot read the provisioned state; waiting to be provisioned", "err", err)
		} else {
			p.log.Info("not provisioned yet; waiting for a technician on the provisioning port")
		}
		return nil
	}
	return p.startDaemonLocked(ctx)
}

func (p *Provisioner) startDaemonLocked(ctx context.Context) error {
	cfg, err := LoadConfig(p.ConfigPath())
	if err != nil {
		return fmt.Errorf("provisioned config: %w", err)
	}
	d, err := New(cfg, p.cfg.Options...)
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		d.Close()
		return err
	}
	p.daemon = d
	return nil
}

func (p *Provisioner) stopDaemonLocked() {
	if p.daemon != nil {
		if err := p.daemon.Close(); err != nil {
			p.log.Warn("closing the operational daemon", "err", err)
		}
		p.daemon = nil
	}
}

// Daemon is the operational daemon, or nil while there is none (not provisioned, or during
// the self-test's first steps).
func (p *Provisioner) Daemon() *Daemon {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.daemon
}

// Close stops the self-test and the operational daemon.
func (p *Provisioner) Close() error {
	p.mu.Lock()
	p.closed = true
	st := p.test
	p.mu.Unlock()
	if st != nil {
		st.cancel()
		<-st.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopDaemonLocked()
	return nil
}

// Serve speaks the protocol over rw until the session ends (Bye), ctx ends or the line fails.
// A self-test still running when the line fails goes on to its end: the kiosk is left running.
func (p *Provisioner) Serve(ctx context.Context, rw io.ReadWriter) error {
	return provisioning.Serve(ctx, rw, p, p.log)
}

// Hello answers the handshake with the kiosk's identity and state.
func (p *Provisioner) Hello(_ context.Context, h provisioning.Hello) (provisioning.HelloReply, error) {
	p.log.Info("provisioning session opened", "client", h.Client)
	hw, err := p.cfg.Hardware()
	if err != nil {
		return provisioning.HelloReply{}, fmt.Errorf("read hardware identity: %w", err)
	}
	r := provisioning.HelloReply{Hardware: hw, Firmware: p.firmware, State: provisioning.StateBlank,
		Reset: p.cfg.Reset, FreeBytes: freeBytes(p.cfg.StateDir)}
	if cfg, err := p.current(); err == nil && cfg != nil {
		r.State, r.DeviceID, r.Name = provisioning.StateProvisioned, cfg.DeviceID, cfg.Name
	}
	return r, nil
}

// current returns the configuration in force, or nil on a blank kiosk.
func (p *Provisioner) current() (*Config, error) {
	gen, err := currentGen(p.cfg.StateDir)
	if err != nil || gen == "" {
		return nil, err
	}
	cfg, err := LoadConfig(filepath.Join(gen, configFile))
	if err != nil {
		return nil, err
	}
	return &cfg, nil
}

// CSR returns a certificate request for the kiosk's key, making the key the first time.
func (p *Provisioner) CSR(context.Context) (provisioning.CSRReply, error) {
	hw, err := p.cfg.Hardware()
	if err != nil {
		return provisioning.CSRReply{}, fmt.Errorf("read hardware identity: %w", err)
	}
	key, err := p.key()
	if err != nil {
		return provisioning.CSRReply{}, err
	}
	csr, err := makeCSR(key, hw.Serial)
	return provisioning.CSRReply{CSRPEM: csr}, err
}

func (p *Provisioner) key() (*ecdsa.PrivateKey, error) {
	k, err := loadOrMakeKey(p.cfg.StateDir, p.write)
	if err != nil {
		return nil, p.storageRefusal("store the kiosk's key", err)
	}
	return k, nil
}

func (p *Provisioner) storageRefusal(what string, err error) error {
	p.log.Error("provisioning storage failed", "what", what, "dir", p.cfg.StateDir, "err", err)
	if isDiskFull(err) {
		return provisioning.Refuse(provisioning.CodeDiskFull, "the kiosk's storage is full (%s, %d bytes free): cannot %s; nothing was changed",
			p.cfg.StateDir, freeBytes(p.cfg.StateDir), what)
	}
	return provisioning.Refuse(provisioning.CodeStorage, "cannot %s: %v; nothing was changed", what, err)
}

// Install checks and stores what the hub issued, all or nothing, then restarts the
// operational daemon on it.
func (p *Provisioner) Install(ctx context.Context, in provisioning.Install) (provisioning.InstallReply, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key, err := p.key()
	if err != nil {
		return provisioning.InstallReply{}, err
	}
	now := p.now()
	if _, err := checkCert(in.CertPEM, in.CAPEM, key, now); err != nil {
		return provisioning.InstallReply{}, provisioning.Refuse(provisioning.CodeCredentials, "%v", err)
	}
	gen, err := currentGen(p.cfg.StateDir)
	if err != nil {
		return provisioning.InstallReply{}, p.storageRefusal("read the current credentials", err)
	}
	if gen != "" {
		old, _ := os.ReadFile(filepath.Join(gen, certFile))
		if string(old) == in.CertPEM {
			if cfg, err := p.current(); err == nil && cfg.DeviceID == in.DeviceID {
				p.log.Info("credentials already installed", "device_id", in.DeviceID)
				// A self-test under way (the session before this one was cut) goes on, and
				// starts the daemon itself.
				if p.daemon == nil && p.selfTestDaemon == nil && (p.test == nil || p.test.finished()) {
					if err := p.startDaemonLocked(ctx); err != nil {
						p.log.Error("cannot start the operational daemon", "err", err)
					}
				}
				return provisioning.InstallReply{Unchanged: true}, nil
			}
		}
		if p.test != nil && !p.test.finished() {
			return provisioning.InstallReply{}, provisioning.Refuse(provisioning.CodeBusy, "a self-test is running: wait for it to end, then run again")
		}
		oldCA, _ := os.ReadFile(filepath.Join(gen, caFile))
		if _, err := checkCert(in.CertPEM, string(oldCA), key, now); err != nil && !p.cfg.Reset {
			return provisioning.InstallReply{}, provisioning.Refuse(provisioning.CodeProvisioned,
				"this kiosk is already provisioned and the new certificate is not from its hub's CA (%v); hold the reset button while it boots to provision it for another hub", err)
		}
	}

	dir := p.cfg.StateDir
	newGen, err := os.MkdirTemp(dir, genPrefix)
	if err != nil {
		return provisioning.InstallReply{}, p.storageRefusal("store the credentials", err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(newGen)
		}
	}()
	inGen := func(name string) string { return filepath.Join(newGen, name) }
	viaCurrent := func(name string) string { return filepath.Join(dir, currentLink, name) }
	// Checked with the paths of the new generation, stored with those through current, so the
	// file stays right whichever generation current later points at.
	check, err := p.buildConfig(in, inGen(caFile), inGen(certFile))
	if err != nil {
		return provisioning.InstallReply{}, err
	}
	final, err := p.buildConfig(in, viaCurrent(caFile), viaCurrent(certFile))
	if err != nil {
		return provisioning.InstallReply{}, err
	}
	for _, f := range []struct{ name, data string }{{caFile, in.CAPEM}, {certFile, in.CertPEM}} {
		if err := p.write(inGen(f.name), []byte(f.data)); err != nil {
			return provisioning.InstallReply{}, p.storageRefusal("store the credentials", err)
		}
	}
	if _, err := parseConfig(check); err != nil {
		return provisioning.InstallReply{}, provisioning.Refuse(provisioning.CodeConfig, "the configuration from the hub does not suit this kiosk: %v", err)
	}
	if err := p.write(inGen(configFile), final); err != nil {
		return provisioning.InstallReply{}, p.storageRefusal("store the configuration", err)
	}
	if err := syncDir(newGen); err != nil {
		return provisioning.InstallReply{}, p.storageRefusal("store the credentials", err)
	}
	// The running daemon holds the outbox; it must let go before the new one opens it.
	p.stopDaemonLocked()
	if err := commitGen(dir, newGen); err != nil {
		if serr := p.startDaemonLocked(ctx); serr != nil && gen != "" {
			p.log.Error("cannot restart the operational daemon on the old credentials", "err", serr)
		}
		return provisioning.InstallReply{}, p.storageRefusal("commit the credentials", err)
	}
	committed = true
	p.cfg.Reset = false // provisioned now: the next hub change needs another reset
	p.log.Info("provisioned", "device_id", in.DeviceID, "name", in.Name, "broker", in.BrokerURL)
	if err := p.startDaemonLocked(ctx); err != nil {
		// Stored all the same; the self-test says what is wrong.
		p.log.Error("cannot start the operational daemon", "err", err)
	}
	return provisioning.InstallReply{}, nil
}

// baseMap reads the base configuration as a generic map, so that what it says is written back
// as it was (durations stay "30s").
func baseMap(base []byte) (map[string]any, error) {
	m := map[string]any{}
	if len(bytes.TrimSpace(base)) == 0 {
		return m, nil
	}
	if err := yaml.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func subMap(m map[string]any, key string) map[string]any {
	if s, ok := m[key].(map[string]any); ok {
		return s
	}
	s := map[string]any{}
	m[key] = s
	return s
}

// buildConfig makes kentongand's configuration from the base and what the hub issued.
func (p *Provisioner) buildConfig(in provisioning.Install, ca, cert string) ([]byte, error) {
	m, err := baseMap(p.cfg.Base)
	if err != nil {
		return nil, err
	}
	m["device_id"] = in.DeviceID
	if in.Name != "" {
		m["name"] = in.Name
	}
	b := subMap(m, "broker")
	b["url"] = in.BrokerURL
	b["ca_file"] = ca
	b["cert_file"] = cert
	b["key_file"] = filepath.Join(p.cfg.StateDir, keyFile)
	delete(b, "username")
	delete(b, "password")
	st := subMap(m, "store")
	if st["dir"] == nil || st["dir"] == "" {
		st["dir"] = filepath.Join(p.cfg.StateDir, "outbox")
	}
	var buttons []map[string]any
	for _, bt := range in.Buttons {
		e := map[string]any{"name": bt.Name}
		if bt.Line != "" {
			e["line"] = bt.Line
		} else {
			e["pin"] = bt.Pin
		}
		if bt.Category != "" {
			e["category"] = bt.Category
		}
		if bt.HoldMS != 0 {
			e["hold_ms"] = bt.HoldMS
		}
		if bt.Kind != "" {
			e["kind"] = bt.Kind
		}
		buttons = append(buttons, e)
	}
	m["buttons"] = buttons
	var leds []map[string]any
	for _, l := range in.LEDs {
		e := map[string]any{"name": l.Name}
		if l.Line != "" {
			e["line"] = l.Line
		} else {
			e["pin"] = l.Pin
		}
		if l.Kind != "" {
			e["kind"] = l.Kind
		}
		if len(l.Patterns) > 0 {
			e["patterns"] = l.Patterns
		}
		leds = append(leds, e)
	}
	m["leds"] = leds
	if len(in.SMSAllow) > 0 {
		subMap(m, "modem")["allow"] = in.SMSAllow
	}
	if in.HeartbeatInterval != "" {
		if _, err := time.ParseDuration(in.HeartbeatInterval); err != nil {
			return nil, provisioning.Refuse(provisioning.CodeConfig, "heartbeat_interval %q: %v", in.HeartbeatInterval, err)
		}
		m["heartbeat_interval"] = in.HeartbeatInterval
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	head := fmt.Sprintf("# Written by kentongand --provision at %s for %s (%s/%s/RW %s/RT %s).\n# Do not edit: provision the kiosk again instead.\n",
		p.now().UTC().Format(time.RFC3339), in.DeviceID, in.Site.Kecamatan, in.Site.Kelurahan, in.Site.RW, in.Site.RT)
	return append([]byte(head), out...), nil
}

// Bye ends the session.
func (p *Provisioner) Bye(context.Context) error {
	p.log.Info("provisioning session closed")
	return nil
}

// ReadHardware reads the board model from /proc/device-tree/model and the CPU serial from
// /proc/cpuinfo under root. Boards without a device tree or a serial (a PC in a test rig) fall
// back to the DMI product name and /etc/machine-id.
func ReadHardware(root string) (provisioning.Hardware, error) {
	var hw provisioning.Hardware
	if b, err := os.ReadFile(filepath.Join(root, "proc/device-tree/model")); err == nil {
		hw.Board = strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
	} else if b, err := os.ReadFile(filepath.Join(root, "sys/class/dmi/id/product_name")); err == nil {
		hw.Board = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo")); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(k) == "Serial" {
				hw.Serial = strings.TrimSpace(v)
			}
		}
	}
	if hw.Serial == "" || strings.Trim(hw.Serial, "0") == "" {
		if b, err := os.ReadFile(filepath.Join(root, "etc/machine-id")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			hw.Serial = "machine-id:" + strings.TrimSpace(string(b))
		}
	}
	if hw.Serial == "" {
		return hw, errors.New("no CPU serial in /proc/cpuinfo and no /etc/machine-id: cannot identify this board")
	}
	return hw, nil
}

// testIncident is what the self-test sends: marked as a test, so the hub records it and never
// routes it to an agency.
func testIncident() mqtt.Incident {
	return mqtt.Incident{Source: mqtt.SourceButton, Test: true, Text: "self-test after provisioning"}
}

// ResetHoldTime is how long the first panic button must be held at boot for a physical reset.
const ResetHoldTime = 5 * time.Second

// ResetHeld reports whether the first panic button of cfg is held down for hold from now: the
// physical reset a technician does at boot to let a provisioned kiosk take another hub's
// credentials. Buttons are read on their pins, before the daemon runs.
func ResetHeld(ctx context.Context, cfg Config, hold time.Duration, log *slog.Logger) (bool, error) {
	var first *Button
	for i := range cfg.Buttons {
		if cfg.Buttons[i].Kind != KindTamper {
			first = &cfg.Buttons[i]
			break
		}
	}
	if first == nil {
		return false, nil
	}
	chip, sim, err := openChip(cfg.GPIO, log)
	if err != nil {
		return false, err
	}
	defer chip.Close()
	d := &Daemon{chip: chip, sim: sim}
	pin, err := d.openIn(first, gpio.WithPullUp)
	if err != nil {
		return false, fmt.Errorf("reset button %s: %w", first.Name, err)
	}
	defer pin.Close()
	deadline := time.Now().Add(hold)
	for {
		lv, err := pin.Read()
		if err != nil {
			return false, fmt.Errorf("reset button %s: %w", first.Name, err)
		}
		if lv != gpio.Low {
			return false, nil
		}
		if time.Now().After(deadline) {
			return true, nil
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return false, ctx.Err()
		}
	}
}
