package sqlite_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/sqlite"
	"github.com/kentongan/kentongan/hub/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "tickets.db")
		return func(clock hub.Clock) (hub.Store, error) {
			return sqlite.Open(context.Background(), path, sqlite.Options{Clock: clock, Logger: quiet})
		}
	})
}

func TestAccountStore(t *testing.T) {
	storetest.RunAccounts(t, func(t *testing.T) storetest.AccountsOpener {
		path := filepath.Join(t.TempDir(), "hub.db")
		return func() (account.Store, io.Closer, error) {
			s, err := sqlite.Open(context.Background(), path, sqlite.Options{Logger: quiet})
			if err != nil {
				return nil, nil, err
			}
			return s.Accounts(), s, nil
		}
	})
}

func TestEnrollStore(t *testing.T) {
	storetest.RunEnroll(t, func(t *testing.T) storetest.EnrollOpener {
		path := filepath.Join(t.TempDir(), "hub.db")
		return func() (enroll.Store, io.Closer, error) {
			s, err := sqlite.Open(context.Background(), path, sqlite.Options{Logger: quiet})
			if err != nil {
				return nil, nil, err
			}
			return s.Devices(), s, nil
		}
	})
}

// TestDurabilitySettings checks what the store promises about the file: it is a real file in
// WAL mode, and the schema is versioned so a newer hub's file is refused, not misread.
func TestDurabilitySettings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tickets.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("open a file from a newer schema: %v, want an error saying it is newer", err)
	}
}
