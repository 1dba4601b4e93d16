package account_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/sqlite"
)

// clock is a hub.Clock that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type fixture struct {
	svc   *account.Service
	store account.Store
	clock *clock
}

// newFixture opens a real hub database in a temp dir, with the accounts the tests use. The
// password of every user is name + "-sandi-rahasia".
func newFixture(t *testing.T, opts account.Options) *fixture {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC)}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), sqlite.Options{Clock: c, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	opts.Store, opts.Clock, opts.Logger, opts.BcryptCost = db.Accounts(), c, quiet(), bcrypt.MinCost
	svc, err := account.NewService(opts)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{svc: svc, store: db.Accounts(), clock: c}
	for _, nu := range []account.NewUser{
		{Name: "admin", Role: account.RoleAdmin},
		{Name: "siti", FullName: "Siti Rahma", Role: account.RoleOperator},
		{Name: "budi", Role: account.RoleSupervisor},
		{Name: "damkar1", Role: account.RoleAgency, Agency: "damkar"},
		{Name: "pln1", Role: account.RoleAgency, Agency: "pln"},
	} {
		nu.Password = password(nu.Name)
		if _, err := svc.CreateUser(context.Background(), account.Actor{CLI: "test"}, nu); err != nil {
			t.Fatalf("create %s: %v", nu.Name, err)
		}
	}
	return f
}

func password(name string) string { return name + "-sandi-rahasia" }

