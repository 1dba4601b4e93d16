package fault

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/kentongan/kentongan/daemon/outbox"
	"github.com/kentongan/kentongan/drivers/modem/modemtest"
	"github.com/kentongan/kentongan/test/netproxy"
	"github.com/kentongan/kentongan/test/proc"
)

var (
	flagSeed   = flag.Int64("fault.seed", 0, "seed for the random timing of faults (0: from the clock); printed by each scenario")
	flagLong   = flag.Bool("fault.long", false, "the long form: many more trials per scenario, longer outages")
	flagReport = flag.String("fault.report", "", "write the markdown table of results to this file")
	flagTrials = flag.Int("fault.trials", 0, "trials per scenario instead of the form's count (0: the form's)")
)

var (
	rowsMu sync.Mutex
	rows   []Row
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if len(rows) > 0 {
		table := Table(rows)
		fmt.Printf("\n%s\n", table)
		if *flagReport != "" {
			if err := os.WriteFile(*flagReport, []byte(table), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "write %s: %v\n", *flagReport, err)
				code = 1
			}
		}
	}
	proc.Cleanup()
	os.Exit(code)
}

// binaries builds kentongand and kentongan-hub once per test run.
func binaries(t testing.TB) string {
	t.Helper()
	return proc.Build(t, "./cmd/kentongand", "./cmd/kentongan-hub")
}

// scenario is one fault scenario's run: its seed, random source and the reports made.
type scenario struct {
	t      *testing.T
	name   string
	seed   int64
	rnd    *rand.Rand
	ledger Ledger
	trials int
	texts  atomic.Int64
}

// newScenario derives the scenario's seed from -fault.seed (or the clock) and prints it, so that
// a failure can be replayed with the same timing.
func newScenario(t *testing.T, name string) *scenario {
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	t.Logf("%s: seed %d (replay: %s)", name, seed, replayCommand(t, seed))
	return &scenario{t: t, name: name, seed: seed, rnd: rand.New(rand.NewPCG(uint64(seed), 0x6b656e746f6e67))}
}

func replayCommand(t *testing.T, seed int64) string {
	long := ""
	if *flagLong {
		long = " -fault.long"
	}
	return fmt.Sprintf("go test -count=1 -run '^%s$' ./test/fault/ -args -fault.seed %d%s", t.Name(), seed, long)
}

// between returns a random duration in [lo, hi).
func (s *scenario) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rnd.Int64N(int64(hi-lo)))
}

// trialsFor picks the short or the long form's trial count.
func trialsFor(short, long int) int {
	if *flagTrials > 0 {
		return *flagTrials
	}
	if *flagLong {
		return long
	}
	return short
}

// finish checks the reports against the tickets, adds the scenario's row to the table and fails
// the test on any loss or duplicate.
func (s *scenario) finish(tickets []Ticket) Result {
	res := Check(s.ledger.Reports(), tickets)
	rowsMu.Lock()
	rows = append(rows, Row{Scenario: s.name, Trials: s.trials, Result: res, Seed: s.seed, Command: replayCommand(s.t, s.seed)})
	rowsMu.Unlock()
	s.t.Logf("%s: %d trials, %d reports (%d SMS), %d tickets, %d lost, %d duplicated", s.name, s.trials, res.Created, s.ledger.Count(KindSMS), res.Tickets, res.Lost, res.Duplicated)
	if !res.OK() {
		s.t.Errorf("%s (seed %d): %d lost, %d duplicated:\n%s", s.name, s.seed, res.Lost, res.Duplicated, strings.Join(res.Problems, "\n"))
	}
	return res
}

const (
	// startLogWait is how long a binary may take to log that it listens, under the load.
	startLogWait = 60 * time.Second
	// stopWait is how long a binary may take to shut down on SIGTERM.
	stopWait = 20 * time.Second
)

// startProc starts one of the binaries; with FAULT_LOG set its log is echoed.
func startProc(t testing.TB, name string, args ...string) *proc.Proc {
	t.Helper()
	return proc.StartWith(t, proc.Options{Echo: os.Getenv("FAULT_LOG") != ""}, filepath.Join(binaries(t), name), args...)
}

// vmRSS is the resident memory of the process in KiB, from /proc.
func vmRSS(p *proc.Proc) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return -1
}

var (
	reHTTP   = regexp.MustCompile(`msg="HTTP API listening".* addr=(\S+)`)
	reBroker = regexp.MustCompile(`msg="embedded MQTT broker listening".* addr=(\S+)`)
	reAdmin  = regexp.MustCompile(`msg="kentongand started".* admin=(\S+)`)
)

