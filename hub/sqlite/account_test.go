package sqlite_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/sqlite"
)

func openAccounts(t *testing.T, path string) (*sqlite.Store, *sqlite.Accounts) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return db, db.Accounts()
}

func TestAccountStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	db, a := openAccounts(t, path)
	at := time.Date(2026, 11, 27, 13, 0, 0, 123, time.UTC)

	u := &account.User{Name: "siti", FullName: "Siti", Role: account.RoleAgency, Agency: "pln", PasswordHash: []byte("$2a$04$x"), CreatedAt: at, UpdatedAt: at}
	if err := a.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateUser(ctx, u); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("duplicate user: %v", err)
	}
	if _, err := a.User(ctx, "nobody"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("unknown user: %v", err)
	}
	u.Disabled, u.Role, u.Agency = true, account.RoleOperator, ""
	if err := a.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateUser(ctx, &account.User{Name: "nobody"}); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("update unknown user: %v", err)
	}

	s1 := &account.Session{Hash: "h1", User: "siti", CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(time.Hour), IP: "10.0.0.1"}
	s2 := &account.Session{Hash: "h2", User: "siti", CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(3 * time.Hour)}
	for _, s := range []*account.Session{s1, s2} {
		if err := a.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.CreateSession(ctx, &account.Session{Hash: "h3", User: "nobody", CreatedAt: at, LastSeenAt: at, ExpiresAt: at}); err == nil {
		t.Error("a session of an unknown user was stored")
	}
	if err := a.TouchSession(ctx, "h1", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := a.DeleteExpiredSessions(ctx, at.Add(2*time.Hour)); err != nil || n != 1 {
		t.Errorf("expired sessions deleted: %d %v", n, err)
	}
	if _, err := a.Session(ctx, "h1"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("expired session still there: %v", err)
	}

	exp := at.Add(time.Hour)
	tk := &account.Token{ID: "t1", User: "siti", Name: "ctl", Scope: account.ScopeAPI, Prefix: "ktg_abc", Hash: "th1", CreatedAt: at, CreatedBy: "admin", ExpiresAt: &exp}
	if err := a.CreateToken(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken(ctx, "t1", "admin", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken(ctx, "t1", "eve", at.Add(2*time.Minute)); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("second revocation: %v", err)
	}
	if err := a.AddAudit(ctx, &account.AuditEntry{At: at, Actor: "admin", Action: account.ActionUserCreate, Target: "siti"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything survives a reopen, which must not migrate again.
	db, a = openAccounts(t, path)
	defer db.Close()
	got, err := a.User(ctx, "siti")
	if err != nil || !got.Disabled || got.Role != account.RoleOperator || string(got.PasswordHash) != "$2a$04$x" || !got.CreatedAt.Equal(at) {
		t.Errorf("user after reopen: %+v %v", got, err)
	}
	s, err := a.Session(ctx, "h2")
	if err != nil || s.User != "siti" || !s.ExpiresAt.Equal(at.Add(3*time.Hour)) {
		t.Errorf("session after reopen: %+v %v", s, err)
	}
	if n, err := a.DeleteSessions(ctx, "siti"); err != nil || n != 1 {
		t.Errorf("delete siti's sessions: %d %v", n, err)
	}
	gt, err := a.TokenByHash(ctx, "th1")
	if err != nil || gt.RevokedAt == nil || gt.RevokedBy != "admin" || gt.ExpiresAt == nil || !gt.ExpiresAt.Equal(exp) || gt.LastUsedAt != nil {
		t.Errorf("token after reopen: %+v %v", gt, err)
	}
	if _, err := a.TokenByID(ctx, "nope"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("unknown token: %v", err)
	}
	es, err := a.Audit(ctx, account.AuditFilter{Actor: "admin", Since: at})
	if err != nil || len(es) != 1 || es[0].Target != "siti" {
		t.Errorf("audit after reopen: %+v %v", es, err)
	}
	if es, _ := a.Audit(ctx, account.AuditFilter{Since: at.Add(time.Nanosecond)}); len(es) != 0 {
		t.Errorf("audit since after the entry: %+v", es)
	}
}
