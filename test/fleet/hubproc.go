package fleet

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the hub's database, read after a drain

	"github.com/kentongan/kentongan/hub/hubd"
)

// ErrHub reports a hub process that did not start or answer as expected.
var ErrHub = errors.New("hub process")

// HubProcess is a kentongan-hub binary run as a separate process, so that its memory and CPU
// time are its own.
type HubProcess struct {
	Dir       string // its data directory
	BrokerURL string // the embedded broker, tcp://127.0.0.1:port
	HTTPAddr  string
	LogPath   string

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartHub runs binary with a configuration registering devices, in a fresh data directory
// under dir, on free loopback ports, and returns once it is listening. Its log goes to
// dir/hub.log.
func StartHub(ctx context.Context, binary, dir string, devices []hubd.DeviceConfig) (*HubProcess, error) {
	data := filepath.Join(dir, "data")
	cfg := HubConfig{DataDir: data, HTTP: "127.0.0.1:0", MQTT: "127.0.0.1:0", Devices: devices}
	cfgPath := filepath.Join(dir, "hub.yaml")
	if err := cfg.WriteFile(cfgPath); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "hub.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start hub: %w", err)
	}
	defer logf.Close()
	// The hub writes its log straight to the file: through a pipe, a reader that falls behind
	// would block the hub's logging, and with it the hub.
	cmd := exec.Command(binary, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start hub %s: %w", binary, err)
	}
	h := &HubProcess{Dir: data, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		h.err = cmd.Wait()
		close(h.done)
	}()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if line := runningLine(logPath); line != "" {
			h.HTTPAddr, h.BrokerURL = logField(line, "http"), logField(line, "broker")
			return h, nil
		}
		select {
		case <-h.done:
			return nil, fmt.Errorf("%w: %s exited before listening (%v); log: %s", ErrHub, binary, h.err, tail(logPath))
		case <-deadline.C:
			_ = h.Stop()
			return nil, fmt.Errorf("%w: %s not listening in time; log: %s", ErrHub, binary, tail(logPath))
		case <-ctx.Done():
			_ = h.Stop()
			return nil, fmt.Errorf("start hub: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// runningLine returns the hub's "running" log line, which names its addresses, once written.
func runningLine(logPath string) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, `msg="kentongan-hub running"`) {
			return strings.TrimRight(line, "\n")
		}
	}
	return ""
}

// logField returns key's value in a slog text line.
func logField(line, key string) string {
	_, rest, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, " ")
	return strings.Trim(v, `"`)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Pid is the hub's process ID.
func (h *HubProcess) Pid() int { return h.cmd.Process.Pid }

// Stop ends the hub with SIGTERM (it commits and acks what it holds), and kills it if it has
// not gone within 30 s.
func (h *HubProcess) Stop() error {
	select {
	case <-h.done:
		return nil
	default:
	}
	_ = h.cmd.Process.Signal(os.Interrupt)
	select {
	case <-h.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
		return fmt.Errorf("%w: did not stop on SIGTERM within 30s; killed", ErrHub)
	}
}

// RSSKiB is the hub's resident memory (VmRSS).
func (h *HubProcess) RSSKiB() (int64, error) { return RSSKiB(h.Pid()) }

// CPUTime is the hub's user plus system CPU time so far.
func (h *HubProcess) CPUTime() (time.Duration, error) { return CPUTime(h.Pid()) }

// RSSKiB reads a process's resident memory from /proc/PID/status.
func RSSKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("read rss of %d: no VmRSS line", pid)
}

// clockTick is the kernel's USER_HZ, 100 on every Linux architecture Go supports here.
const clockTick = 10 * time.Millisecond

// CPUTime reads a process's utime+stime from /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	// The command name may hold spaces and parentheses; the fields after its last ')' are
	// fixed: state is field 3, utime 14 and stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("read cpu time of %d: malformed stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("read cpu time of %d: malformed stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("read cpu time of %d: %w", pid, err)
	}
	return time.Duration(u+s) * clockTick, nil
}

// Metric sums the hub's Prometheus samples named name whose labels contain every one of
// labels (such as `kind="heartbeat"`).
func (h *HubProcess) Metric(ctx context.Context, name string, labels ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.HTTPAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("hub metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%w: /metrics: %s", ErrHub, resp.Status)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("hub metric %s: %w", name, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// DBState is the hub database files' sizes and modification times; two equal states mean no
// commit reached the files in between.
type DBState struct {
	Size, WALSize   int64
	MTime, WALMTime time.Time
}

// DBState stats the hub's SQLite file and its write-ahead log.
func (h *HubProcess) DBState() (DBState, error) {
	var s DBState
	db := filepath.Join(h.Dir, hubd.DBFile)
	fi, err := os.Stat(db)
	if err != nil {
		return s, fmt.Errorf("hub database: %w", err)
	}
	s.Size, s.MTime = fi.Size(), fi.ModTime()
	if fi, err := os.Stat(db + "-wal"); err == nil {
		s.WALSize, s.WALMTime = fi.Size(), fi.ModTime()
	}
	return s, nil
}

// TicketIncidents returns the incident ID of every ticket in the hub's database, read through a
// read-only connection (the hub may still run). A ticket per incident: the count of a repeated
// incident ID is its number of tickets.
func (h *HubProcess) TicketIncidents(ctx context.Context) (map[string]int, error) {
	dsn := "file:" + filepath.Join(h.Dir, hubd.DBFile) + "?mode=ro&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open hub database: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT incident_id FROM tickets`)
	if err != nil {
		return nil, fmt.Errorf("read tickets: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read tickets: %w", err)
		}
		out[id]++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tickets: %w", err)
	}
	return out, nil
}
