package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warthog618/go-gpiocdev"
	"golang.org/x/sys/unix"

	"github.com/kentongan/kentongan/test/vkiosk/guestapi"
)

// daemonConfigPath is where kentongand's configuration is written before each start.
const daemonConfigPath = "/etc/kentongand.yaml"

// maxSampleWindow bounds a sampling request so that a typo cannot hold the server for hours.
const maxSampleWindow = 60 * time.Second

type server struct {
	log        *slog.Logger
	chip       simChip
	kentongand string
	boot       time.Duration
	kernel     string

	// lineMu serialises sequences and pull writes: two interleaved sequences on one line would
	// make neither mean what its caller meant.
	lineMu sync.Mutex

	mu     sync.Mutex // serialises starting and stopping kentongand
	run    *daemonRun // the last start; nil before the first
	starts int
}

// daemonRun is one start of kentongand.
type daemonRun struct {
	n    int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited; err is set before
	err  error
	// unkillable is set (under server.mu) when the process survived SIGKILL.
	unkillable string
}

func newServer(log *slog.Logger, chip simChip, kentongand string, boot time.Duration) *server {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return &server{log: log, chip: chip, kentongand: kentongand, boot: boot, kernel: unix.ByteSliceToString(u.Release[:])}
}

func (s *server) serve() error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+guestapi.PathHealth, s.health)
	mux.HandleFunc("POST "+guestapi.PathPull, s.pull)
	mux.HandleFunc("GET "+guestapi.PathValue, s.value)
	mux.HandleFunc("POST "+guestapi.PathSequence, s.sequence)
	mux.HandleFunc("GET "+guestapi.PathSample, s.sample)
	mux.HandleFunc("POST "+guestapi.PathDaemonStart, s.daemonStart)
	mux.HandleFunc("POST "+guestapi.PathDaemonStop, s.daemonStop)
	mux.HandleFunc("GET "+guestapi.PathDaemonState, s.daemonState)
	mux.HandleFunc("POST "+guestapi.PathSelfTest, s.selfTest)
	mux.HandleFunc("POST "+guestapi.PathSerial, s.serial)
	mux.HandleFunc("POST "+guestapi.PathPowerOff, s.powerOff)
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(guestapi.Port))
	if err != nil {
		return fmt.Errorf("control server: %w", err)
	}
	s.log.Info("control server listening", "addr", ln.Addr())
	return (&http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}).Serve(ln)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, guestapi.Error{Error: err.Error()})
}

func (s *server) lineParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("line")
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("line %q is not a number", v)
	}
	if n < 0 || n >= s.chip.lines {
		return 0, fmt.Errorf("line %d: the chip has lines 0..%d", n, s.chip.lines-1)
	}
	return n, nil
}

func (s *server) health(w http.ResponseWriter, _ *http.Request) {
	ports, err := serialPorts(serialInfo)
	if err != nil {
		// The ports are a diagnostic: a harness that needs one says so when it is missing.
		s.log.Warn("cannot list serial ports", "err", err)
	}
	writeJSON(w, http.StatusOK, guestapi.Health{
		Ready: true, Kernel: s.kernel, Chip: s.chip.name, DevName: s.chip.devName,
		Lines: s.chip.lines, BootMS: s.boot.Milliseconds(), Serial: ports,
	})
}

