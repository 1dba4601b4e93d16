package pgtest

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestURLGivesSeparateUsableDatabases(t *testing.T) {
	a, b := URL(t), URL(t)
	if a == b {
		t.Fatalf("two calls gave the same database %s", a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca := connect(t, ctx, a)
	cb := connect(t, ctx, b)
	if _, err := ca.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a table made in the first database shows in the second")
	}
	var fsync string
	if err := ca.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "on" {
		t.Fatalf("fsync = %s, want on: durability figures would be meaningless", fsync)
	}
}

func TestServerCanBePausedAndResumed(t *testing.T) {
	dsn := URL(t)
	pid := ServerPID()
	if pid == 0 {
		t.Skip("external server: not ours to stop")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := connect(t, ctx, dsn)
	if err := Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			Signal(syscall.SIGCONT)
		}
	}()
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	err := c.Ping(short)
	cancelShort()
	if err == nil {
		t.Fatal("a query answered while the whole server was stopped")
	}
	if err := Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	// The stopped ping's connection was cancelled; a fresh one must work again.
	c2 := connect(t, ctx, dsn)
	if err := c2.Ping(ctx); err != nil {
		t.Fatalf("server did not come back after SIGCONT: %v", err)
	}
}

func connect(t *testing.T, ctx context.Context, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