// fleet is a hub binary and kiosk binaries, the kiosks reaching the hub's broker through one
// proxy under the test's control.
type fleet struct {
	t      *testing.T
	s      *scenario
	dir    string
	hub    *proc.Proc
	http   string
	proxy  *netproxy.Proxy
	kiosks []*kiosk
	token  string
}

// kiosk is one kentongand binary with its simulated modem, which outlives the process as the
// real modem outlives a power cut of the Pi.
type kiosk struct {
	f         *fleet
	id        string
	dir       string // its store directory
	cfgPath   string
	sim       *modemtest.Sim
	reporters []string
	mu        sync.Mutex // guards p and admin, which a restart changes under the load
	p         *proc.Proc
	admin     string
	starts    int
}

func (k *kiosk) current() (*proc.Proc, string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.p, k.admin
}

// fleetOptions shape a fleet.
type fleetOptions struct {
	kiosks int
	// extra are more devices the hub knows, for kiosks the test runs in-process.
	extra []string
	// storeDir, if set, gives kiosk i's store directory (a tmpfs mount, say).
	storeDir func(i int) string
}

func newFleet(t *testing.T, s *scenario, o fleetOptions) *fleet {
	t.Helper()
	f := &fleet{t: t, s: s, dir: t.TempDir()}
	var hubCfg strings.Builder
	hubCfg.WriteString("devices:\n")
	for i := range o.kiosks {
		fmt.Fprintf(&hubCfg, "  - {id: fault-rw%02d, name: Pos Ronda RW %02d, site: {kecamatan: Panongan, kelurahan: Ciakar, rw: \"%02d\", rt: \"01\"}}\n", i+1, i+1, i+1)
	}
	for _, id := range o.extra {
		fmt.Fprintf(&hubCfg, "  - {id: %s, name: Pos %s, site: {kecamatan: Panongan, kelurahan: Ciakar, rw: \"09\", rt: \"01\"}}\n", id, id)
	}
	writeFile(t, filepath.Join(f.dir, "hub.yaml"), hubCfg.String())
	broker := f.startHub()
	p, err := netproxy.New(broker)
	if err != nil {
		t.Fatal(err)
	}
	f.proxy = p
	t.Cleanup(func() { p.Close() })
	for i := range o.kiosks {
		id := fmt.Sprintf("fault-rw%02d", i+1)
		dir := filepath.Join(f.dir, id)
		if o.storeDir != nil {
			dir = o.storeDir(i)
		}
		simOpts := modemtest.Options{}
		if os.Getenv("FAULT_LOG") != "" {
			simOpts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("modemsim", id)
		}
		sim, err := modemtest.New(simOpts)
		if err != nil {
			t.Fatalf("modem simulator: %v", err)
		}
		t.Cleanup(func() { sim.Close() })
		k := &kiosk{f: f, id: id, dir: dir, sim: sim,
			reporters: []string{fmt.Sprintf("+628123400%02d01", i+1), fmt.Sprintf("+628123400%02d02", i+1)}}
		k.cfgPath = writeFile(t, filepath.Join(f.dir, id+".yaml"), k.config())
		f.kiosks = append(f.kiosks, k)
		k.start()
	}
	return f
}

