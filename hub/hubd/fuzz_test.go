package hubd_test

import (
	"testing"

	"github.com/kentongan/kentongan/hub/hubd"
)

// FuzzParseConfig: whatever the hub's config file holds, loading it fails with an error or
// yields a configuration that Run's own validation accepts, never a panic at start-up.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("data_dir: /var/lib/kentongan-hub\nhttp:\n  listen: \":8080\"\nmqtt:\n  listen: \":1883\"\n"))
	f.Add([]byte("ingest:\n  batch_max: 256\n  sms_lang: id\nsupervision:\n  interval: 90s\n"))
	f.Add([]byte("devices:\n  - id: ciakar-rw03\n    name: Pos RW 03 Ciakar\n    site: {kecamatan: Panongan, kelurahan: Ciakar}\n    rt_rw_heads: [\"081212345678\"]\n"))
	f.Add([]byte("mqtt:\n  broker_url: tcp://broker:1883\n  tls_listen: \"off\"\n"))
	f.Add([]byte("ingest: {batch_max: -1}\n"))
	f.Add([]byte("a: 1\n---\nb: 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := hubd.ParseConfig(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted a config that does not validate: %v", err)
		}
	})
}
