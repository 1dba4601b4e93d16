// Command bench is Kentongan's benchmark suite (issue 8): it measures the figures the project
// sets goals for, each next to a baseline measured in the same run on the same machine, so that
// ratios hold on a noisy machine, and prints one table. docs/benchmarks.md has the results.
//
//	go run ./test/bench [-quick] [-o results.md] [-only a,b,c,d,e,f]
//
// -quick shrinks every measurement to a smoke test whose figures mean little.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

func main() {
	quick := flag.Bool("quick", false, "shrink every measurement (a smoke test; the figures mean little)")
	out := flag.String("o", "", "also write the table (Markdown) to this file")
	only := flag.String("only", "a,b,c,d,e,f", "measurements to run: a RTT, b press→ack, c ingest, d scale, e drain, f edge footprint")
	verbose := flag.Bool("v", false, "log the hub's and the kiosk's messages to stderr")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the in-process parts (hub, kiosk, broker) to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: cpu profile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	cfg := Config{Quick: *quick, Only: map[string]bool{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Progress: os.Stderr}
	if *verbose {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	for _, s := range strings.Split(*only, ",") {
		cfg.Only[strings.TrimSpace(s)] = true
	}
	rows, err := Run(ctx, cfg)
	table := Markdown(rows)
	fmt.Print(table)
	if *out != "" {
		header := fmt.Sprintf("Run %s on %s/%s, %d CPUs, %s; quick=%v\n\n", time.Now().UTC().Format(time.RFC3339), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), *quick)
		if werr := os.WriteFile(*out, []byte(header+table), 0o644); werr != nil && err == nil {
			err = fmt.Errorf("write results: %w", werr)
		}
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Config says which measurements Run makes and how big.
type Config struct {
	Quick    bool
	Only     map[string]bool // keys "a".."f"; empty runs nothing
	Log      *slog.Logger    // the hub's and kiosks' logs
	Progress io.Writer       // one line per step, for a human waiting; nil is silent
	// Root is the module's root directory (for go build and go run); "" finds it from the
	// working directory.
	Root string
}

func (c Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "bench: "+format+"\n", args...)
	}
}

// Row is one line of the table.
type Row struct {
	Measurement string
	Value       string
	Baseline    string // the same-run baseline, or "" when there is none
	Goal        string
	// Met is "met", "not met", or "" when there is no goal or nothing was measured.
	Met string
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// Run makes the measurements cfg asks for. It returns the rows it has even when one step fails,
// with that step's failure in its row, and the first error.
func Run(ctx context.Context, cfg Config) ([]Row, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Root == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		cfg.Root = root
	}
	var rows []Row
	var first error
	step := func(name string, f func() ([]Row, error)) {
		if ctx.Err() != nil {
			return
		}
		cfg.progress("%s…", name)
		start := time.Now()
		r, err := f()
		rows = append(rows, r...)
		if err != nil {
			rows = append(rows, Row{Measurement: name, Value: "failed: " + strings.Join(strings.Fields(err.Error()), " ")})
			if first == nil {
				first = fmt.Errorf("%s: %w", name, err)
			}
		}
		cfg.progress("%s done in %v", name, time.Since(start).Round(time.Millisecond))
	}
	if cfg.Only["a"] || cfg.Only["b"] {
		step("a+b. MQTT round trip and press→ack", func() ([]Row, error) { return latency(ctx, cfg) })
	}
	if cfg.Only["c"] {
		step("c. ingest throughput", func() ([]Row, error) { return throughput(ctx, cfg) })
	}
	if cfg.Only["d"] || cfg.Only["e"] {
		step("d+e. fleet scale and backlog drain", func() ([]Row, error) { return fleet(ctx, cfg) })
	}
	if cfg.Only["f"] {
		step("f. edge daemon footprint", func() ([]Row, error) { return edge(ctx, cfg) })
	}
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return rows, first
}

// Markdown renders rows as a Markdown table.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| measurement | value | same-run baseline | goal | |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Measurement, r.Value, dash(r.Baseline), dash(r.Goal), r.Met)
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// moduleRoot walks up from the working directory to go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(dir + "/go.mod"); err == nil {
			return dir, nil
		}
		parent := dir[:max(strings.LastIndex(dir, "/"), 0)]
		if parent == "" || parent == dir {
			return "", fmt.Errorf("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
