package fleet

import (
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/hubd"
)

// Kecamatan are Kabupaten Tangerang's 29 districts (shared/data/kabupaten-tangerang.md). The
// data gives no desa names, so simulated posts are numbered desa within them.
var Kecamatan = []string{"Balaraja", "Cikupa", "Cisauk", "Cisoka", "Curug", "Gunung Kaler", "Jambe", "Jayanti",
	"Kelapa Dua", "Kemiri", "Kosambi", "Kresek", "Kronjo", "Legok", "Mauk", "Mekar Baru", "Pagedangan", "Pakuhaji",
	"Panongan", "Pasar Kemis", "Rajeg", "Sepatan", "Sepatan Timur", "Sindang Jaya", "Solear", "Sukadiri",
	"Sukamulya", "Teluknaga", "Tigaraksa"}

// The regency's rough extent (approx.), for the posts' coordinates.
const (
	latMin, latMax = -6.4, -6.0
	lonMin, lonMax = 106.35, 106.75
)

// Regency-wide about 274 desa/kelurahan, 3,900 RW and 20,000 RT: about 9 desa per kecamatan,
// 14 RW per desa and 5 RT per RW.
const (
	desaPerKecamatan = 9
	rwPerDesa        = 14
	rtPerRW          = 5
)

// Devices returns the hub registry entries of n simulated kiosks named as DeviceID(prefix, i),
// spread over the regency's kecamatan, one per RT. heartbeat sets each device's supervision to
// three heartbeats, as the hub's default does for kentongand's 30 s; 0 leaves the hub's default.
func Devices(prefix string, n int, heartbeat time.Duration, seed uint64) []hubd.DeviceConfig {
	if prefix == "" {
		prefix = DefaultDevicePrefix
	}
	rnd := rand.New(rand.NewPCG(seed, seed+2))
	out := make([]hubd.DeviceConfig, n)
	for i := range out {
		kec := i % len(Kecamatan)
		j := i / len(Kecamatan) // the post's number within its kecamatan
		rt := j%rtPerRW + 1
		rw := (j/rtPerRW)%rwPerDesa + 1
		desa := (j/(rtPerRW*rwPerDesa))%desaPerKecamatan + 1
		out[i] = hubd.DeviceConfig{
			ID:   DeviceID(prefix, i),
			Name: fmt.Sprintf("Pos Ronda RW %02d %s", rw, Kecamatan[kec]),
			Site: hub.Site{
				Kecamatan: Kecamatan[kec],
				Kelurahan: fmt.Sprintf("Desa %s %d", Kecamatan[kec], desa),
				RW:        fmt.Sprintf("%02d", rw),
				RT:        fmt.Sprintf("%02d", rt),
				Lat:       latMin + rnd.Float64()*(latMax-latMin),
				Lon:       lonMin + rnd.Float64()*(lonMax-lonMin),
			},
		}
		if heartbeat > 0 {
			out[i].Supervision = 3 * heartbeat
		}
	}
	return out
}

// HubConfig is the part of a hub configuration file (hub/hubd.Config) a simulation sets.
type HubConfig struct {
	DataDir string
	HTTP    string // listen address; "" for the hub's default
	MQTT    string // the embedded broker's plain listener; "" for the hub's default
	Devices []hubd.DeviceConfig
}

type hubYAML struct {
	DataDir string              `yaml:"data_dir,omitempty"`
	HTTP    *listenYAML         `yaml:"http,omitempty"`
	MQTT    *mqttYAML           `yaml:"mqtt,omitempty"`
	Devices []hubd.DeviceConfig `yaml:"devices"`
}

type listenYAML struct {
	Listen string `yaml:"listen"`
}

type mqttYAML struct {
	Listen    string `yaml:"listen,omitempty"`
	TLSListen string `yaml:"tls_listen"`
}

// Marshal returns the configuration as YAML the hub reads, checked by the hub's own parser.
func (c HubConfig) Marshal() ([]byte, error) {
	y := hubYAML{DataDir: c.DataDir, Devices: c.Devices,
		// Simulated kiosks use the plain listener; the TLS one would only cost a port.
		MQTT: &mqttYAML{Listen: c.MQTT, TLSListen: "off"}}
	if c.HTTP != "" {
		y.HTTP = &listenYAML{Listen: c.HTTP}
	}
	b, err := yaml.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("hub config: %w", err)
	}
	if _, err := hubd.ParseConfig(b); err != nil {
		return nil, fmt.Errorf("hub config: the hub would refuse it: %w", err)
	}
	return b, nil
}

// WriteFile writes the configuration to path.
func (c HubConfig) WriteFile(path string) error {
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("hub config: %w", err)
	}
	return nil
}
