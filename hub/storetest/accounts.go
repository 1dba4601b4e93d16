package storetest

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// AccountsOpener opens the accounts of one database, the same one on every call, and returns
// what closes them (the store they share connections with).
type AccountsOpener func() (account.Store, io.Closer, error)

// RunAccounts checks the account.Store semantics. newOpener must return an opener of a fresh,
// empty database each time it is called.
func RunAccounts(t *testing.T, newOpener func(t *testing.T) AccountsOpener) {
	tests := []struct {
		name string
		f    func(t *testing.T, open AccountsOpener)
	}{
		{"RoundTripAndReopen", testAccountsRoundTrip},
		{"Lists", testAccountLists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each subtest has a database of its own
			tt.f(t, newOpener(t))
		})
	}
}

func openAccounts(t *testing.T, open AccountsOpener) (account.Store, io.Closer) {
	t.Helper()
	a, c, err := open()
	if err != nil {
		t.Fatalf("open accounts: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return a, c
}

// at has nanoseconds, which a store must give back exactly.
var accountsAt = time.Date(2026, 11, 27, 13, 0, 0, 123, time.UTC)

func testAccountsRoundTrip(t *testing.T, open AccountsOpener) {
	ctx := context.Background()
	a, closer := openAccounts(t, open)
	at := accountsAt

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
	if err := a.CreateSession(ctx, s1); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("duplicate session: %v", err)
	}
	if err := a.CreateSession(ctx, &account.Session{Hash: "h3", User: "nobody", CreatedAt: at, LastSeenAt: at, ExpiresAt: at}); err == nil {
		t.Error("a session of an unknown user was stored")
	}
	if err := a.TouchSession(ctx, "h1", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Session(ctx, "h1"); err != nil || !got.LastSeenAt.Equal(at.Add(time.Minute)) || got.IP != "10.0.0.1" {
		t.Errorf("touched session %+v, %v", got, err)
	}
	if err := a.TouchSession(ctx, "nope", at); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("touch unknown session: %v", err)
	}
	if n, err := a.DeleteExpiredSessions(ctx, at.Add(2*time.Hour)); err != nil || n != 1 {
		t.Errorf("expired sessions deleted: %d %v", n, err)
	}
	if _, err := a.Session(ctx, "h1"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("expired session still there: %v", err)
	}
	if err := a.DeleteSession(ctx, "h1"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("delete a deleted session: %v", err)
	}

	exp := at.Add(time.Hour)
	tk := &account.Token{ID: "t1", User: "siti", Name: "ctl", Scope: account.ScopeAPI, Prefix: "ktg_abc", Hash: "th1", CreatedAt: at, CreatedBy: "admin", ExpiresAt: &exp}
	if err := a.CreateToken(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateToken(ctx, tk); hub.ErrorCode(err) != hub.CodeConflict {
		t.Errorf("duplicate token: %v", err)
	}
	if err := a.RevokeToken(ctx, "t1", "admin", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken(ctx, "t1", "eve", at.Add(2*time.Minute)); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("second revocation: %v", err)
	}
	first := &account.AuditEntry{At: at, Actor: "admin", Action: account.ActionUserCreate, Target: "siti"}
	second := &account.AuditEntry{At: at.Add(time.Second), Actor: "siti", Action: account.ActionLogin, IP: "10.0.0.1"}
	for _, e := range []*account.AuditEntry{first, second} {
		if err := a.AddAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if first.ID == 0 || second.ID <= first.ID {
		t.Errorf("audit IDs %d then %d: want increasing", first.ID, second.ID)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything survives a reopen, which must not migrate again.
	a, _ = openAccounts(t, open)
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
	if _, err := a.TokenByHash(ctx, "nope"); hub.ErrorCode(err) != hub.CodeNotFound {
		t.Errorf("unknown token hash: %v", err)
	}
	if err := a.TouchToken(ctx, "t1", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if gt, err := a.TokenByID(ctx, "t1"); err != nil || gt.LastUsedAt == nil || !gt.LastUsedAt.Equal(at.Add(time.Hour)) {
		t.Errorf("token after use: %+v %v", gt, err)
	}
	es, err := a.Audit(ctx, account.AuditFilter{Actor: "admin", Since: at})
	if err != nil || len(es) != 1 || es[0].Target != "siti" || es[0].ID != first.ID || !es[0].At.Equal(at) {
		t.Errorf("audit after reopen: %+v %v", es, err)
	}
	if es, _ := a.Audit(ctx, account.AuditFilter{Since: at.Add(time.Nanosecond)}); len(es) != 1 || es[0].ID != second.ID {
		t.Errorf("audit since after the first entry: %+v", es)
	}
	if es, _ := a.Audit(ctx, account.AuditFilter{}); len(es) != 2 || es[0].ID != second.ID {
		t.Errorf("audit, newest first: %+v", es)
	}
	if es, _ := a.Audit(ctx, account.AuditFilter{Action: account.ActionLogin}); len(es) != 1 || es[0].IP != "10.0.0.1" {
		t.Errorf("audit by action: %+v", es)
	}
	if _, err := a.Audit(ctx, account.AuditFilter{Limit: hub.MaxLimit + 1}); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("audit limit over MaxLimit: %v, want invalid", err)
	}
}

func testAccountLists(t *testing.T, open AccountsOpener) {
	ctx := context.Background()
	a, _ := openAccounts(t, open)
	at := accountsAt
	if us, err := a.Users(ctx); err != nil || len(us) != 0 {
		t.Errorf("users of an empty store: %v %v, want none", us, err)
	}
	for _, name := range []string{"budi", "ani", "citra"} {
		if err := a.CreateUser(ctx, &account.User{Name: name, Role: account.RoleOperator, PasswordHash: []byte("h"), CreatedAt: at, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	us, err := a.Users(ctx)
	if err != nil || len(us) != 3 || us[0].Name != "ani" || us[1].Name != "budi" || us[2].Name != "citra" {
		t.Errorf("users %v %v, want by name", us, err)
	}
	for i, owner := range []string{"ani", "budi", "ani"} {
		tk := &account.Token{ID: string(rune('a' + i)), User: owner, Name: "n", Scope: account.ScopeOpen311, Prefix: "p",
			Hash: "hash-" + string(rune('a'+i)), CreatedAt: at.Add(time.Duration(i) * time.Minute), CreatedBy: "admin"}
		if err := a.CreateToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	all, err := a.Tokens(ctx, "")
	if err != nil || len(all) != 3 || all[0].ID != "c" || all[2].ID != "a" {
		t.Errorf("all tokens %v %v, want newest first", all, err)
	}
	anis, err := a.Tokens(ctx, "ani")
	if err != nil || len(anis) != 2 || anis[0].ID != "c" || anis[1].ID != "a" || anis[0].Scope != account.ScopeOpen311 {
		t.Errorf("ani's tokens %v %v", anis, err)
	}
	if none, err := a.Tokens(ctx, "citra"); err != nil || len(none) != 0 {
		t.Errorf("citra's tokens %v %v, want none", none, err)
	}
}
