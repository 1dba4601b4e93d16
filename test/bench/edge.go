package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every Linux
// this runs on.
const clockTicks = 100

// edge measures (f) the kentongand binary's footprint: RSS and CPU idle with heartbeats and
// during a burst of presses, against a real hub; and stripped binary sizes for the Pis.
func edge(ctx context.Context, cfg Config) ([]Row, error) {
	idle, presses := 60*time.Second, 50
	if cfg.Quick {
		idle, presses = 3*time.Second, 5
	}
	var rows []Row
	r, err := edgeRun(ctx, cfg, idle, presses)
	rows = append(rows, r...)
	if err != nil {
		return rows, err
	}
	for _, t := range []struct{ name, arch, arm string }{{"arm6", "arm", "6"}, {"arm7", "arm", "7"}, {"arm64", "arm64", ""}} {
		env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + t.arch}
		if t.arm != "" {
			env = append(env, "GOARM="+t.arm)
		}
		bin, cleanup, err := build(ctx, cfg, "./cmd/kentongand", env, "-trimpath", "-ldflags=-s -w")
		if err != nil {
			return rows, err
		}
		st, err := os.Stat(bin)
		cleanup()
		if err != nil {
			return rows, err
		}
		mb := float64(st.Size()) / 1e6
		row := Row{Measurement: "f. kentongand stripped binary, " + t.name, Value: fmt.Sprintf("%.1f MB", mb)}
		if t.name == "arm6" {
			row.Goal, row.Met = "≤ 12 MB", met(mb <= 12)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

var reAdmin = regexp.MustCompile(`msg="kentongand started".* admin=(\S+)`)

func edgeRun(ctx context.Context, cfg Config, idle time.Duration, presses int) ([]Row, error) {
	const device = "bench-edge"
	bin, cleanup, err := build(ctx, cfg, "./cmd/kentongand", []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags=-s -w")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	m, hubDir, err := startHub(ctx, cfg, device)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(hubDir)
	defer m.Close()
	dir, err := os.MkdirTemp("", "kentongan-bench-edge-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The kiosk's defaults (30 s heartbeats), but short holds so that the burst is quick.
	conf := fmt.Sprintf(`device_id: %s
name: Pos bench
broker: {url: %q}
gpio: {driver: sim}
store: {dir: %q}
admin: {listen: "127.0.0.1:0"}
buttons:
  - {name: kebakaran, category: fire, pin: 27, hold_ms: 10, debounce_ms: 2, cancel_window_ms: 0}
leds:
  - {name: status, pin: 23}
`, device, m.BrokerURL(), filepath.Join(dir, "store"))
	confPath := filepath.Join(dir, "kentongand.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--config", confPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start kentongand: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	admin := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if mm := reAdmin.FindStringSubmatch(sc.Text()); mm != nil {
				select {
				case admin <- mm[1]:
				default:
				}
			}
		}
	}()
	var adminAddr string
	select {
	case adminAddr = <-admin:
	case <-time.After(20 * time.Second):
		return nil, errors.New("kentongand did not log its start within 20 s")
	}
	base := "http://" + adminAddr
	if err := waitConnected(base); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid

	// Idle: let start-up settle, then measure a window with heartbeats going.
	time.Sleep(min(idle/2, 5*time.Second))
	cpu0, err := cpuTicks(pid)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cpu1, err := cpuTicks(pid)
	if err != nil {
		return nil, err
	}
	idleCPU := 100 * float64(cpu1-cpu0) / clockTicks / time.Since(t0).Seconds()
	idleRSS, err := rssKiB(pid)
	if err != nil {
		return nil, err
	}

	// Burst: presses one after another, as fast as the admin API takes them.
	t1 := time.Now()
	for i := range presses {
		resp, err := http.Post(base+"/sim/buttons/kebakaran/press?hold_ms=20", "", nil)
		if err != nil {
			return nil, fmt.Errorf("press %d: %w", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("press %d: %s: %s", i, resp.Status, body)
		}
	}
	if err := waitQueueEmpty(base); err != nil {
		return nil, err
	}
	cpu2, err := cpuTicks(pid)
	if err != nil {
		return nil, err
	}
	burstSec := time.Since(t1).Seconds()
	burstCPU := 100 * float64(cpu2-cpu1) / clockTicks / burstSec
	burstRSS, err := rssKiB(pid)
	if err != nil {
		return nil, err
	}
	return []Row{
		{Measurement: fmt.Sprintf("f. kentongand RSS idle (%v window, 30 s heartbeats)", idle), Value: fmt.Sprintf("%.1f MiB", float64(idleRSS)/1024), Goal: "≤ 12 MiB", Met: met(idleRSS <= 12*1024)},
		{Measurement: "f. kentongand CPU idle, % of one core", Value: fmt.Sprintf("%.2f %%", idleCPU), Goal: "≤ 0.5 %", Met: met(idleCPU <= 0.5)},
		{Measurement: fmt.Sprintf("f. kentongand RSS after a burst of %d presses (%.1f s)", presses, burstSec), Value: fmt.Sprintf("%.1f MiB", float64(burstRSS)/1024), Goal: "≤ 12 MiB", Met: met(burstRSS <= 12*1024)},
		{Measurement: "f. kentongand CPU during the burst, % of one core", Value: fmt.Sprintf("%.1f %%", burstCPU)},
	}, nil
}

// cpuTicks is the user plus system CPU time of pid, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// The command name, in parentheses, may hold spaces: count fields after its end.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("read CPU time: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	return utime + stime, nil
}

// rssKiB is VmRSS of pid.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("read RSS: no VmRSS")
}

type adminStatus struct {
	Connected  bool `json:"connected"`
	QueueDepth int  `json:"queue_depth"`
}

func getStatus(base string) (adminStatus, error) {
	var st adminStatus
	resp, err := http.Get(base + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = jsonDecode(resp.Body, &st)
	return st, err
}

func waitConnected(base string) error {
	return waitStatus(base, "kiosk connected", func(st adminStatus) bool { return st.Connected })
}

func waitQueueEmpty(base string) error {
	return waitStatus(base, "kiosk outbox empty", func(st adminStatus) bool { return st.Connected && st.QueueDepth == 0 })
}

func waitStatus(base, what string, ok func(adminStatus) bool) error {
	deadline := time.Now().Add(30 * time.Second)
	var last adminStatus
	var err error
	for time.Now().Before(deadline) {
		if last, err = getStatus(base); err == nil && ok(last) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s: not within 30 s (last %+v, %v)", what, last, err)
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
