package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// fleet runs (d) connected-kiosk scale and (e) backlog drain with the fleet simulator,
// cmd/kentongan-sim, against the hub binary.
func fleet(ctx context.Context, cfg Config) ([]Row, error) {
	if _, err := os.Stat(filepath.Join(cfg.Root, "cmd", "kentongan-sim")); err != nil {
		return []Row{{Measurement: "d/e. fleet scale and backlog drain", Value: "not run: cmd/kentongan-sim is not in this tree yet"}}, nil
	}
	bin, cleanup, err := build(ctx, cfg, "./cmd/kentongan-hub", nil)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var rows []Row
	var first error
	if cfg.Only["d"] {
		kiosks, limit := "5000,15000", 20*time.Minute
		if cfg.Quick {
			kiosks, limit = "100,300", 3*time.Minute
		}
		r, err := scale(ctx, cfg, bin, kiosks, limit)
		rows = append(rows, r...)
		first = err
	}
	if cfg.Only["e"] {
		kiosks, queued := "20000", "10"
		if cfg.Quick {
			kiosks, queued = "200", "2"
		}
		r, err := drain(ctx, cfg, bin, kiosks, queued)
		rows = append(rows, r...)
		if first == nil {
			first = err
		}
	}
	return rows, first
}

type scaleResult struct {
	Kiosks                   int     `json:"kiosks"`
	HubRSSKiB                float64 `json:"hub_rss_kib"`
	RSSPerKioskKiB           float64 `json:"rss_per_kiosk_kib"`
	CPUPerHeartbeatUS        float64 `json:"cpu_per_heartbeat_us"`
	DBWritesDuringHeartbeats int64   `json:"db_writes_during_heartbeats"`
}

func scale(ctx context.Context, cfg Config, hubBin, kiosks string, limit time.Duration) ([]Row, error) {
	out, err := runSim(ctx, cfg, limit, "scale", "-kiosks", kiosks, "-hub", hubBin, "-json")
	if err != nil {
		return nil, err
	}
	var res []scaleResult
	if err := decodeAll(out, &res); err != nil {
		return nil, fmt.Errorf("kentongan-sim scale output: %w", err)
	}
	if len(res) == 0 {
		return nil, errors.New("kentongan-sim scale printed no result")
	}
	largest := res[0]
	for _, r := range res {
		if r.Kiosks > largest.Kiosks {
			largest = r
		}
	}
	var rows []Row
	for _, r := range res {
		row := Row{Measurement: fmt.Sprintf("d. hub RSS per connected kiosk at %d kiosks (hub RSS %.0f MiB)", r.Kiosks, r.HubRSSKiB/1024), Value: fmt.Sprintf("%.1f KiB", r.RSSPerKioskKiB)}
		if r.Kiosks == largest.Kiosks {
			row.Goal, row.Met = "≤ 30 KiB", met(r.RSSPerKioskKiB <= 30)
		}
		rows = append(rows, row,
			Row{Measurement: fmt.Sprintf("d. hub CPU per heartbeat at %d kiosks", r.Kiosks), Value: fmt.Sprintf("%.1f µs", r.CPUPerHeartbeatUS)},
			Row{Measurement: fmt.Sprintf("d. DB writes during heartbeats at %d kiosks", r.Kiosks), Value: fmt.Sprint(r.DBWritesDuringHeartbeats), Goal: "0", Met: met(r.DBWritesDuringHeartbeats == 0)})
	}
	return rows, nil
}

type drainResult struct {
	Incidents  int64   `json:"incidents"`
	Tickets    int64   `json:"tickets"`
	Lost       int64   `json:"lost"`
	Duplicated int64   `json:"duplicated"`
	DrainSec   float64 `json:"drain_sec"`
}

func drain(ctx context.Context, cfg Config, hubBin, kiosks, queued string) ([]Row, error) {
	out, err := runSim(ctx, cfg, 20*time.Minute, "drain", "-kiosks", kiosks, "-queued", queued, "-hub", hubBin, "-json")
	if err != nil {
		return nil, err
	}
	var res []drainResult
	if err := decodeAll(out, &res); err != nil || len(res) == 0 {
		return nil, fmt.Errorf("kentongan-sim drain output %q: %v", out, err)
	}
	r := res[len(res)-1]
	return []Row{
		{Measurement: fmt.Sprintf("e. backlog drain, %s kiosks × %s queued (%d incidents)", kiosks, queued, r.Incidents), Value: fmt.Sprintf("%.1f s", r.DrainSec), Goal: "≤ 30 s", Met: met(r.DrainSec <= 30)},
		{Measurement: "e. backlog drain: tickets, lost, duplicated", Value: fmt.Sprintf("%d, %d, %d", r.Tickets, r.Lost, r.Duplicated), Goal: "0 lost, 0 duplicated", Met: met(r.Lost == 0 && r.Duplicated == 0 && r.Tickets == r.Incidents)},
	}, nil
}

// runSim runs `go run ./cmd/kentongan-sim args…` in the module root and returns its stdout.
func runSim(ctx context.Context, cfg Config, limit time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./cmd/kentongan-sim"}, args...)...)
	cmd.Dir = cfg.Root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kentongan-sim %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.String(), 5))
	}
	return stdout.Bytes(), nil
}

// decodeAll reads a stream of JSON values, each an object or an array of objects, into out.
func decodeAll[T any](data []byte, out *[]T) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
			var vs []T
			if err := json.Unmarshal(raw, &vs); err != nil {
				return err
			}
			*out = append(*out, vs...)
			continue
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		*out = append(*out, v)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// build compiles pkg into a temporary directory with the extra environment env and returns
// the binary's path and a function that removes it.
func build(ctx context.Context, cfg Config, pkg string, env []string, flags ...string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "kentongan-bench-bin-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"build", "-o", bin}, flags...), pkg)...)
	cmd.Dir = cfg.Root
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("go build %s: %w: %s", pkg, err, lastLines(string(out), 5))
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}