// startHub starts (or restarts) the hub on the fleet's data directory and returns its broker's
// address; a restart points the proxy at the new one.
func (f *fleet) startHub() string {
	f.t.Helper()
	f.hub = startProc(f.t, "kentongan-hub", "--config", filepath.Join(f.dir, "hub.yaml"), "--data", f.hubDir(), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0")
	f.http = f.hub.WaitLine(reHTTP, startLogWait)
	broker := f.hub.WaitLine(reBroker, startLogWait)
	if f.proxy != nil {
		f.proxy.SetTarget(broker)
	}
	return broker
}

func (f *fleet) hubDir() string { return filepath.Join(f.dir, "hub") }

func (k *kiosk) config() string {
	return fmt.Sprintf(`device_id: %s
name: Pos %s
broker:
  url: %s
  keepalive: 2s
  connect_retry_interval: 200ms
  max_reconnect_interval: 500ms
gpio:
  driver: sim
buttons:
  - {name: panik, category: medical, pin: 22, hold_ms: 40, debounce_ms: 10, cancel_window_ms: 0, chatter_edges: 1000, chatter_window_ms: 1}
leds:
  - {name: status, pin: 23}
store:
  dir: %s
admin:
  listen: 127.0.0.1:0
retry_interval: 1s
heartbeat_interval: 1s
modem:
  device: %s
  allow: [%s]
  rate_burst: 100000
  rate_every: 1ms
  command_timeout: 2s
  health_interval: 1s
`, k.id, k.id, k.f.proxy.URL(), k.dir, k.sim.Path(), strings.Join(k.reporters, ", "))
}

// start starts (or restarts) the kiosk's daemon and waits until its admin API listens.
func (k *kiosk) start() {
	k.f.t.Helper()
	p := startProc(k.f.t, "kentongand", "--config", k.cfgPath)
	admin := p.WaitLine(reAdmin, startLogWait)
	k.mu.Lock()
	k.p, k.admin = p, admin
	k.starts++
	k.mu.Unlock()
}

// pressResult is the admin API's answer to a press.
type pressResult struct {
	Raised     bool   `json:"raised"`
	IncidentID string `json:"incident_id"`
	Error      string `json:"error"`
}

// press presses the panic button through the admin API and records the incident it raised. It
// returns the answer, or an error when the daemon died or would not answer.
func (k *kiosk) press(ctx context.Context) (pressResult, error) {
	var res pressResult
	_, admin := k.current()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+admin+"/sim/buttons/panik/press?hold_ms=150", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &res); err != nil {
		return res, fmt.Errorf("press: %s: %s", resp.Status, body)
	}
	if res.IncidentID != "" {
		k.f.s.ledger.Add(Report{Key: res.IncidentID, Kind: KindButton, Device: k.id})
	}
	if resp.StatusCode/100 != 2 {
		return res, fmt.Errorf("press: %s: %s", resp.Status, res.Error)
	}
	if !res.Raised {
		return res, fmt.Errorf("press raised nothing: %s", body)
	}
	return res, nil
}

// text has the network deliver an emergency SMS carrying a unique token from one of the
// kiosk's RT heads, and records it.
func (k *kiosk) text() {
	k.f.t.Helper()
	s := k.f.s
	n := s.texts.Add(1)
	// The closing letter keeps token 1 from matching inside token 11.
	token := fmt.Sprintf("kode%sn%dz", strings.ReplaceAll(k.id, "-", ""), n)
	from := k.reporters[int(n)%len(k.reporters)]
	s.ledger.Add(Report{Key: token, Kind: KindSMS, Device: k.id, Reporter: from})
	if _, err := k.sim.Deliver(from, "DARURAT KEBAKARAN rumah di gang 3 "+token); err != nil {
		k.f.t.Errorf("deliver SMS: %v", err) // called from the load goroutine: no Fatal
	}
}

