// Package proc runs the project's real binaries as separate processes in tests: built once per
// test binary, started with their log captured line by line, and killed with SIGKILL the way a
// power cut kills a kiosk (no clean-up, no goodbye to the broker) or stopped with SIGTERM.
//
// The end-to-end, fault and scale-out suites each had their own copy of this plumbing; one copy
// means a fix (a long log line, a lost exit) reaches all of them.
//
// A suite's TestMain calls Main, or Cleanup after its own m.Run, so that the built binaries are
// removed. Build also removes directories it made more than a day ago, for suites whose TestMain
// cannot (one whose other helper exits the process) and for runs that were killed.
package proc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dirPrefix names the temporary directories Build makes, so that stale ones can be found.
const dirPrefix = "kentongan-proc-"

// staleAfter is how old a build directory must be before another run removes it: far longer
// than any test run, including the fault suite's long form.
const staleAfter = 24 * time.Hour

// build is one set of packages built into one directory.
type build struct {
	once sync.Once
	dir  string
	err  error
}

// The builds are per process, not per test, on purpose: linking the binaries takes seconds, and
// every test of a suite runs the same ones.
var (
	buildsMu sync.Mutex
	builds   = map[string]*build{}
)

// Build builds the main packages pkgs (paths relative to the module root, like
// "./cmd/kentongand") once per test process, and returns the directory holding the binaries,
// each named after its package's last path element. A failed build fails tb, with the compiler's
// output.
func Build(tb testing.TB, pkgs ...string) string {
	tb.Helper()
	if len(pkgs) == 0 {
		tb.Fatalf("proc.Build: no packages to build")
	}
	key := strings.Join(pkgs, "\x00")
	buildsMu.Lock()
	b, ok := builds[key]
	if !ok {
		b = &build{}
		builds[key] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() { b.dir, b.err = buildInto(pkgs) })
	if b.err != nil {
		tb.Fatalf("%v", b.err)
	}
	return b.dir
}

func buildInto(pkgs []string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	removeStale(os.TempDir(), time.Now())
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", strings.Join(pkgs, " "), err)
	}
	// A trailing separator makes go build write into the directory even for one package.
	cmd := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return dir, nil
}

// moduleRoot is the nearest directory above the working directory (a test's package directory)
// holding go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("find the module root: no go.mod above %s", wd)
		}
	}
}

// removeStale removes build directories in tmp last changed before now-staleAfter. Errors are
// ignored: a leftover another user owns is not this run's problem.
func removeStale(tmp string, now time.Time) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > staleAfter {
			os.RemoveAll(filepath.Join(tmp, e.Name()))
		}
	}
}

// Cleanup removes every directory Build made in this process. Call it once the tests are over.
func Cleanup() {
	buildsMu.Lock()
	defer buildsMu.Unlock()
	for key, b := range builds {
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
		delete(builds, key)
	}
}

// Main is a TestMain for a suite that needs nothing else: it runs the tests, removes the
// binaries and exits.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}
