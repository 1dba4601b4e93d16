package hubd_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub/hubd"
)

const domainConfig = `
routing:
  file: /etc/kentongan/routing.yaml
  watch: 10s
deadlines:
  ack_emergency: 3m
  holidays: ["2026-03-19", "2026-03-20"]
supervision:
  interval: 2m
false_alarms:
  window: 168h
  max_rate: 0.3
webhooks:
  retry_initial: 5s
  supervisor_url: https://pengawas.example/alert
  supervisor_secret_env: KENTONGAN_SUPERVISOR_SECRET
devices:
  - id: ciakar-rw03
    rt_rw_heads: ["0812-3456-7890", "+6281311112222"]
    supervision: 5m
`

func TestParseDomainConfig(t *testing.T) {
	cfg, err := hubd.ParseConfig([]byte(domainConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routing.File != "/etc/kentongan/routing.yaml" || cfg.Routing.Watch != 10*time.Second ||
		cfg.Deadlines.AckEmergency != 3*time.Minute || cfg.Deadlines.WorkStart != "08:00" || len(cfg.Deadlines.Holidays) != 2 ||
		cfg.Supervision.Interval != 2*time.Minute || cfg.Supervision.Scan != 5*time.Second ||
		cfg.FalseAlarms.Window != 168*time.Hour || cfg.FalseAlarms.MaxRate != 0.3 || cfg.FalseAlarms.MinTickets != 4 ||
		cfg.Webhooks.RetryInitial != 5*time.Second || cfg.Webhooks.RetryMax != 30*time.Minute {
		t.Errorf("config %+v", cfg)
	}
	d := cfg.Devices[0].Device()
	if len(d.RTRWHeads) != 2 || d.SupervisionSec != 300 {
		t.Errorf("device %+v", d)
	}
	def := hubd.DefaultConfig()
	if def.Routing.File != "" || def.Supervision.Interval != 90*time.Second || def.Deadlines.AckEmergency != 5*time.Minute {
		t.Errorf("defaults %+v", def)
	}
}

func TestDomainConfigErrorsNameTheKey(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"holiday", "deadlines:\n  holidays: [\"19-03-2026\"]\n", "deadlines.holidays[0]"},
		{"working hours", "deadlines:\n  work_start: \"17:00\"\n", "deadlines.work_start"},
		{"negative deadline", "deadlines:\n  ack_emergency: -5m\n", "deadlines.ack_emergency"},
		{"duration", "supervision:\n  interval: sebentar\n", "supervision.interval"},
		{"short supervision", "supervision:\n  interval: 10ms\n", "supervision.interval"},
		{"rate", "false_alarms:\n  max_rate: 2\n", "false_alarms.max_rate"},
		{"min tickets", "false_alarms:\n  min_tickets: 0\n", "false_alarms.min_tickets"},
		{"retry order", "webhooks:\n  retry_initial: 1h\n  retry_max: 1m\n", "webhooks.retry_max"},
		{"attempts", "webhooks:\n  max_attempts: 0\n", "webhooks.max_attempts"},
		{"supervisor url", "webhooks:\n  supervisor_url: mailto:x@y\n  supervisor_secret: s\n", "webhooks.supervisor_url"},
		{"supervisor secret", "webhooks:\n  supervisor_url: https://x.example/\n", "supervisor_secret"},
		{"RT/RW head", "devices:\n  - id: a\n    rt_rw_heads: [\"Pak RT\"]\n", "devices[0].rt_rw_heads[0]"},
		{"unknown routing key", "routing:\n  fil: x.yaml\n", "routing.fil: unknown key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hubd.ParseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
