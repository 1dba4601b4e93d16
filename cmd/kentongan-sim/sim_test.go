package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/test/fleet"
)

var (
	buildOnce sync.Once
	hubBin    string
	buildErr  error
	buildDir  string
)

// hubBinaryForTest builds kentongan-hub once for the package's tests.
func hubBinaryForTest(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "kentongan-sim-test-")
		if buildErr != nil {
			return
		}
		hubBin = filepath.Join(buildDir, "kentongan-hub")
		cmd := exec.Command("go", "build", "-o", hubBin, "./cmd/kentongan-hub")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return hubBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func runSim(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDrainAtTinyScaleFindsOneTicketPerIncident(t *testing.T) {
	bin := hubBinaryForTest(t)
	code, out, errs := runSim(t, "drain", "-kiosks", "50", "-queued", "3", "-hub", bin, "-json", "-tmp", t.TempDir(),
		"-sms-share", "0.2")
	if code != exitOK {
		t.Fatalf("drain exited %d: %s%s", code, out, errs)
	}
	var r fleet.DrainResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("drain output %q: %v", out, err)
	}
	if r.Kiosks != 50 || r.QueuedEach != 3 || r.Incidents != 150 || r.Tickets != 150 || r.Lost != 0 || r.Duplicated != 0 ||
		r.DrainSec <= 0 || r.AcksPerSec <= 0 {
		t.Errorf("drain result %+v: want 150 incidents, 150 tickets, a positive time", r)
	}
	for _, key := range []string{"kiosks", "queued_each", "incidents", "tickets", "lost", "duplicated", "drain_sec", "acks_per_sec"} {
		if !strings.Contains(out, `"`+key+`":`) {
			t.Errorf("drain JSON lacks %q: %s", key, out)
		}
	}
}

func TestScaleAtTinyScaleMeasuresTheHub(t *testing.T) {
	bin := hubBinaryForTest(t)
	code, out, errs := runSim(t, "scale", "-kiosks", "50", "-hub", bin, "-json", "-tmp", t.TempDir(),
		"-heartbeat", "500ms", "-window", "2s", "-settle", "1s")
	if code != exitOK {
		t.Fatalf("scale exited %d: %s%s", code, out, errs)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	for _, n := range []int{50} {
		var r fleet.ScaleResult
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("scale output %q: %v", out, err)
		}
		// 2 s of heartbeats every 500 ms from n kiosks: about 4n, wide margins for a loaded machine.
		if r.Kiosks != n || r.HubRSSBaseKiB <= 0 || r.HubRSSKiB <= 0 || r.Heartbeats < int64(n) || r.Heartbeats > int64(10*n) ||
			r.CPUSec < 0 || r.CPUPerHeartbeatUS < 0 {
			t.Errorf("scale result %+v: not sane for %d kiosks", r, n)
		}
		if r.DBWritesDuringHeartbeats != 0 {
			t.Errorf("%d kiosks: the hub's database changed in %d seconds of heartbeats", n, r.DBWritesDuringHeartbeats)
		}
	}
	for _, key := range []string{"hub_rss_base_kib", "hub_rss_kib", "rss_per_kiosk_kib", "heartbeats", "cpu_sec",
		"cpu_per_heartbeat_us", "db_writes_during_heartbeats"} {
		if !strings.Contains(out, `"`+key+`":`) {
			t.Errorf("scale JSON lacks %q: %s", key, out)
		}
	}
}

func TestRunReportsEveryPressAcked(t *testing.T) {
	const n = 20
	m := hubd.NewMain()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.ParseFlags(context.Background(), []string{"--data", t.TempDir(), "--http", "127.0.0.1:0",
		"--mqtt", "127.0.0.1:0", "--mqtts", "off"}); err != nil {
		t.Fatal(err)
	}
	m.Config.Devices = fleet.Devices(fleet.DefaultDevicePrefix, n, 0, 1)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	code, out, errs := runSim(t, "run", "-broker", m.BrokerURL(), "-kiosks", "20", "-burst", "20:300ms",
		"-sms-share", "0.5", "-heartbeat", "200ms", "-duration", "10s", "-grace", "30s", "-seed", "1", "-json")
	if code != exitOK {
		t.Fatalf("run exited %d: %s%s", code, out, errs)
	}
	var r runResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("run output %q: %v", out, err)
	}
	if r.Incidents != n || r.Acked != n || r.Lost != 0 || r.Duplicated != 0 || r.P50MS <= 0 || r.MaxMS < r.P99MS {
		t.Errorf("run result %+v: want %d presses all acked with latencies", r, n)
	}
}

func TestRunExitsNonZeroOnLoss(t *testing.T) {
	// Nobody answers on this broker: a fleet that cannot connect must not report success.
	code, out, errs := runSim(t, "run", "-broker", "tcp://127.0.0.1:1", "-kiosks", "1", "-burst", "1:0",
		"-duration", "100ms", "-grace", "100ms", "-connect-timeout", "1s")
	if code == exitOK {
		t.Errorf("run against no broker exited 0: %s%s", out, errs)
	}
}

func TestHubconfigWritesAConfigTheHubReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.yaml")
	if code, out, errs := runSim(t, "hubconfig", "-kiosks", "30", "-o", path, "-mqtt", "127.0.0.1:1883"); code != exitOK {
		t.Fatalf("hubconfig exited %d: %s%s", code, out, errs)
	}
	cfg, err := hubd.LoadConfig(path)
	if err != nil {
		t.Fatalf("the hub refuses the config: %v", err)
	}
	if len(cfg.Devices) != 30 || cfg.Devices[29].ID != "sim-00030" || cfg.MQTT.Listen != "127.0.0.1:1883" {
		t.Errorf("config has %d devices (last %q), mqtt.listen %q", len(cfg.Devices), cfg.Devices[len(cfg.Devices)-1].ID, cfg.MQTT.Listen)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"fly"},
		{"run", "-rate", "fast"},
		{"run", "-rate", "1/s", "-burst", "1:1"},
		{"run", "-sms-share", "2"},
		{"run", "extra"},
		{"hubconfig", "-kiosks", "0"},
		{"scale", "-kiosks", "1,x", "-hub", "/bin/true"},
		{"scale", "-kiosks", "10"},
		{"drain", "-hub", "/nonexistent/kentongan-hub"},
		{"drain", "-queued", "0", "-hub", "/bin/true"},
	} {
		if code, _, errs := runSim(t, args...); code != exitUsage || errs == "" {
			t.Errorf("kentongan-sim %q exited %d (stderr %q), want %d with a message", args, code, errs, exitUsage)
		}
	}
	if code, out, _ := runSim(t, "-h"); code != exitOK || !strings.Contains(out, "kentongan-sim drain") {
		t.Errorf("-h exited %d: %q", code, out)
	}
	if code, _, errs := runSim(t, "drain", "-h"); code != exitOK || !strings.Contains(errs, "-queued") {
		t.Errorf("drain -h exited %d: %q", code, errs)
	}
}