func (f *fixture) user(t *testing.T, name string) *account.User {
	t.Helper()
	u, err := f.svc.User(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) login(t *testing.T, name string) string {
	t.Helper()
	_, tok, _, err := f.svc.Login(context.Background(), name, password(name), "10.0.0.1", "test")
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return tok
}

func (f *fixture) audit(t *testing.T, action string) []account.AuditEntry {
	t.Helper()
	es, err := f.store.Audit(context.Background(), account.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func code(err error) string { return hub.ErrorCode(err) }

func TestPermissions(t *testing.T) {
	t.Parallel()
	all := []account.Permission{account.PermViewTickets, account.PermHandleTickets, account.PermResolveTickets,
		account.PermViewDevices, account.PermViewAlerts, account.PermViewAudit, account.PermManageUsers,
		account.PermReloadConfig, account.PermFileRequests, account.PermManageDeliveries}
	want := map[string]string{ // the permissions each role has
		account.RoleOperator:   "view_tickets handle_tickets resolve_tickets view_devices view_alerts file_requests",
		account.RoleSupervisor: "view_tickets handle_tickets resolve_tickets view_devices view_alerts view_audit file_requests manage_deliveries",
		account.RoleAgency:     "view_tickets resolve_tickets",
		account.RoleAdmin:      "view_tickets handle_tickets resolve_tickets view_devices view_alerts view_audit manage_users reload_config file_requests manage_deliveries",
		"nobody":               "",
	}
	for role, perms := range want {
		u := &account.User{Name: "x", Role: role}
		for _, p := range all {
			if got, exp := u.Can(p), strings.Contains(" "+perms+" ", " "+string(p)+" "); got != exp {
				t.Errorf("%s.Can(%s) = %t, want %t", role, p, got, exp)
			}
		}
		u.Disabled = true
		if u.Can(account.PermViewTickets) {
			t.Errorf("disabled %s can view tickets", role)
		}
	}
	var nobody *account.User
	if nobody.Can(account.PermViewTickets) || nobody.CanAccessAgency("") {
		t.Error("a nil user can do something")
	}
}

func TestAgencyScope(t *testing.T) {
	t.Parallel()
	damkar := &account.User{Name: "d", Role: account.RoleAgency, Agency: "damkar"}
	op := &account.User{Name: "o", Role: account.RoleOperator}
	for _, c := range []struct {
		u      *account.User
		agency string
		want   bool
	}{
		{damkar, "damkar", true},
		{damkar, "pln", false},
		{damkar, hub.AgencyTriage, false},
		{damkar, "", false},
		{op, "pln", true},
		{op, hub.AgencyTriage, true},
		{&account.User{Name: "broken", Role: account.RoleAgency}, "", false}, // unbound agency user sees nothing
	} {
		if got := c.u.CanAccessAgency(c.agency); got != c.want {
			t.Errorf("%s (agency %q) on agency %q: %t, want %t", c.u.Name, c.u.Agency, c.agency, got, c.want)
		}
	}
}

func TestCreateUserValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{})
	cli := account.Actor{CLI: "test"}
	for _, c := range []struct {
		name string
		nu   account.NewUser
		code string
		msg  string
	}{
		{"empty name", account.NewUser{Role: account.RoleOperator, Password: "panjang-sekali"}, hub.CodeInvalid, "name is missing"},
		{"upper case", account.NewUser{Name: "Siti", Role: account.RoleOperator, Password: "panjang-sekali"}, hub.CodeInvalid, "lower-case"},
		{"space", account.NewUser{Name: "si ti", Role: account.RoleOperator, Password: "panjang-sekali"}, hub.CodeInvalid, "lower-case"},
		{"long name", account.NewUser{Name: strings.Repeat("a", 65), Role: account.RoleOperator, Password: "panjang-sekali"}, hub.CodeInvalid, "longer than 64"},
		{"bad role", account.NewUser{Name: "x", Role: "root", Password: "panjang-sekali"}, hub.CodeInvalid, "must be one of"},
		{"agency without agency", account.NewUser{Name: "x", Role: account.RoleAgency, Password: "panjang-sekali"}, hub.CodeInvalid, "bound to an agency"},
		{"operator with agency", account.NewUser{Name: "x", Role: account.RoleOperator, Agency: "pln", Password: "panjang-sekali"}, hub.CodeInvalid, "only a user with role agency"},
		{"bad agency", account.NewUser{Name: "x", Role: account.RoleAgency, Agency: "P L N", Password: "panjang-sekali"}, hub.CodeInvalid, "not a valid agency"},
		{"short password", account.NewUser{Name: "x", Role: account.RoleOperator, Password: "pendek"}, hub.CodeInvalid, "at least 10"},
		{"long password", account.NewUser{Name: "x", Role: account.RoleOperator, Password: strings.Repeat("a", 73)}, hub.CodeInvalid, "at most 72"},
		{"password is name", account.NewUser{Name: "abcdefghijk", Role: account.RoleOperator, Password: "abcdefghijk"}, hub.CodeInvalid, "not be the user name"},
		{"exists", account.NewUser{Name: "siti", Role: account.RoleOperator, Password: "panjang-sekali"}, hub.CodeConflict, "already exists"},
	} {
		_, err := f.svc.CreateUser(context.Background(), cli, c.nu)
		if code(err) != c.code || !strings.Contains(hub.ErrorMessage(err), c.msg) {
			t.Errorf("%s: %v (%s), want %s containing %q", c.name, err, code(err), c.code, c.msg)
		}
	}
	// Only admins create users; the refusal is audited.
	_, err := f.svc.CreateUser(context.Background(), account.Actor{User: f.user(t, "siti"), From: "10.0.0.9"},
		account.NewUser{Name: "eve", Role: account.RoleAdmin, Password: "panjang-sekali"})
	if code(err) != hub.CodeForbidden {
		t.Errorf("operator creating a user: %v, want forbidden", err)
	}
	if es := f.audit(t, account.ActionForbidden); len(es) != 1 || es[0].Actor != "siti" || es[0].IP != "10.0.0.9" {
		t.Errorf("forbidden not audited: %+v", es)
	}
	if es := f.audit(t, account.ActionUserCreate); len(es) != 5 || es[0].Actor != "cli:test" {
		t.Errorf("user creation audit: %+v", es)
	}
}

func TestAgencyMustExist(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{AgencyExists: func(id string) bool { return id == "damkar" || id == "pln" }})
	_, err := f.svc.CreateUser(context.Background(), account.Actor{}, account.NewUser{Name: "x", Role: account.RoleAgency, Agency: "bpbd", Password: "panjang-sekali"})
	if code(err) != hub.CodeInvalid || !strings.Contains(err.Error(), "not in the routing configuration") {
		t.Errorf("unknown agency: %v", err)
	}
}

func TestLoginAndSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{SessionTTL: 8 * time.Hour, IdleTimeout: 30 * time.Minute})
	ctx := context.Background()
	u, tok, sess, err := f.svc.Login(ctx, " Siti ", password("siti"), "10.0.0.1", "Firefox")
	if err != nil || u.Name != "siti" || sess.User != "siti" {
		t.Fatalf("login: %+v %+v %v", u, sess, err)
	}
	if strings.Contains(sess.Hash, tok) || len(tok) < 40 {
		t.Fatalf("session token %q / hash %q", tok, sess.Hash)
	}
	got, _, err := f.svc.SessionUser(ctx, tok)
	if err != nil || got.Name != "siti" || got.FullName != "Siti Rahma" {
		t.Fatalf("session user: %+v %v", got, err)
	}
	if es := f.audit(t, account.ActionLogin); len(es) != 1 || es[0].Actor != "siti" || es[0].IP != "10.0.0.1" {
		t.Errorf("login audit: %+v", es)
	}

	// Used every 20 minutes, the session outlives its idle timeout...
	for range 6 {
		f.clock.Add(20 * time.Minute)
		if _, _, err := f.svc.SessionUser(ctx, tok); err != nil {
			t.Fatalf("session in use after %v: %v", f.clock.Now().Sub(sess.CreatedAt), err)
		}
	}
	// ...but not 31 minutes of silence, and then it is gone for good.
	f.clock.Add(31 * time.Minute)
	if _, _, err := f.svc.SessionUser(ctx, tok); code(err) != hub.CodeUnauthorized || !errors.Is(err, account.ErrSessionExpired) {
		t.Fatalf("idle session: %v, want unauthorized and expired", err)
	}
	if _, _, err := f.svc.SessionUser(ctx, tok); !errors.Is(err, account.ErrNoSession) {
		t.Fatalf("idle session second time: %v, want it deleted", err)
	}

	// The absolute lifetime ends a session however busy it is.
	tok = f.login(t, "siti")
	for f.clock.Add(25 * time.Minute); ; f.clock.Add(25 * time.Minute) {
		_, _, err := f.svc.SessionUser(ctx, tok)
		if err == nil {
			continue
		}
		if !errors.Is(err, account.ErrSessionExpired) {
			t.Fatalf("busy session: %v", err)
		}
		break
	}
	if _, _, err := f.svc.SessionUser(ctx, "not-a-token"); code(err) != hub.CodeUnauthorized {
		t.Errorf("junk token: %v", err)
	}

	// Logout ends the session; a second logout is harmless.
	tok = f.login(t, "siti")
	if err := f.svc.Logout(ctx, tok, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.SessionUser(ctx, tok); code(err) != hub.CodeUnauthorized {
		t.Errorf("after logout: %v", err)
	}
	if err := f.svc.Logout(ctx, tok, "10.0.0.1"); err != nil {
		t.Errorf("second logout: %v", err)
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{})
	ctx := context.Background()
	for i := range 5 {
		_, _, _, err := f.svc.Login(ctx, "siti", "salah-salah-salah", "10.0.0.1", "")
		if code(err) != hub.CodeUnauthorized || !errors.Is(err, account.ErrBadCredentials) {
			t.Fatalf("wrong password %d: %v, want unauthorized", i+1, err)
		}
		f.clock.Add(time.Minute)
	}
	// The sixth attempt is refused before the password is looked at, even the right one, and
	// from another address too: the limit is on the user name.
	for _, ip := range []string{"10.0.0.1", "10.0.0.2"} {
		_, _, _, err := f.svc.Login(ctx, "siti", password("siti"), ip, "")
		le, ok := errors.AsType[*account.LimitError](err)
		if code(err) != hub.CodeTooMany || !ok {
			t.Fatalf("sixth attempt from %s: %v, want too_many with a LimitError", ip, err)
		}
		// The first failure was 5 minutes ago; it leaves the 15-minute window in 10.
		if le.RetryAfter != 10*time.Minute {
			t.Errorf("retry after %v, want 10m", le.RetryAfter)
		}
	}
	if n := len(f.audit(t, account.ActionLoginFailed)); n != 5 {
		t.Errorf("%d failed logins audited, want 5", n)
	}
	if n := len(f.audit(t, account.ActionLoginLimited)); n != 2 {
		t.Errorf("%d limited logins audited, want 2", n)
	}
	// Other users are not affected.
	f.login(t, "budi")

	f.clock.Add(10 * time.Minute)
	if _, _, _, err := f.svc.Login(ctx, "siti", password("siti"), "10.0.0.1", ""); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// Success clears the user's count: five more wrong passwords are needed to lock again.
	for range 4 {
		f.svc.Login(ctx, "siti", "salah-salah-salah", "10.0.0.3", "")
	}
	f.login(t, "siti")
}