// kioskStatus is the part of GET /status the suite reads.
type kioskStatus struct {
	Connected  bool   `json:"connected"`
	QueueDepth int    `json:"queue_depth"`
	LEDState   string `json:"led_state"`
	Fault      string `json:"fault"`
	Incidents  []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"incidents"`
	SMSQueue []json.RawMessage `json:"sms_queue"`
}

func (k *kiosk) status() (kioskStatus, error) {
	var st kioskStatus
	_, admin := k.current()
	resp, err := http.Get("http://" + admin + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// settled reports whether everything the kiosk was given has reached the hub and come back: no
// incident pending, every press of ours shown with the hub's status, no SMS left on the SIM or
// waiting to be sent, and as many distinct receipts sent as SMS reports made.
func (k *kiosk) settled() (bool, string) {
	if p, _ := k.current(); p.Exited() {
		return false, k.id + " is not running"
	}
	st, err := k.status()
	if err != nil {
		return false, err.Error()
	}
	if st.QueueDepth != 0 || len(st.SMSQueue) != 0 {
		return false, fmt.Sprintf("%s: %d incidents pending, %d SMS to send (fault %q)", k.id, st.QueueDepth, len(st.SMSQueue), st.Fault)
	}
	if n := len(k.sim.Stored()) + k.sim.Backlog(); n != 0 {
		return false, fmt.Sprintf("%s: %d SMS parts still on the SIM", k.id, n)
	}
	shown := make(map[string]string)
	for _, in := range st.Incidents {
		shown[in.ID] = in.State
	}
	want := 0
	for _, r := range k.f.s.ledger.Reports() {
		if r.Device != k.id {
			continue
		}
		if r.Kind == KindSMS {
			want++
			continue
		}
		if s := shown[r.Key]; s == "" || s == "pending" {
			return false, fmt.Sprintf("%s: incident %s shows %q, want the hub's ack", k.id, r.Key, s)
		}
	}
	if got := len(receipts(k.sim.Sent())); got < want {
		return false, fmt.Sprintf("%s: %d distinct SMS receipts sent, want %d", k.id, got, want)
	}
	if st.LEDState == "pending" || st.LEDState == "fault" {
		return false, fmt.Sprintf("%s: LED shows %q (fault %q)", k.id, st.LEDState, st.Fault)
	}
	return true, ""
}

var reReceipt = regexp.MustCompile(`No tiket (\S+?)[.\s]`)

// receipts maps each ticket number a receipt named to the numbers it was sent to.
func receipts(sent []modemtest.Sent) map[string][]string {
	out := make(map[string][]string)
	for _, s := range sent {
		if m := reReceipt.FindStringSubmatch(s.Text); m != nil {
			out[m[1]] = append(out[m[1]], s.To)
		}
	}
	return out
}

// settle waits until every kiosk has settled or timeout passes; it reports what was still
// missing rather than failing, so that the check that follows counts what was lost.
func (f *fleet) settle(timeout time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	last := time.Now()
	for {
		var waiting []string
		for _, k := range f.kiosks {
			if ok, why := k.settled(); !ok {
				waiting = append(waiting, why)
			}
		}
		if len(waiting) == 0 {
			f.t.Logf("settled in %v", time.Since(deadline.Add(-timeout)).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			f.t.Errorf("not settled after %v: %s", timeout, strings.Join(waiting, "; "))
			for _, k := range f.kiosks {
				cmds := k.sim.Commands()
				f.t.Logf("%s: the modem's last commands: %q", k.id, cmds[max(0, len(cmds)-20):])
			}
			return
		}
		if time.Since(last) > 10*time.Second {
			f.t.Logf("still settling: %s", strings.Join(waiting, "; "))
			last = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finish stops the fleet, reads every kiosk's outbox and the hub's database, checks that each
// report is exactly one ticket and that every SMS reporter got a receipt naming it.
func (f *fleet) finish() Result {
	f.t.Helper()
	for _, k := range f.kiosks {
		p, _ := k.current()
		p.Stop(stopWait)
	}
	f.hub.Stop(stopWait)
	for _, k := range f.kiosks {
		readOutbox(f.t, k.dir, k.id, &f.s.ledger)
	}
	tickets := readTickets(f.t, f.hubDir())
	res := f.s.finish(tickets)
	for _, k := range f.kiosks {
		got := receipts(k.sim.Sent())
		for _, tk := range tickets {
			if tk.DeviceID != k.id || tk.Source != KindSMS {
				continue
			}
			if to := got[tk.Number]; !containsStr(to, tk.Reporter) {
				f.t.Errorf("ticket %s from SMS of %s on %s: no receipt reached the reporter (receipts went to %v)", tk.Number, tk.Reporter, k.id, to)
			}
		}
	}
	return res
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// readOutbox adds the button incidents in a stopped kiosk's outbox to the ledger: a press whose
// answer the kill cut off is known only from there. An incident still pending is an error.
func readOutbox(t *testing.T, dir, device string, l *Ledger) {
	t.Helper()
	st, err := outbox.Open(dir, outbox.WithLockTimeout(5*time.Second))
	if err != nil {
		t.Errorf("open the outbox of %s: %v", device, err)
		return
	}
	defer st.Close()
	pending, err := st.Pending()
	if err != nil {
		t.Errorf("outbox of %s: %v", device, err)
	}
	for _, e := range pending {
		t.Errorf("outbox of %s: incident %s (%s) still pending after the run", device, e.Incident.ID, e.Incident.Source)
		if e.Incident.Source == KindButton && e.Incident.Request == "" {
			l.Add(Report{Key: e.Incident.ID, Kind: KindButton, Device: device})
		}
	}
	// A wide "now" keeps records made under a skewed clock.
	recent, err := st.Recent(time.Now())
	if err != nil {
		t.Errorf("outbox of %s: %v", device, err)
	}
	for _, r := range recent {
		if r.Button != "" && r.Request == "" {
			l.Add(Report{Key: r.IncidentID, Kind: KindButton, Device: device})
		}
	}
}

// hubDBFile is hubd.DBFile, not imported so that the suite builds only what it runs as binaries.
const hubDBFile = "kentongan-hub.db"

// readTickets reads every ticket from a stopped hub's database, read-only.
func readTickets(t *testing.T, hubDir string) []Ticket {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(hubDir, hubDBFile)+"?mode=ro")
	if err != nil {
		t.Fatalf("open hub database: %v", err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT incident_id, number, device_id, source, text, reporter FROM tickets ORDER BY seq`)
	if err != nil {
		t.Fatalf("read tickets: %v", err)
	}
	defer rows.Close()
	var out []Ticket
	for rows.Next() {
		var tk Ticket
		if err := rows.Scan(&tk.IncidentID, &tk.Number, &tk.DeviceID, &tk.Source, &tk.Text, &tk.Reporter); err != nil {
			t.Fatalf("read tickets: %v", err)
		}
		out = append(out, tk)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read tickets: %v", err)
	}
	return out
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load runs presses and SMS reports until ctx ends: on each kiosk its own resident, one report
// every gap or so, every smsEvery-th an SMS. Presses cut off by a fault are expected; their
// incidents, if any, are found in the outbox afterwards.
func (f *fleet) load(ctx context.Context, gap time.Duration, smsEvery int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i, k := range f.kiosks {
		rnd := rand.New(rand.NewPCG(uint64(f.s.seed), uint64(i+1)))
		wg.Go(func() {
			n := 0
			for ctx.Err() == nil {
				d := time.Duration(rnd.Int64N(int64(gap))) + gap/2
				n++
				if smsEvery > 0 && n%smsEvery == 0 {
					f.textSafe(k)
				} else {
					f.pressSafe(ctx, k)
				}
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		})
	}
	return &wg
}

func (f *fleet) pressSafe(ctx context.Context, k *kiosk) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	k.press(pctx) // failures while a fault is on are the point; the outbox is the record
}

