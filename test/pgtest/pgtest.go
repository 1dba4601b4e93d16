// Package pgtest gives tests a PostgreSQL database of their own.
//
// API:
//
//	func Main(m *testing.M)               // a package's TestMain: runs the tests, stops the private server, exits
//	func URL(t testing.TB) string          // DSN (postgres://…) of a NEW empty database with a unique name
//	func ServerPID() int                   // PID of the private server's postmaster; 0 if external or not started
//	func Signal(sig syscall.Signal) error  // sends sig to the private postmaster and every backend
//
// The server is shared by every test of the process. If $KENTONGAN_PG_URL is set, databases are
// created in that server (its user must be allowed to CREATE DATABASE) and dropped when the test
// ends. Otherwise a private server is started on first use from Debian's binaries (initdb,
// pg_ctl and postgres found in PATH or /usr/lib/postgresql/*/bin): data directory and unix
// socket in a fresh temporary directory (under /tmp as root), TCP on a free 127.0.0.1 port,
// trust authentication on loopback only, and fsync left on because tests and benchmarks measure
// durable commits. As root, where initdb refuses to run, the server runs as the `postgres` OS
// user. Starting it takes seconds (15 s on a loaded 2-core machine), once per test binary.
//
// A fault test makes the store slow by stopping the whole server with Signal(syscall.SIGSTOP)
// and resumes it with Signal(syscall.SIGCONT). (Each backend is its own session leader, so
// signalling the postmaster's process group would not reach them.)
//
// If the test process dies before Main's end, the server is told to shut down fast; its
// directory is unique, so a leftover never confuses the next run, which removes leftovers more
// than an hour old. A server left stopped by SIGSTOP cannot shut down until it gets SIGCONT.
//
// When no PostgreSQL is installed, URL fails the test if $CI is "true" and skips it otherwise,
// saying what to install.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points tests at an existing server instead of a private one.
const EnvURL = "KENTONGAN_PG_URL"

// startTimeout bounds initdb plus server start-up; generous because CI machines are loaded.
const startTimeout = 90 * time.Second

// errNotInstalled marks the absence of PostgreSQL binaries, which skips rather than fails outside CI.
var errNotInstalled = errors.New("pgtest: PostgreSQL binaries not found (install them with `apt-get install postgresql`, or set " + EnvURL + ")")

// The server is per process by nature: every test in the binary shares it, and Main stops it.
var (
	once   sync.Once
	srv    *server
	srvErr error
)

type server struct {
	adminURL string // a DSN for the maintenance database, used to create and drop test databases

	// Set only for a private server.
	dir    string
	bin    string
	cred   *syscall.Credential
	cmd    *exec.Cmd
	exited chan struct{}
}