func TestLoginRateLimitPerIP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{Limits: account.Limits{PerUser: 5, PerIP: 8, Window: time.Hour}})
	ctx := context.Background()
	// One address trying many names, each fewer times than the per-user limit.
	for i := range 8 {
		name := []string{"siti", "budi", "admin", "nobody"}[i%4]
		if _, _, _, err := f.svc.Login(ctx, name, "salah-salah-salah", "192.0.2.7", ""); code(err) != hub.CodeUnauthorized {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, _, _, err := f.svc.Login(ctx, "pln1", password("pln1"), "192.0.2.7", "")
	if le, ok := errors.AsType[*account.LimitError](err); !ok || le.Key != "ip:192.0.2.7" || le.RetryAfter != time.Hour {
		t.Fatalf("ninth attempt from the address: %v, want the address limited for an hour", err)
	}
	// The users themselves can still log in from elsewhere.
	if _, _, _, err := f.svc.Login(ctx, "siti", password("siti"), "10.0.0.1", ""); err != nil {
		t.Fatalf("siti from her own desk: %v", err)
	}
}

func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{})
	_, _, _, e1 := f.svc.Login(context.Background(), "siti", "salah-salah-salah", "10.0.0.1", "")
	_, _, _, e2 := f.svc.Login(context.Background(), "tidak-ada", "salah-salah-salah", "10.0.0.1", "")
	if hub.ErrorMessage(e1) != hub.ErrorMessage(e2) || code(e1) != code(e2) {
		t.Errorf("unknown user %q differs from wrong password %q", e2, e1)
	}
	for _, c := range [][2]string{{"", "x"}, {"siti", ""}, {strings.Repeat("a", 65), "x"}, {"siti", strings.Repeat("x", 2000)}} {
		if _, _, _, err := f.svc.Login(context.Background(), c[0], c[1], "10.0.0.1", ""); code(err) != hub.CodeInvalid {
			t.Errorf("login %.10q/%.10q: %v, want invalid", c[0], c[1], err)
		}
	}
}

func TestDisableAndPasswordEndSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{})
	ctx := context.Background()
	admin := account.Actor{User: f.user(t, "admin"), From: "10.0.0.5"}
	tok := f.login(t, "siti")

	yes := true
	if _, err := f.svc.UpdateUser(ctx, admin, "siti", account.UserChange{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.SessionUser(ctx, tok); code(err) != hub.CodeUnauthorized {
		t.Errorf("session of a disabled user: %v", err)
	}
	_, _, _, err := f.svc.Login(ctx, "siti", password("siti"), "10.0.0.1", "")
	if code(err) != hub.CodeForbidden || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("login of a disabled user: %v, want forbidden", err)
	}
	no := false
	if _, err := f.svc.UpdateUser(ctx, admin, "siti", account.UserChange{Disabled: &no}); err != nil {
		t.Fatal(err)
	}

	// Changing one's own password needs the current one, and ends every session.
	tok = f.login(t, "siti")
	self := account.Actor{User: f.user(t, "siti"), From: "10.0.0.1"}
	if err := f.svc.SetPassword(ctx, self, "siti", "salah-salah-salah", "kata-sandi-baru-1"); code(err) != hub.CodeForbidden {
		t.Errorf("password change with a wrong current one: %v", err)
	}
	if err := f.svc.SetPassword(ctx, self, "siti", password("siti"), "pendek"); code(err) != hub.CodeInvalid {
		t.Errorf("short new password: %v", err)
	}
	if err := f.svc.SetPassword(ctx, self, "siti", password("siti"), "kata-sandi-baru-1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.SessionUser(ctx, tok); code(err) != hub.CodeUnauthorized {
		t.Errorf("session after a password change: %v", err)
	}
	if _, _, _, err := f.svc.Login(ctx, "siti", "kata-sandi-baru-1", "10.0.0.1", ""); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	// An operator may not set someone else's password; an admin may.
	if err := f.svc.SetPassword(ctx, self, "budi", "", "kata-sandi-baru-2"); code(err) != hub.CodeForbidden {
		t.Errorf("operator setting another's password: %v", err)
	}
	if err := f.svc.SetPassword(ctx, admin, "budi", "", "kata-sandi-baru-2"); err != nil {
		t.Errorf("admin setting a password: %v", err)
	}
	// Even an admin gives the current password to change their own.
	if err := f.svc.SetPassword(ctx, admin, "admin", "", "kata-sandi-baru-3"); hub.ErrorCode(err) != hub.CodeForbidden {
		t.Errorf("admin changing their own password without the current one: %v", err)
	}
	if n := len(f.audit(t, account.ActionUserPassword)); n != 2 {
		t.Errorf("%d password changes audited, want 2", n)
	}
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{})
	ctx := context.Background()
	admin := account.Actor{User: f.user(t, "admin")}
	agency, role := "pln", account.RoleAgency
	u, err := f.svc.UpdateUser(ctx, admin, "siti", account.UserChange{Role: &role, Agency: &agency})
	if err != nil || u.Role != account.RoleAgency || u.Agency != "pln" {
		t.Fatalf("make siti a PLN user: %+v %v", u, err)
	}
	// Back to operator: the agency goes with the role.
	role = account.RoleOperator
	if u, err = f.svc.UpdateUser(ctx, admin, "siti", account.UserChange{Role: &role}); err != nil || u.Agency != "" {
		t.Fatalf("back to operator: %+v %v", u, err)
	}
	if _, err := f.svc.UpdateUser(ctx, admin, "admin", account.UserChange{Role: &role}); code(err) != hub.CodeConflict {
		t.Errorf("admin demoting themselves: %v, want conflict", err)
	}
	if _, err := f.svc.UpdateUser(ctx, admin, "nobody", account.UserChange{Role: &role}); code(err) != hub.CodeNotFound {
		t.Errorf("unknown user: %v", err)
	}
	bad := "root"
	if _, err := f.svc.UpdateUser(ctx, admin, "siti", account.UserChange{Role: &bad}); code(err) != hub.CodeInvalid {
		t.Errorf("bad role: %v", err)
	}
	if got := f.user(t, "siti"); got.Role != account.RoleOperator {
		t.Errorf("a refused change was stored: %+v", got)
	}
	es := f.audit(t, account.ActionUserUpdate)
	if len(es) != 2 || !strings.Contains(es[1].Detail, "role operator -> agency") {
		t.Errorf("user updates audited: %+v", es)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{})
	ctx := context.Background()
	siti := account.Actor{User: f.user(t, "siti"), From: "10.0.0.1"}
	tk, raw, err := f.svc.CreateToken(ctx, siti, "", "kentonganctl", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, account.TokenPrefix) || tk.User != "siti" || tk.Scope != account.ScopeAPI ||
		!strings.HasPrefix(raw, tk.Prefix) || strings.Contains(tk.Hash, raw) {
		t.Fatalf("token %q: %+v", raw, tk)
	}
	u, got, err := f.svc.TokenUser(ctx, raw)
	if err != nil || u.Name != "siti" || got.ID != tk.ID {
		t.Fatalf("token user: %+v %v", u, err)
	}
	for _, bad := range []string{"", "Bearer x", raw[:len(raw)-1], raw + "A", account.TokenPrefix + strings.Repeat("A", 43)} {
		if _, _, err := f.svc.TokenUser(ctx, bad); code(err) != hub.CodeUnauthorized {
			t.Errorf("token %q: %v, want unauthorized", bad, err)
		}
	}

	// Operators make their own tokens only; admins anyone's.
	if _, _, err := f.svc.CreateToken(ctx, siti, "budi", "x", "", 0); code(err) != hub.CodeForbidden {
		t.Errorf("operator making budi's token: %v", err)
	}
	admin := account.Actor{User: f.user(t, "admin")}
	btk, braw, err := f.svc.CreateToken(ctx, admin, "budi", "for budi", account.ScopeOpen311, 24*time.Hour)
	if err != nil || btk.User != "budi" || btk.CreatedBy != "admin" || btk.ExpiresAt == nil {
		t.Fatalf("admin making budi's token: %+v %v", btk, err)
	}
	for _, c := range []struct {
		name, scope string
		ttl         time.Duration
	}{{"", "", 0}, {"x", "root", 0}, {"x", "", -time.Hour}, {strings.Repeat("x", 200), "", 0}} {
		if _, _, err := f.svc.CreateToken(ctx, siti, "", c.name, c.scope, c.ttl); code(err) != hub.CodeInvalid {
			t.Errorf("token %.10q %q %v: %v, want invalid", c.name, c.scope, c.ttl, err)
		}
	}

	// Expiry.
	f.clock.Add(25 * time.Hour)
	if _, _, err := f.svc.TokenUser(ctx, braw); code(err) != hub.CodeUnauthorized {
		t.Errorf("expired token: %v", err)
	}

	// Revocation: by the owner, not by another operator (who is told it does not exist).
	other := account.Actor{User: f.user(t, "budi")}
	if _, err := f.svc.RevokeToken(ctx, other, tk.ID); code(err) != hub.CodeNotFound {
		t.Errorf("budi revoking siti's token: %v, want not_found", err)
	}
	if _, err := f.svc.RevokeToken(ctx, siti, tk.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.TokenUser(ctx, raw); code(err) != hub.CodeUnauthorized {
		t.Errorf("revoked token: %v", err)
	}
	if _, err := f.svc.RevokeToken(ctx, siti, tk.ID); code(err) != hub.CodeConflict {
		t.Errorf("second revocation: %v", err)
	}
	list, err := f.svc.Tokens(ctx, siti, "siti")
	if err != nil || len(list) != 1 || list[0].RevokedAt == nil || list[0].RevokedBy != "siti" {
		t.Errorf("siti's tokens: %+v %v", list, err)
	}
	if _, err := f.svc.Tokens(ctx, siti, ""); code(err) != hub.CodeForbidden {
		t.Errorf("operator listing all tokens: %v", err)
	}
	if all, err := f.svc.Tokens(ctx, admin, ""); err != nil || len(all) != 2 {
		t.Errorf("admin listing all tokens: %d %v", len(all), err)
	}

	// A disabled user's tokens stop working.
	_, raw2, err := f.svc.CreateToken(ctx, siti, "", "second", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := f.svc.UpdateUser(ctx, admin, "siti", account.UserChange{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.TokenUser(ctx, raw2); code(err) != hub.CodeUnauthorized {
		t.Errorf("token of a disabled user: %v", err)
	}
	if n := len(f.audit(t, account.ActionTokenCreate)); n != 3 {
		t.Errorf("%d token creations audited, want 3", n)
	}
}

func TestAuditLogAccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t, account.Options{})
	ctx := context.Background()
	if _, err := f.svc.AuditLog(ctx, account.Actor{User: f.user(t, "siti")}, account.AuditFilter{}); code(err) != hub.CodeForbidden {
		t.Errorf("operator reading the audit log: %v", err)
	}
	f.svc.Record(ctx, account.AuditEntry{Actor: "admin", Action: account.ActionConfigReload, Target: "routing.yaml", IP: "10.0.0.5"})
	es, err := f.svc.AuditLog(ctx, account.Actor{User: f.user(t, "budi")}, account.AuditFilter{Action: account.ActionConfigReload})
	if err != nil || len(es) != 1 || es[0].Target != "routing.yaml" || !es[0].At.Equal(f.clock.Now()) {
		t.Errorf("supervisor reading reloads: %+v %v", es, err)
	}
	if _, err := f.svc.AuditLog(ctx, account.Actor{User: f.user(t, "budi")}, account.AuditFilter{Limit: 5000}); code(err) != hub.CodeInvalid {
		t.Errorf("limit 5000: %v", err)
	}
}