func (s *server) pull(w http.ResponseWriter, r *http.Request) {
	line, err := s.lineParam(r)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	p := r.URL.Query().Get("pull")
	if p != guestapi.PullUp && p != guestapi.PullDown {
		fail(w, http.StatusBadRequest, fmt.Errorf("pull %q is neither %q nor %q", p, guestapi.PullUp, guestapi.PullDown))
		return
	}
	s.lineMu.Lock()
	defer s.lineMu.Unlock()
	if err := s.chip.setPull(line, p); err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func readValue(fd int) (bool, error) {
	var b [4]byte
	// sysfs renders the attribute afresh on every read at offset 0.
	n, err := unix.Pread(fd, b[:], 0)
	if err != nil {
		return false, err
	}
	if n < 1 || (b[0] != '0' && b[0] != '1') {
		return false, fmt.Errorf("unexpected value %q", b[:n])
	}
	return b[0] == '1', nil
}

func (s *server) openValue(line int) (int, error) {
	p, err := s.chip.lineAttr(line, "value")
	if err != nil {
		return -1, err
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", p, err)
	}
	return fd, nil
}

func (s *server) value(w http.ResponseWriter, r *http.Request) {
	line, err := s.lineParam(r)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	fd, err := s.openValue(line)
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	defer unix.Close(fd)
	v, err := readValue(fd)
	if err != nil {
		fail(w, http.StatusInternalServerError, fmt.Errorf("read line %d: %w", line, err))
		return
	}
	writeJSON(w, http.StatusOK, guestapi.Value{Line: line, Value: v})
}

func (s *server) sequence(w http.ResponseWriter, r *http.Request) {
	var seq guestapi.Sequence
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&seq); err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("decode sequence: %w", err))
		return
	}
	if err := seq.Validate(s.chip.lines); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	s.lineMu.Lock()
	defer s.lineMu.Unlock()
	res := guestapi.SequenceResult{ActualMS: make([]float64, 0, len(seq.Steps))}
	for i, st := range seq.Steps {
		start := time.Now()
		if err := s.chip.setPull(seq.Line, st.Pull); err != nil {
			fail(w, http.StatusInternalServerError, fmt.Errorf("step %d: %w", i, err))
			return
		}
		// A caller that gave up must not leave the line held for minutes.
		select {
		case <-time.After(time.Duration(st.MS) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		res.ActualMS = append(res.ActualMS, float64(time.Since(start).Microseconds())/1000)
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) sample(w http.ResponseWriter, r *http.Request) {
	line, err := s.lineParam(r)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	window := time.Duration(ms) * time.Millisecond
	if err != nil || window <= 0 || window > maxSampleWindow {
		fail(w, http.StatusBadRequest, fmt.Errorf("ms %q: want 1..%d", r.URL.Query().Get("ms"), maxSampleWindow.Milliseconds()))
		return
	}
	fd, err := s.openValue(line)
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	defer unix.Close(fd)
	out := guestapi.Samples{Line: line}
	start := time.Now()
	last, err := readValue(fd)
	if err != nil {
		fail(w, http.StatusInternalServerError, fmt.Errorf("read line %d: %w", line, err))
		return
	}
	out.Initial, out.Reads = last, 1
	for {
		time.Sleep(time.Millisecond)
		at := time.Since(start)
		if at >= window {
			out.Duration = at
			break
		}
		if r.Context().Err() != nil {
			return // the caller is gone
		}
		v, err := readValue(fd)
		if err != nil {
			fail(w, http.StatusInternalServerError, fmt.Errorf("read line %d: %w", line, err))
			return
		}
		out.Reads++
		if v != last {
			out.Changes = append(out.Changes, guestapi.Change{At: at, Value: v})
			last = v
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) state() guestapi.DaemonState {
	r := s.run
	if r == nil {
		return guestapi.DaemonState{}
	}
	if r.unkillable != "" {
		return guestapi.DaemonState{Running: true, PID: r.cmd.Process.Pid, Exit: r.unkillable}
	}
	select {
	case <-r.done:
		exit := "exited"
		if r.err != nil {
			exit = r.err.Error()
		}
		return guestapi.DaemonState{Exit: exit}
	default:
		return guestapi.DaemonState{Running: true, PID: r.cmd.Process.Pid}
	}
}

func (s *server) daemonState(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.state())
}

// stopLocked ends a running kentongand: SIGTERM lets it switch its LEDs off and say goodbye to
// the hub; SIGKILL follows if it hangs.
func (s *server) stopLocked() {
	r := s.run
	if r == nil || r.unkillable != "" {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		return
	case <-time.After(20 * time.Second):
	}
	s.log.Warn("kentongand ignored SIGTERM; killing it", "tasks", tasks(r.cmd.Process.Pid))
	_ = r.cmd.Process.Kill()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		// Only a task asleep in the kernel survives SIGKILL: say where, and keep serving.
		r.unkillable = "unkillable: " + tasks(r.cmd.Process.Pid)
		s.log.Error("kentongand survived SIGKILL", "tasks", r.unkillable)
	}
}

// tasks describes a process's threads as the kernel sees them: state, where each sleeps, and its
// kernel stack, for a daemon that does not end.
func tasks(pid int) string {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range ents {
		stat, _ := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		wchan, _ := os.ReadFile(filepath.Join(dir, e.Name(), "wchan"))
		stack, _ := os.ReadFile(filepath.Join(dir, e.Name(), "stack"))
		state := ""
		if _, after, ok := strings.Cut(string(stat), ") "); ok && after != "" {
			state = after[:1]
		}
		fmt.Fprintf(&b, "[tid %s state %s wchan %s stack %q] ", e.Name(), state, wchan, stack)
	}
	return b.String()
}

func (s *server) daemonStop(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	writeJSON(w, http.StatusOK, s.state())
}

func (s *server) daemonStart(w http.ResponseWriter, r *http.Request) {
	cfg, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("read config: %w", err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	// Every start finds every button released, whatever the previous run left pulled down.
	s.lineMu.Lock()
	for i := range s.chip.lines {
		if err := s.chip.setPull(i, guestapi.PullUp); err != nil {
			s.lineMu.Unlock()
			fail(w, http.StatusInternalServerError, err)
			return
		}
	}
	s.lineMu.Unlock()
	if err := os.WriteFile(daemonConfigPath, cfg, 0o600); err != nil {
		fail(w, http.StatusInternalServerError, fmt.Errorf("write kentongand config: %w", err))
		return
	}
	if s.run != nil && s.run.unkillable != "" {
		fail(w, http.StatusConflict, fmt.Errorf("the previous kentongand is still there, %s", s.run.unkillable))
		return
	}
	s.starts++
	cmd := exec.Command(s.kentongand, "--config", daemonConfigPath)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	if err := cmd.Start(); err != nil {
		fail(w, http.StatusInternalServerError, fmt.Errorf("start kentongand: %w", err))
		return
	}
	run := &daemonRun{n: s.starts, cmd: cmd, done: make(chan struct{})}
	s.run = run
	go func() {
		run.err = cmd.Wait()
		close(run.done)
		s.log.Info("kentongand ended", "run", run.n, "err", run.err)
	}()
	s.log.Info("kentongand started", "run", run.n, "pid", cmd.Process.Pid)
	writeJSON(w, http.StatusOK, s.state())
}

func (s *server) powerOff(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.stopLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	go func() {
		time.Sleep(100 * time.Millisecond) // let the answer leave
		powerOff()
	}()
}

// selfTest proves the path kentongand's gpiocdev backend takes, without kentongand: a line
// requested through the character device with pull-up and both-edge events sees a falling and
// a rising edge, with kernel timestamps, when the simulator pulls it down and up.
func (s *server) selfTest(w http.ResponseWriter, r *http.Request) {
	line, err := s.lineParam(r)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	s.lineMu.Lock()
	defer s.lineMu.Unlock()
	var debounce time.Duration
	if v := r.URL.Query().Get("debounce_ms"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 || ms > 10_000 {
			fail(w, http.StatusBadRequest, fmt.Errorf("debounce_ms %q: want 0..10000", v))
			return
		}
		debounce = time.Duration(ms) * time.Millisecond
	}
	res, err := s.runSelfTest(r.Context(), line, debounce)
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) runSelfTest(ctx context.Context, line int, debounce time.Duration) (guestapi.SelfTest, error) {
	res := guestapi.SelfTest{Chip: s.chip.name, Line: line, KernelTimestamps: true}
	chip, err := gpiocdev.NewChip(s.chip.name, gpiocdev.WithConsumer("vkiosk-selftest"))
	if err != nil {
		return res, fmt.Errorf("open %s: %w", s.chip.name, err)
	}
	defer chip.Close()
	info, err := chip.LineInfo(line)
	if err != nil {
		return res, fmt.Errorf("%s line %d info: %w", s.chip.name, line, err)
	}
	res.Name = info.Name
	events := make(chan gpiocdev.LineEvent, 16)
	opts := []gpiocdev.LineReqOption{gpiocdev.AsInput, gpiocdev.WithPullUp, gpiocdev.WithBothEdges,
		gpiocdev.WithEventHandler(func(e gpiocdev.LineEvent) {
			select {
			case events <- e:
			default:
			}
		})}
	if debounce > 0 {
		opts = append(opts, gpiocdev.WithDebounce(debounce))
	}
	l, err := chip.RequestLine(line, opts...)
	if err != nil {
		return res, fmt.Errorf("request %s line %d: %w", s.chip.name, line, err)
	}
	defer l.Close()
	if v, err := l.Value(); err != nil || v != 1 {
		return res, fmt.Errorf("%s line %d with pull-up reads %d (err %v), want 1", s.chip.name, line, v, err)
	}
	for _, p := range []string{guestapi.PullDown, guestapi.PullUp} {
		if err := s.chip.setPull(line, p); err != nil {
			return res, err
		}
		select {
		case e := <-events:
			kind := "rising"
			if e.Type == gpiocdev.LineEventFallingEdge {
				kind = "falling"
			}
			res.Edges = append(res.Edges, kind)
			if e.Timestamp == 0 {
				res.KernelTimestamps = false
			}
		case <-time.After(10 * time.Second):
			return res, fmt.Errorf("%s line %d: no edge within 10s after %s", s.chip.name, line, p)
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	if len(res.Edges) == 0 {
		return res, errors.New("no edges")
	}
	return res, nil
}
