package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kentongan/kentongan/test/vkiosk/guestapi"
)

func TestLoadConfigFillsDefaultsAndRefusesBadValues(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "init.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := loadConfig(write(`{"modules": ["/lib/modules/configfs.ko", "/lib/modules/gpio-sim.ko"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Modules) != 2 || cfg.Lines != 32 || cfg.Interface != "eth0" ||
		cfg.Address != "10.0.2.15/24" || cfg.Kentongand != "/bin/kentongand" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	for body, want := range map[string]string{
		`{"lines": 5000}`: "lines 5000 out of range",
		`{"lines": -2}`:   "lines -2 out of range",
		`{"lines": "x"}`:  "parse init config",
	} {
		if _, err := loadConfig(write(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", body, err, want)
		}
	}
	if _, err := loadConfig(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "read init config") {
		t.Errorf("missing file: error %v", err)
	}
}

func TestSetUpRefusesABadAddress(t *testing.T) {
	for _, cidr := range []string{"10.0.2.15", "fe80::1/64", "nonsense"} {
		err := setUp("lo", cidr)
		if err == nil || !strings.Contains(err.Error(), "not an IPv4 CIDR") {
			t.Errorf("%s: error %v", cidr, err)
		}
	}
}

func TestParseSerialInfoListsPortsWithAUART(t *testing.T) {
	const info = `serinfo:1.0 driver revision:
0: uart:16550A port:000003F8 irq:4 tx:1093 rx:0 RTS|DTR
1: uart:16550A port:000002F8 irq:3 tx:4 rx:10
2: uart:unknown port:000003E8 irq:4
3: uart:unknown port:000002E8 irq:3
`
	ports, err := parseSerialInfo(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 || ports[1].Name != "ttyS1" || ports[1].UART != "16550A" ||
		ports[1].Port != "000002F8" || ports[1].IRQ != 3 || ports[0].Name != "ttyS0" {
		t.Fatalf("ports %+v, want ttyS0 and ttyS1 with their UARTs", ports)
	}
}

func TestSerialRefusesBadRequests(t *testing.T) {
	s := &server{log: slog.New(slog.DiscardHandler)}
	for query, want := range map[string]string{
		"port=ttyS1":                  `ms ""`,
		"port=ttyS1&ms=0":             `ms "0"`,
		"port=ttyS1&ms=60001":         `ms "60001"`,
		"port=../sda&ms=100":          `port "../sda"`,
		"port=console&ms=100":         `port "console"`,
		"ms=100":                      `port ""`,
		"port=ttyS1%2F..%2Fsda&ms=10": "not a ttySN name",
	} {
		w := httptest.NewRecorder()
		s.serial(w, httptest.NewRequest(http.MethodPost, "/serial/exchange?"+query, strings.NewReader("AT\r")))
		var e guestapi.Error
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != http.StatusBadRequest || !strings.Contains(e.Error, want) {
			t.Errorf("%s: %d %s, want 400 saying %s", query, w.Code, w.Body, want)
		}
	}
}
