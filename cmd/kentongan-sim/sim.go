package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kentongan/kentongan/test/fleet"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // a run lost or duplicated incidents, or a measurement failed
	exitUsage = 2
)

const usage = `kentongan-sim simulates Kentongan kiosks against a hub and measures it.

Usage:
  kentongan-sim run       -broker URL -kiosks N [-rate R | -burst K:S] [flags]
  kentongan-sim hubconfig -kiosks N -o FILE
  kentongan-sim scale     -kiosks N[,N...] -hub BINARY [-json]
  kentongan-sim drain     -kiosks N -queued Q -hub BINARY [-json]

"kentongan-sim COMMAND -h" lists a command's flags. See docs/fleet.md.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"run": runCmd, "hubconfig": hubconfigCmd, "scale": scaleCmd, "drain": drainCmd,
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kentongan-sim: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	err := cmd(ctx, args[1:], stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "kentongan-sim %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "kentongan-sim %s: %v\n", args[0], err)
		return exitFail
	}
}

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: kentongan-sim %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "run -broker URL -kiosks N [-rate R | -burst K:S] [flags]", stderr)
	var (
		broker    = fs.String("broker", "tcp://127.0.0.1:1883", "the hub's MQTT broker `URL`")
		kiosks    = fs.Int("kiosks", 10, "number of simulated kiosks; the hub must know their device IDs (see hubconfig)")
		prefix    = fs.String("prefix", fleet.DefaultDevicePrefix, "device ID `prefix`: kiosks are PREFIX-00001 …")
		heartbeat = fs.Duration("heartbeat", 60*time.Second, "heartbeat `interval` of each kiosk, staggered over the fleet; 0 for none")
		retry     = fs.Duration("retry", fleet.DefaultRetryInterval, "re-send an incident not received within this `interval`, as kentongand does")
		rate      = fs.String("rate", "", "steady presses `per kiosk`, such as 0.1/s, 6/m or 2/h")
		burst     = fs.String("burst", "", "`K:S`: K kiosks each press once within S seconds")
		smsShare  = fs.Float64("sms-share", 0, "`fraction` of reports sent as SMS instead of a button press (0..1)")
		duration  = fs.Duration("duration", time.Minute, "how long to press (a burst ends when it is done)")
		grace     = fs.Duration("grace", 60*time.Second, "after pressing, how long to wait for the last acks before counting losses")
		conc      = fs.Int("connect-concurrency", fleet.DefaultConnectConcurrency, "connection attempts in flight at once")
		connWait  = fs.Duration("connect-timeout", 5*time.Minute, "give up if the fleet is not connected within this long")
		seed      = fs.Uint64("seed", uint64(time.Now().UnixNano()), "random `seed` of the press pattern (printed, to replay a run)")
		spread    = fs.Bool("spread-sources", false, "connect each kiosk from its own 127.x.y.z address (the broker must be on loopback), for a hub that limits connections per address")
		jsonOut   = fs.Bool("json", false, "print the result as one JSON object")
		verbose   = fs.Bool("v", false, "log progress")
	)
	if err := parse(fs, args); err != nil {
		return err
	}
	l := fleet.Load{SMSShare: *smsShare, Seed: *seed}
	var err error
	switch {
	case *rate != "" && *burst != "":
		return usageError{errors.New("give -rate or -burst, not both")}
	case *rate != "":
		if l.Rate, err = fleet.ParseRate(*rate); err != nil {
			return usageError{err}
		}
	case *burst != "":
		if l.BurstKiosks, l.BurstWindow, err = fleet.ParseBurst(*burst); err != nil {
			return usageError{err}
		}
	}
	if *smsShare < 0 || *smsShare > 1 {
		return usageError{fmt.Errorf("-sms-share %v is outside 0..1", *smsShare)}
	}
	log := newLogger(stderr, *verbose)
	f, err := fleet.New(fleet.Config{Broker: *broker, Kiosks: *kiosks, DevicePrefix: *prefix, Heartbeat: *heartbeat,
		RetryInterval: *retry, ConnectConcurrency: *conc, SpreadSources: *spread, Seed: *seed, Logger: log})
	if err != nil {
		return usageError{err}
	}
	defer f.Close()
	log.Info("connecting", "kiosks", *kiosks, "broker", *broker, "seed", *seed)
	connCtx, stopConn := context.WithTimeout(ctx, *connWait)
	err = f.Connect(connCtx)
	stopConn()
	if err != nil {
		return err
	}
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go f.RunHeartbeats(bg)
	go f.RunRetries(bg)
	loadCtx, stopLoad := context.WithTimeout(ctx, *duration)
	err = f.RunLoad(loadCtx, l)
	stopLoad()
	if err != nil {
		return usageError{err}
	}
	graceCtx, stopGrace := context.WithTimeout(ctx, *grace)
	_ = f.WaitAcked(graceCtx)
	stopGrace()
	s := f.Stats()
	if *jsonOut {
		if err := json.NewEncoder(stdout).Encode(runJSON(s, *seed)); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "kiosks %d (connected %d), seed %d\n", s.Kiosks, s.Connected, *seed)
		fmt.Fprintf(stdout, "press→received  p50 %v  p99 %v  max %v\n", s.P50.Round(10*time.Microsecond),
			s.P99.Round(10*time.Microsecond), s.Max.Round(10*time.Microsecond))
		fmt.Fprintf(stdout, "incidents %d  acked %d  lost %d  duplicated %d  re-sent %d  rejected %d\n",
			s.Incidents, s.Acked, s.Unacked, s.Duplicated, s.Resent, s.Rejected)
		fmt.Fprintf(stdout, "heartbeats %d  connections lost %d\n", s.Heartbeats, s.Disconnects)
	}
	if s.Unacked > 0 || s.Duplicated > 0 {
		return fmt.Errorf("%d lost, %d duplicated", s.Unacked, s.Duplicated)
	}
	return nil
}

type runResult struct {
	Kiosks     int     `json:"kiosks"`
	Incidents  int     `json:"incidents"`
	Acked      int     `json:"acked"`
	Lost       int     `json:"lost"`
	Duplicated int     `json:"duplicated"`
	Resent     int     `json:"resent"`
	Rejected   int     `json:"rejected"`
	Heartbeats int64   `json:"heartbeats"`
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	Seed       uint64  `json:"seed"`
}

func runJSON(s fleet.Stats, seed uint64) runResult {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return runResult{Kiosks: s.Kiosks, Incidents: s.Incidents, Acked: s.Acked, Lost: s.Unacked, Duplicated: s.Duplicated,
		Resent: s.Resent, Rejected: s.Rejected, Heartbeats: s.Heartbeats, P50MS: ms(s.P50), P99MS: ms(s.P99),
		MaxMS: ms(s.Max), Seed: seed}
}

func hubconfigCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("hubconfig", "hubconfig -kiosks N -o FILE", stderr)
	var (
		kiosks    = fs.Int("kiosks", 10, "number of simulated kiosks to register")
		prefix    = fs.String("prefix", fleet.DefaultDevicePrefix, "device ID `prefix`, as given to run")
		out       = fs.String("o", "-", "output `file`; - for standard output")
		dataDir   = fs.String("data", "", "the hub's data_dir; empty for the hub's default")
		mqttAddr  = fs.String("mqtt", "", "the embedded broker's listen `address`; empty for the hub's default (:1883)")
		httpAddr  = fs.String("http", "", "the HTTP listen `address`; empty for the hub's default (:8080)")
		heartbeat = fs.Duration("heartbeat", 60*time.Second, "the kiosks' heartbeat interval; supervision is three of them")
	)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *kiosks < 1 {
		return usageError{fmt.Errorf("-kiosks %d: need at least 1", *kiosks)}
	}
	c := fleet.HubConfig{DataDir: *dataDir, MQTT: *mqttAddr, HTTP: *httpAddr,
		Devices: fleet.Devices(*prefix, *kiosks, *heartbeat, 1)}
	if *out == "-" {
		b, err := c.Marshal()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	return c.WriteFile(*out)
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-kiosks %q: want positive whole numbers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func hubBinary(path string) error {
	if path == "" {
		return usageError{errors.New("-hub: give the kentongan-hub binary (go build -o /tmp/kentongan-hub ./cmd/kentongan-hub)")}
	}
	if _, err := os.Stat(path); err != nil {
		return usageError{fmt.Errorf("-hub: %w", err)}
	}
	return nil
}

func scratchDir(dir, pattern string) (string, func(), error) {
	d, err := os.MkdirTemp(dir, pattern)
	if err != nil {
		return "", nil, err
	}
	return d, func() { _ = os.RemoveAll(d) }, nil
}

func scaleCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("scale", "scale -kiosks N[,N...] -hub BINARY [flags]", stderr)
	var (
		kiosks    = fs.String("kiosks", "5000,15000", "fleet `sizes`, comma-separated; one hub run each")
		hub       = fs.String("hub", "", "the kentongan-hub `binary`, started as a separate process")
		heartbeat = fs.Duration("heartbeat", 60*time.Second, "heartbeat interval, staggered evenly over the fleet")
		window    = fs.Duration("window", 60*time.Second, "CPU time and heartbeats are measured over this `window`")
		settle    = fs.Duration("settle", 60*time.Second, "longest wait for the hub's RSS to settle")
		conc      = fs.Int("connect-concurrency", fleet.DefaultConnectConcurrency, "connection attempts in flight at once")
		tmp       = fs.String("tmp", "", "`dir`ectory for the hub's data and log (default: the system's temp dir)")
		keep      = fs.Bool("keep", false, "keep the hub's data directory and log")
		jsonOut   = fs.Bool("json", false, "print one JSON object per fleet size")
		verbose   = fs.Bool("v", false, "log progress")
	)
	if err := parse(fs, args); err != nil {
		return err
	}
	ns, err := parseCounts(*kiosks)
	if err != nil {
		return usageError{err}
	}
	if err := hubBinary(*hub); err != nil {
		return err
	}
	log := newLogger(stderr, *verbose)
	for _, n := range ns {
		dir, clean, err := scratchDir(*tmp, "kentongan-sim-scale-")
		if err != nil {
			return err
		}
		res, err := fleet.Scale(ctx, fleet.ScaleOptions{Hub: *hub, Dir: dir, Kiosks: n, Heartbeat: *heartbeat,
			Window: *window, Settle: *settle, ConnectConcurrency: *conc, Logger: log})
		if *keep || err != nil {
			fmt.Fprintf(stderr, "kentongan-sim scale: hub data and log kept in %s\n", dir)
		} else {
			clean()
		}
		if err != nil {
			return err
		}
		if *jsonOut {
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "%d kiosks: hub RSS %d KiB (base %d KiB, %.2f KiB per kiosk); %d heartbeats in %.0fs, "+
				"CPU %.2fs (%.1f µs per heartbeat); database changed in %d s of the window\n",
				res.Kiosks, res.HubRSSKiB, res.HubRSSBaseKiB, res.RSSPerKioskKiB, res.Heartbeats, res.WindowSec,
				res.CPUSec, res.CPUPerHeartbeatUS, res.DBWritesDuringHeartbeats)
		}
	}
	return nil
}

func drainCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("drain", "drain -kiosks N -queued Q -hub BINARY [flags]", stderr)
	var (
		kiosks   = fs.Int("kiosks", 20000, "number of kiosks")
		queued   = fs.Int("queued", 10, "incidents each kiosk holds when it connects")
		hub      = fs.String("hub", "", "the kentongan-hub `binary`, started as a separate process")
		maxConns = fs.Int("max-conns", 18000, "most connections open at once (a process here may hold 20,000 files); drained kiosks disconnect")
		conc     = fs.Int("connect-concurrency", fleet.DefaultConnectConcurrency, "connection attempts in flight at once")
		smsShare = fs.Float64("sms-share", 0, "`fraction` of kiosks whose queued reports are SMS")
		retry    = fs.Duration("retry", fleet.DefaultRetryInterval, "kiosks' re-send interval")
		timeout  = fs.Duration("timeout", 10*time.Minute, "give up after this long")
		tmp      = fs.String("tmp", "", "`dir`ectory for the hub's data and log (default: the system's temp dir)")
		keep     = fs.Bool("keep", false, "keep the hub's data directory and log")
		jsonOut  = fs.Bool("json", false, "print the result as one JSON object")
		verbose  = fs.Bool("v", false, "log progress")
	)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *kiosks < 1 || *queued < 1 {
		return usageError{fmt.Errorf("-kiosks %d -queued %d: both must be at least 1", *kiosks, *queued)}
	}
	if *smsShare < 0 || *smsShare > 1 {
		return usageError{fmt.Errorf("-sms-share %v is outside 0..1", *smsShare)}
	}
	if err := hubBinary(*hub); err != nil {
		return err
	}
	dir, clean, err := scratchDir(*tmp, "kentongan-sim-drain-")
	if err != nil {
		return err
	}
	res, err := fleet.Drain(ctx, fleet.DrainOptions{Hub: *hub, Dir: dir, Kiosks: *kiosks, Queued: *queued,
		MaxConns: *maxConns, ConnectConcurrency: *conc, SMSShare: *smsShare, RetryInterval: *retry, Timeout: *timeout,
		Logger: newLogger(stderr, *verbose)})
	if *keep || err != nil || res.Lost > 0 || res.Duplicated > 0 {
		fmt.Fprintf(stderr, "kentongan-sim drain: hub data and log kept in %s\n", dir)
	} else {
		clean()
	}
	if *jsonOut {
		if jerr := json.NewEncoder(stdout).Encode(res); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprintf(stdout, "%d kiosks × %d queued = %d incidents: %d tickets, %d lost, %d duplicated, %d re-sent; "+
			"drained in %.2fs (%.0f acks/s)\n", res.Kiosks, res.QueuedEach, res.Incidents, res.Tickets, res.Lost,
			res.Duplicated, res.Resent, res.DrainSec, res.AcksPerSec)
	}
	if err != nil {
		return err
	}
	if res.Lost > 0 || res.Duplicated > 0 {
		return fmt.Errorf("%d lost, %d duplicated", res.Lost, res.Duplicated)
	}
	return nil
}
