package daemon

import "testing"

// FuzzParseConfig: the kiosk's config is written by the provisioning cable from what a
// technician's laptop sent; a broken one must be refused with a reason, and one that is
// accepted must be valid, with defaults applied.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(minimalYAML))
	f.Add([]byte("device_id: ciakar-rw03\nbroker:\n  url: mqtts://hub.example:8883\n  ca_file: /etc/kentongan/ca.crt\ngpio:\n  driver: cdev\n  chip: gpiochip0\nstore:\n  dir: /var/lib/kentongand\nbuttons:\n  - name: kebakaran\n    line: GPIO17\n    category: fire\nleds:\n  - name: status\n    pin: 22\n"))
	f.Add([]byte("device_id: ciakar-rw03\nbuttons:\n  - name: a\n    pin: 1\n    line: GPIO1\n"))
	f.Add([]byte("device_id: \"../etc\"\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseConfig(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted a config that does not validate: %v", err)
		}
		again := c
		again.ApplyDefaults()
		if again.HeartbeatInterval != c.HeartbeatInterval || again.Name != c.Name {
			t.Fatalf("defaults were not applied: %+v", c)
		}
	})
}
