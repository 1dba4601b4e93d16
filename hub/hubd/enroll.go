package hubd

import (
	"context"
	"fmt"
	"net"
	"path/filepath"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/ingest"
	"github.com/kentongan/kentongan/hub/mochi"
)

// CADir is the hub CA's directory inside the data directory.
const CADir = "ca"

// provisioning is what Run builds for device enrollment before the bus and ingest exist; the
// service's callbacks reach them through these fields once they do.
type provisioning struct {
	svc       *enroll.Service
	ca        *enroll.CA
	ingest    *ingest.Service
	broker    *mochi.Broker
	deviceURL string
}

// openProvisioning loads (or at first start creates) the hub's CA and the enrollment service
// over the registry in store.
func (m *Main) openProvisioning(store enroll.Store, static []hub.Device) (*provisioning, error) {
	dir := filepath.Join(m.Config.DataDir, CADir)
	ca, created, err := enroll.LoadOrCreateCA(dir, m.Clock.Now())
	if err != nil {
		return nil, err
	}
	if created {
		m.Logger.Info("hub CA created; back up its directory with the database", "dir", dir)
	}
	p := &provisioning{ca: ca}
	p.svc, err = enroll.New(enroll.Options{
		Store:      store,
		CA:         ca,
		Clock:      m.Clock,
		Logger:     m.Logger.With("component", "enroll"),
		Registerer: m.registry,
		BrokerURL:  func() string { return p.deviceURL },
		Static:     static,
		OnEnrolled: func(d hub.Device) {
			if p.ingest == nil {
				return
			}
			m.markKnown(d.ID)
			if err := p.ingest.RegisterDevice(d); err != nil && hub.ErrorCode(err) != hub.CodeConflict {
				m.Logger.Error("enrolled device not registered with ingest", "device", d.ID, "err", err)
			} else if err != nil {
				// Re-provisioned: ingest keeps the entry it has until the hub restarts.
				m.Logger.Info("re-provisioned device keeps its ingest entry until restart", "device", d.ID)
			}
		},
		Disconnect: func(id string) int {
			if p.broker == nil {
				return 0
			}
			return p.broker.DisconnectDevice(id)
		},
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// enrolledDevices are the registry's devices that the config file does not list, for ingest.
func (p *provisioning) enrolledDevices(ctx context.Context, static []hub.Device, log func(msg string, args ...any)) ([]hub.Device, error) {
	ds, err := p.svc.Fleet(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("device registry: %w", err)
	}
	inConfig := map[string]bool{}
	for _, d := range static {
		inConfig[d.ID] = true
	}
	var out []hub.Device
	for _, d := range ds {
		if d.Source != enroll.SourceEnrolled {
			continue
		}
		if inConfig[d.ID] {
			log("device is both enrolled and in the config file; the config file's entry is used", "device", d.ID)
			continue
		}
		out = append(out, d.Device)
	}
	return out, nil
}

// serverHosts are the names the broker's certificate is valid for.
func (m *Main) serverHosts(listen string) (public string, hosts []string) {
	host, _, _ := net.SplitHostPort(listen)
	public = m.Config.MQTT.PublicHost
	if public == "" {
		public = host
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			public = "127.0.0.1"
			m.Logger.Warn("mqtt.public_host is not set: enrolled kiosks are told to reach the broker at 127.0.0.1; set it to the hub's name on the kiosks' network")
		}
	}
	return public, []string{public, "localhost", "127.0.0.1", "::1"}
}