// Main runs the package's tests, stops the private server if one was started, and exits with the
// tests' status.
func Main(m *testing.M) {
	code := m.Run()
	if srv != nil {
		if err := srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// ServerPID returns the private server's postmaster PID, which is also its process group ID; 0
// when the server is external or not started.
func ServerPID() int {
	if srv == nil || srv.cmd == nil || srv.cmd.Process == nil {
		return 0
	}
	return srv.cmd.Process.Pid
}

// Signal sends sig to the private server's postmaster and every process it started (backends,
// checkpointer, WAL writer…). It fails when the server is external or not started.
func Signal(sig syscall.Signal) error {
	pid := ServerPID()
	if pid == 0 {
		return errors.New("pgtest: no private server to signal")
	}
	pids := []int{pid}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("pgtest: list processes: %w", err)
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parentPID(child) == pid {
			pids = append(pids, child)
		}
	}
	var errs []error
	for _, p := range pids {
		if err := syscall.Kill(p, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("pgtest: signal %d: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// parentPID reads a process's parent from /proc/PID/stat, 0 if it is gone.
func parentPID(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may contain spaces; the fields after it do not.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// URL returns the DSN of a new empty database, unique to this call, on the shared server. On an
// external server ($KENTONGAN_PG_URL) the database is dropped when the test ends (after the test's own cleanups, so
// close pools there); a private server's go when Main removes its directory.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		if errors.Is(srvErr, errNotInstalled) && os.Getenv("CI") != "true" {
			t.Skip(srvErr)
		}
		t.Fatal(srvErr)
	}
	name := "kt_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	// A private server's databases go with its directory; dropping each would cost a checkpoint.
	t.Cleanup(func() {
		if srv.cmd != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// FORCE ends connections a failed test may have leaked, so the drop cannot hang.
		if err := srv.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(srv.adminURL)
	if err != nil {
		t.Fatalf("pgtest: parse server URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func (s *server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(s.adminURL), err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func start() (*server, error) {
	if u := os.Getenv(EnvURL); u != "" {
		s := &server{adminURL: u}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("pgtest: connect to %s=%s: %w", EnvURL, redact(u), err)
		}
		conn.Close(ctx)
		return s, nil
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A free port found by listening can be taken by someone else before postgres binds it.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startPrivate(bin)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// findBinaries returns the directory holding initdb, pg_ctl and postgres together.
func findBinaries() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(r))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(versions, func(i, j int) bool { return pgVersion(versions[i]) > pgVersion(versions[j]) })
	dirs = append(dirs, versions...)
	for _, d := range dirs {
		ok := true
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(d, name)); err != nil || fi.IsDir() {
				ok = false
				break
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", errNotInstalled
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// baseDir is where private servers' directories go: the system's temporary directory, or /tmp
// as root, since the postgres user must reach it and $TMPDIR may be under /root.
func baseDir() string {
	if os.Geteuid() == 0 {
		return "/tmp"
	}
	return os.TempDir()
}

// dirPrefix names the private servers' directories in the system's temporary directory.
const dirPrefix = "kentongan-pg-"

// removeLeftovers deletes the directories of private servers that are no longer running: a
// test process killed before Main's end leaves its directory (its server shuts down when the
// process dies). A directory without a live postmaster that is younger than an hour may be
// another test process's initdb at work, and is left alone.
func removeLeftovers() {
	dirs, _ := filepath.Glob(filepath.Join(baseDir(), dirPrefix+"*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < time.Hour {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && syscall.Kill(pid, 0) == nil {
				continue
			}
		}
		os.RemoveAll(d)
	}
}

func startPrivate(bin string) (*server, error) {
	removeLeftovers()
	dir, err := os.MkdirTemp(baseDir(), dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: make server directory: %w", err)
	}
	s := &server{dir: dir, bin: bin}
	fail := func(err error) (*server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		cred, err := postgresUser()
		if err != nil {
			return fail(err)
		}
		s.cred = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(fmt.Errorf("pgtest: hand %s to the postgres user: %w", dir, err))
		}
	}
	data := filepath.Join(dir, "data")
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pgtest: initdb: %w\n%s", err, out))
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return fail(fmt.Errorf("pgtest: create server log: %w", err))
	}
	defer logFile.Close()
	if s.cred != nil {
		logFile.Chown(int(s.cred.Uid), int(s.cred.Gid))
	}
	// postgres runs in the foreground as our child (rather than daemonised by pg_ctl start) so
	// that it gets a fast shutdown (SIGINT) if this process dies, and so that its PID is known.
	cmd := s.command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir,
		"-c", "fsync=on",
		"-c", "max_connections=300",
		"-c", "log_min_messages=warning")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("pgtest: start postgres: %w", err))
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()
	s.adminURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)

	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, s.adminURL)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return fail(fmt.Errorf("pgtest: postgres exited during start-up: %s", log))
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("pgtest: postgres did not accept connections within %v: %w", startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// command runs a PostgreSQL binary, as the postgres user when we are root.
func (s *server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir // the test's working directory may not be readable by the postgres user
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

func (s *server) stop() error {
	if s.cmd == nil {
		return nil
	}
	defer os.RemoveAll(s.dir)
	select {
	case <-s.exited:
		return nil
	default:
	}
	stop := s.command(filepath.Join(s.bin, "pg_ctl"), "stop", "-D", filepath.Join(s.dir, "data"), "-m", "fast", "-w", "-t", "60")
	out, err := stop.CombinedOutput()
	if err != nil {
		// A server left stopped by a fault test cannot shut down; continue it, then insist.
		Signal(syscall.SIGCONT)
		s.cmd.Process.Signal(syscall.SIGQUIT)
	}
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		Signal(syscall.SIGKILL)
		<-s.exited
	}
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs the postgres OS user (Debian's postgresql package makes it): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: postgres user has uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// redact hides a password in a DSN that goes into an error message.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a DSN that does not parse)"
	}
	if u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
