// Package leader decides which of the hub's replicas runs the work that must run once: the
// deadline watcher's breach marks, the supervisor's alert notifications and the webhook
// dispatcher (docs/scale-out.md). Every replica ingests; one leads.
//
// Always is for a single hub (SQLite). Postgres holds a PostgreSQL session advisory lock on a
// connection of its own: the replica whose connection holds the lock leads, and when that
// connection dies (the replica crashed, the network or the database went away) PostgreSQL
// releases the lock and another replica takes it at its next try.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Elector runs work while this replica leads.
type Elector interface {
	// Run calls lead each time this replica becomes the leader, with a context that ends when
	// leadership is lost or ctx ends, and waits for lead to return before trying to lead
	// again. lead must return soon after its context ends. Run returns once ctx has ended and
	// lead has returned.
	Run(ctx context.Context, lead func(ctx context.Context))
}

// Always is the Elector of a hub that runs alone: it leads from the start.
type Always struct{}

// Run calls lead once and returns when ctx ends and lead has returned.
func (Always) Run(ctx context.Context, lead func(ctx context.Context)) {
	lead(ctx)
	<-ctx.Done()
}

// DefaultKey is the advisory lock key the hub's replicas share ("kentonga" in ASCII): any
// other user of advisory locks in the same database must keep clear of it.
const DefaultKey int64 = 0x6b656e746f6e6761

// ErrNoDSN means Postgres was given no database to elect in.
var ErrNoDSN = errors.New("leader: no PostgreSQL DSN")

// PostgresOptions configure a Postgres elector. Zero fields take the defaults documented.
type PostgresOptions struct {
	DSN string // required; the elector opens a connection of its own, outside any pool
	// Key is the advisory lock's key; default DefaultKey. Hubs on one database with different
	// keys lead independently.
	Key int64
	// Retry is how often a follower tries to take the lock; default 3s. The leader checks its
	// connection three times as often, so that it notices a lost lock before another replica
	// is likely to have taken it.
	Retry time.Duration
	// ID names this replica in the log.
	ID     string
	Logger *slog.Logger // default slog.Default()
	// OnChange, if set, is told when this replica starts (true) and stops (false) leading.
	OnChange func(leading bool)
}

// Postgres is an Elector on a PostgreSQL session advisory lock (pg_try_advisory_lock).
type Postgres struct {
	opts PostgresOptions
	log  *slog.Logger

	mu      sync.Mutex
	leading bool
}

var _ Elector = (*Postgres)(nil)

// NewPostgres checks opts; Run connects.
func NewPostgres(opts PostgresOptions) (*Postgres, error) {
	if opts.DSN == "" {
		return nil, ErrNoDSN
	}
	if _, err := pgx.ParseConfig(opts.DSN); err != nil {
		return nil, fmt.Errorf("leader: parse DSN: %w", err)
	}
	if opts.Key == 0 {
		opts.Key = DefaultKey
	}
	if opts.Retry <= 0 {
		opts.Retry = 3 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Postgres{opts: opts, log: opts.Logger.With("replica", opts.ID)}, nil
}

// Leading reports whether this replica leads now.
func (p *Postgres) Leading() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leading
}

func (p *Postgres) setLeading(v bool) {
	p.mu.Lock()
	changed := p.leading != v
	p.leading = v
	p.mu.Unlock()
	if changed && p.opts.OnChange != nil {
		p.opts.OnChange(v)
	}
}

// Run tries to take the lock every Retry and leads while its connection holds it.
func (p *Postgres) Run(ctx context.Context, lead func(ctx context.Context)) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			p.release(conn)
		}
	}()
	failing := false // log a database that stays away once, not at every try
	for ctx.Err() == nil {
		if conn == nil {
			c, err := p.connect(ctx)
			if err != nil {
				if !failing && ctx.Err() == nil {
					p.log.Warn("leader election: cannot reach PostgreSQL; trying again", "every", p.opts.Retry, "err", err)
				}
				failing = true
				sleep(ctx, p.opts.Retry)
				continue
			}
			conn, failing = c, false
		}
		got, err := p.tryLock(ctx, conn)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				p.log.Warn("leader election: lock attempt failed; reconnecting", "err", err)
			}
			closeConn(conn)
			conn = nil
		case got:
			if !p.lead(ctx, conn, lead) {
				closeConn(conn) // the connection is gone, and the lock with it
				conn = nil
			}
			continue // ctx ended, or lost: try again at once with a fresh connection
		}
		sleep(ctx, p.opts.Retry)
	}
}

func (p *Postgres) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, max(p.opts.Retry, 5*time.Second))
	defer cancel()
	c, err := pgx.Connect(cctx, p.opts.DSN)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

func (p *Postgres) tryLock(ctx context.Context, conn *pgx.Conn) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, max(p.opts.Retry, 5*time.Second))
	defer cancel()
	var got bool
	if err := conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1)", p.opts.Key).Scan(&got); err != nil {
		return false, fmt.Errorf("pg_try_advisory_lock: %w", err)
	}
	return got, nil
}

// lead runs lead while conn answers; it returns true when ctx ended (the lock is still held, and
// released by Run) and false when the connection failed.
func (p *Postgres) lead(ctx context.Context, conn *pgx.Conn, lead func(ctx context.Context)) bool {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	p.log.Info("leadership acquired", "key", p.opts.Key)
	p.setLeading(true)
	go func() {
		defer close(done)
		lead(lctx)
	}()
	check := p.opts.Retry / 3
	t := time.NewTicker(check)
	defer t.Stop()
	alive := true
	for alive {
		select {
		case <-ctx.Done():
			cancel()
			<-done
			p.setLeading(false)
			return true
		case <-t.C:
			pctx, pcancel := context.WithTimeout(ctx, max(check, time.Second))
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				p.log.Error("leadership lost: the lock's connection failed; stopping leader work", "err", err)
				alive = false
			}
		}
	}
	cancel()
	<-done
	p.setLeading(false)
	return false
}

// release gives the lock back at shutdown, so that another replica need not wait for
// PostgreSQL to notice the closed connection.
func (p *Postgres) release(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if p.Leading() {
		// Run has already stopped lead; only the flag is left.
		p.setLeading(false)
	}
	_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock_all()")
	_ = conn.Close(ctx)
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