func (f *fleet) textSafe(k *kiosk) { k.text() }

// api GETs path from the running hub's API as an operator, decoding the answer into v. The
// operator and its token are made once, with the hub binary's own commands, as an administrator
// would.
func (f *fleet) api(path string, v any) error {
	f.t.Helper()
	if f.token == "" {
		bin := filepath.Join(binaries(f.t), "kentongan-hub")
		add := exec.Command(bin, "user", "add", "--data", f.hubDir(), "--name", "operator-fault", "--role", "operator")
		add.Stdin = strings.NewReader("kata-sandi-fault-123\n")
		if out, err := add.CombinedOutput(); err != nil {
			f.t.Fatalf("kentongan-hub user add: %v\n%s", err, out)
		}
		var stderr strings.Builder
		tok := exec.Command(bin, "token", "add", "--data", f.hubDir(), "--user", "operator-fault", "--name", "fault")
		tok.Stderr = &stderr
		out, err := tok.Output()
		if err != nil {
			f.t.Fatalf("kentongan-hub token add: %v\n%s", err, stderr.String())
		}
		f.token = strings.TrimSpace(string(out))
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.http+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// hubIncidents returns the incident IDs of the device's tickets, from the running hub's API.
func (f *fleet) hubIncidents(device string) (map[string]bool, error) {
	var tickets []struct {
		IncidentID string `json:"incident_id"`
	}
	if err := f.api("/api/v1/tickets?limit=1000&device_id="+device, &tickets); err != nil {
		return nil, err
	}
	out := make(map[string]bool)
	for _, tk := range tickets {
		out[tk.IncidentID] = true
	}
	return out, nil
}

// deviceFault is the fault the hub last heard in the device's heartbeat.
func (f *fleet) deviceFault(id string) (string, error) {
	var devs []struct {
		ID    string `json:"id"`
		State struct {
			Fault string `json:"fault"`
		} `json:"state"`
	}
	if err := f.api("/api/v1/devices", &devs); err != nil {
		return "", err
	}
	for _, d := range devs {
		if d.ID == id {
			return d.State.Fault, nil
		}
	}
	return "", fmt.Errorf("device %s not in the hub's registry", id)
}

// needRoot skips (or, under CI, fails) a scenario that must mount file systems.
func needRoot(t *testing.T, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s needs root (to mount a tmpfs); CI runs the suite as root", what)
	}
	t.Skipf("%s needs root to mount a tmpfs; skipped (it fails instead under CI=true)", what)
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted at cleanup.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the file system has no space left, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	defer fh.Close()
	for _, chunk := range []int{64 << 10, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			if _, err := fh.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", dir, err)
				}
				break
			}
		}
	}
	return path
}
