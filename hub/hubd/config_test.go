package hubd_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kentongan/kentongan/hub/hubd"
)

const goodConfig = `
data_dir: /var/lib/kentongan-hub
http:
  listen: 127.0.0.1:8081
mqtt:
  listen: 0.0.0.0:1884
ingest:
  batch_max: 128
  queue_size: 2048
devices:
  - id: ciakar-rw03
    name: Pos Ronda RW 03 Ciakar
    site: {kecamatan: Panongan, kelurahan: Ciakar, rw: "03", rt: "01", lat: -6.2745, lon: 106.5223}
  - id: kutabumi-rw07
`

func TestParseConfig(t *testing.T) {
	cfg, err := hubd.ParseConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/kentongan-hub" || cfg.HTTP.Listen != "127.0.0.1:8081" || cfg.MQTT.Listen != "0.0.0.0:1884" ||
		cfg.MQTT.BrokerURL != "" || cfg.Ingest.BatchMax != 128 || cfg.Ingest.QueueSize != 2048 {
		t.Errorf("config %+v", cfg)
	}
	if len(cfg.Devices) != 2 {
		t.Fatalf("devices %+v", cfg.Devices)
	}
	d := cfg.Devices[0]
	if d.ID != "ciakar-rw03" || d.Name != "Pos Ronda RW 03 Ciakar" || d.Site.Kecamatan != "Panongan" || d.Site.Kelurahan != "Ciakar" ||
		d.Site.RW != "03" || d.Site.RT != "01" || d.Site.Lat != -6.2745 || d.Site.Lon != 106.5223 {
		t.Errorf("device %+v", d)
	}

	empty, err := hubd.ParseConfig(nil)
	if err != nil {
		t.Fatalf("empty config: %v", err)
	}
	if def := hubd.DefaultConfig(); empty.DataDir != def.DataDir || empty.HTTP != def.HTTP || empty.MQTT != def.MQTT || empty.Ingest != def.Ingest {
		t.Errorf("empty config %+v, want defaults %+v", empty, def)
	}
	partial, err := hubd.ParseConfig([]byte("ingest:\n  batch_max: 64\n"))
	if err != nil || partial.Ingest.BatchMax != 64 || partial.Ingest.QueueSize != hubd.DefaultConfig().Ingest.QueueSize {
		t.Errorf("partial section: %+v, %v; want the other keys defaulted", partial.Ingest, err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "dta_dir: /x\n", "dta_dir: unknown key"},
		{"unknown nested key", "http:\n  lisen: :80\n", "http.lisen: unknown key"},
		{"unknown site key", "devices:\n  - id: a\n    site:\n      kelurhan: Ciakar\n", "devices[0].site.kelurhan: unknown key"},
		{"wrong type", "ingest:\n  batch_max: lots\n", "ingest.batch_max"},
		{"out of range", "ingest:\n  batch_max: 0\n", "ingest.batch_max"},
		{"queue size", "ingest:\n  queue_size: -1\n", "ingest.queue_size"},
		{"empty data dir", "data_dir: \"\"\n", "data_dir"},
		{"bad listen", "http:\n  listen: everywhere\n", "http.listen"},
		{"bad mqtt listen", "mqtt:\n  listen: \":99999\"\n", "mqtt.listen"},
		{"bad broker url", "mqtt:\n  broker_url: http://broker\n", "mqtt.broker_url"},
		{"negative connect burst", "mqtt:\n  connect_burst: -5\n", "mqtt.connect_burst"},
		{"device without id", "devices:\n  - id: a\n  - name: Pos tanpa id\n", "devices[1].id: missing"},
		{"invalid device id", "devices:\n  - id: Pos 1\n", "devices[0].id"},
		{"duplicate device", "devices:\n  - id: a\n  - id: b\n  - id: a\n", "devices[2].id: duplicate device id \"a\" (also devices[0])"},
		{"latitude", "devices:\n  - id: a\n    site: {lat: 100}\n", "devices[0].site.lat"},
		{"longitude", "devices:\n  - id: a\n    site: {lon: -200}\n", "devices[0].site.lon"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hubd.ParseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfigAndFlags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(path, []byte(goodConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	m := hubd.NewMain()
	if err := m.ParseFlags(context.Background(), []string{"--config", path, "--http", "127.0.0.1:0", "--broker", "tcp://broker.local:1883"}); err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if c.HTTP.Listen != "127.0.0.1:0" || c.MQTT.BrokerURL != "tcp://broker.local:1883" {
		t.Errorf("flags did not override: %+v", c)
	}
	if c.DataDir != "/var/lib/kentongan-hub" || c.MQTT.Listen != "0.0.0.0:1884" || len(c.Devices) != 2 || c.Ingest.BatchMax != 128 {
		t.Errorf("flags not given overrode the file: %+v", c)
	}
	if m.Demo {
		t.Errorf("Demo set without --demo")
	}

	m = hubd.NewMain()
	if err := m.ParseFlags(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if m.Config.DataDir != "./data" || m.Config.HTTP.Listen != ":8080" || m.Config.MQTT.Listen != ":1883" || len(m.Config.Devices) != 0 {
		t.Errorf("defaults %+v", m.Config)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("mqtt:\n  brokr_url: tcp://x:1883\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := hubd.NewMain().ParseFlags(context.Background(), []string{"--config", bad})
	if err == nil || !strings.Contains(err.Error(), "mqtt.brokr_url") || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad config file: %v, want the file and the key named", err)
	}
	if err := hubd.NewMain().ParseFlags(context.Background(), []string{"--config", filepath.Join(dir, "missing.yaml")}); err == nil {
		t.Errorf("missing config file accepted")
	}
	if err := hubd.NewMain().ParseFlags(context.Background(), []string{"--http", "nowhere"}); err == nil || !strings.Contains(err.Error(), "http.listen") {
		t.Errorf("bad --http: %v", err)
	}
	if err := hubd.NewMain().ParseFlags(context.Background(), []string{"stray"}); err == nil {
		t.Errorf("stray argument accepted")
	}

	// Devices added in code are checked by Run as if they were in the file.
	m = newHub(t, t.TempDir(), "dup", "dup")
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "devices[1].id") {
		t.Errorf("Run with duplicate devices: %v", err)
	}
}
