package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/postgres"
	"github.com/kentongan/kentongan/hub/storetest"
	"github.com/kentongan/kentongan/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dsn := pgtest.URL(t)
		return func(clock hub.Clock) (hub.Store, error) {
			return postgres.Open(context.Background(), dsn, postgres.Options{Clock: clock, Logger: quiet})
		}
	})
}

func TestAccountStore(t *testing.T) {
	storetest.RunAccounts(t, func(t *testing.T) storetest.AccountsOpener {
		dsn := pgtest.URL(t)
		return func() (account.Store, io.Closer, error) {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{Logger: quiet})
			if err != nil {
				return nil, nil, err
			}
			return s.Accounts(), s, nil
		}
	})
}

func TestEnrollStore(t *testing.T) {
	storetest.RunEnroll(t, func(t *testing.T) storetest.EnrollOpener {
		dsn := pgtest.URL(t)
		return func() (enroll.Store, io.Closer, error) {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{Logger: quiet})
			if err != nil {
				return nil, nil, err
			}
			return s.Devices(), s, nil
		}
	})
}

// TestReplicasMigrateAtOnce: hub replicas starting together on an empty database all open it;
// the advisory lock makes one apply the migrations and the others find them applied.
func TestReplicasMigrateAtOnce(t *testing.T) {
	dsn := pgtest.URL(t)
	const replicas = 3
	errs := make(chan error, replicas)
	var wg sync.WaitGroup
	for range replicas {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{Logger: quiet})
			if err == nil {
				err = s.Ping(context.Background())
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("replica open: %v", err)
		}
	}
}

// TestNewerSchemaRefused: a database migrated by a newer hub is refused, not misread.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.URL(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE schema_versions SET version = 999 WHERE name = 'tickets'`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = postgres.Open(ctx, dsn, postgres.Options{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("open a database from a newer schema: %v, want an error saying it is newer", err)
	}
}

// TestBadDSN: a connection string that does not parse is a clear error that does not echo
// the password.
func TestBadDSN(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://kentongan:s3cret@[::1:5432/db", postgres.Options{Logger: quiet})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad DSN: %v, want an error without the password", err)
	}
}

// TestDurable: the server commits with fsync on, so a ticket acknowledged to a kiosk is on
// disk; the store does not turn durability off for its sessions.
func TestDurable(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.URL(t), postgres.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for setting, want := range map[string]string{"fsync": "on", "synchronous_commit": "on"} {
		var got string
		if err := s.Pool().QueryRow(ctx, "SHOW "+setting).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", setting, got, err, want)
		}
	}
}
