package leader_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kentongan/kentongan/hub/leader"
	"github.com/kentongan/kentongan/test/pgtest"
	"github.com/kentongan/kentongan/test/poll"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// replica is one elector running, with what its lead function saw.
type replica struct {
	name   string
	el     *leader.Postgres
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	leading bool
	terms   int // how many times lead was called
}

func (r *replica) isLeading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
}

func (r *replica) termCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.terms
}

// overlap records a moment when two replicas' lead functions ran at once.
type overlap struct {
	mu      sync.Mutex
	running int
	max     int
}

func start(t *testing.T, dsn, name string, ov *overlap) *replica {
	t.Helper()
	el, err := leader.NewPostgres(leader.PostgresOptions{DSN: dsn, ID: name, Retry: 300 * time.Millisecond, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, el: el, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		el.Run(ctx, func(ctx context.Context) {
			r.mu.Lock()
			r.leading = true
			r.terms++
			r.mu.Unlock()
			if ov != nil {
				ov.mu.Lock()
				ov.running++
				ov.max = max(ov.max, ov.running)
				ov.mu.Unlock()
			}
			<-ctx.Done()
			if ov != nil {
				ov.mu.Lock()
				ov.running--
				ov.mu.Unlock()
			}
			r.mu.Lock()
			r.leading = false
			r.mu.Unlock()
		})
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
}

func exactlyOne(rs ...*replica) (bool, string) {
	var names []string
	for _, r := range rs {
		if r.isLeading() {
			names = append(names, r.name)
		}
	}
	return len(names) == 1, fmt.Sprintf("leading: %v", names)
}

func TestOneLeadsAndTheOtherTakesOverOnClose(t *testing.T) {
	dsn := pgtest.URL(t)
	var ov overlap
	a := start(t, dsn, "a", &ov)
	b := start(t, dsn, "b", &ov)
	poll.Until(t, 30*time.Second, "exactly one leader", func() (bool, string) { return exactlyOne(a, b) })
	// Several tries of the follower later, still one.
	followerTerms := a.termCount() + b.termCount()
	time.Sleep(time.Second) // lets the follower try a few times; not an assertion of timing
	if ok, d := exactlyOne(a, b); !ok || a.termCount()+b.termCount() != followerTerms {
		t.Fatalf("leadership moved with both up: %s, terms %d -> %d", d, followerTerms, a.termCount()+b.termCount())
	}
	first, second := a, b
	if b.isLeading() {
		first, second = b, a
	}
	if !first.el.Leading() || second.el.Leading() {
		t.Errorf("Leading() disagrees with lead: %s=%v %s=%v", first.name, first.el.Leading(), second.name, second.el.Leading())
	}
	first.stop()
	if first.isLeading() || first.el.Leading() {
		t.Error("a stopped elector still leads")
	}
	poll.True(t, 30*time.Second, second.name+" leading after "+first.name+" stopped", second.isLeading)
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if ov.max != 1 {
		t.Errorf("%d lead functions ran at once", ov.max)
	}
}

// A leader whose connection is killed (as when its host dies) stops leading, and leadership
// moves on: to the other replica, or back to itself on a new connection.
func TestLeaderConnectionKilled(t *testing.T) {
	dsn := pgtest.URL(t)
	a := start(t, dsn, "a", nil)
	b := start(t, dsn, "b", nil)
	poll.Until(t, 30*time.Second, "exactly one leader", func() (bool, string) { return exactlyOne(a, b) })
	first := a
	if b.isLeading() {
		first = b
	}
	terms := a.termCount() + b.termCount()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed int
	err = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objid = $1::bigint & x'ffffffff'::bigint`, leader.DefaultKey).Scan(&killed)
	if err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d lock holders, want 1", killed)
	}
	poll.Until(t, 30*time.Second, "a new term after the leader's connection died", func() (bool, string) {
		n := a.termCount() + b.termCount()
		ok, d := exactlyOne(a, b)
		return ok && n > terms, fmt.Sprintf("%s, terms %d (was %d), first leader %s", d, n, terms, first.name)
	})
}

func TestAlwaysLeads(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	called := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		leader.Always{}.Run(ctx, func(ctx context.Context) {
			close(called)
			<-ctx.Done()
		})
	}()
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("Always did not lead")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Always.Run did not return after ctx ended")
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := leader.NewPostgres(leader.PostgresOptions{}); !errors.Is(err, leader.ErrNoDSN) {
		t.Errorf("no DSN: %v", err)
	}
	if _, err := leader.NewPostgres(leader.PostgresOptions{DSN: "postgres://x:y@:notaport/db"}); err == nil {
		t.Error("bad DSN accepted")
	}
}
