package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/hub/sqlite"
)

type run struct {
	code     int
	out, err string
}

func admin(t *testing.T, stdin string, args ...string) run {
	t.Helper()
	var out, errb bytes.Buffer
	c := &console{in: strings.NewReader(stdin), out: &out, errw: &errb, bcryptCost: bcrypt.MinCost}
	code := adminCmd(context.Background(), args, c)
	return run{code, out.String(), errb.String()}
}

// check opens the database the commands wrote and logs in as a hub would.
func check(t *testing.T, dir, name, password string) error {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, hubd.DBFile), sqlite.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := account.NewService(account.Options{Store: db.Accounts(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = svc.Login(context.Background(), name, password, "127.0.0.1", "")
	return err
}

func TestUserCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // not there yet: the first admin comes before the first start
	if r := admin(t, "rahasia-sekali-123\n", "user", "add", "--data", dir, "--name", "admin", "--role", "admin", "--full-name", "Admin 112"); r.code != 0 ||
		!strings.Contains(r.out, "admin added") {
		t.Fatalf("user add: %+v", r)
	}
	if err := check(t, dir, "admin", "rahasia-sekali-123"); err != nil {
		t.Fatalf("login as the new admin: %v", err)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"rahasia-sekali-123\n", []string{"user", "add", "--data", dir, "--name", "admin", "--role", "admin"}, 1, "already exists"},
		{"pendek\n", []string{"user", "add", "--data", dir, "--name", "siti", "--role", "operator"}, 1, "at least 10"},
		{"", []string{"user", "add", "--data", dir, "--name", "siti", "--role", "operator"}, 1, "no password"},
		{"x\n", []string{"user", "add", "--data", dir, "--name", "siti", "--role", "root"}, 2, "--role must be"},
		{"x\n", []string{"user", "add", "--data", dir, "--role", "operator"}, 2, "--name is required"},
		{"rahasia-sekali-123\n", []string{"user", "add", "--data", dir, "--name", "x", "--role", "agency", "--agency", "nasa"}, 1, "not in the routing"},
		{"", []string{"user", "frobnicate"}, 2, "unknown command"},
		{"", []string{"user"}, 2, "user add"},
		{"", []string{"user", "list", "--data", dir, "extra"}, 2, "unexpected argument"},
		{"", []string{"token", "add", "--data", dir, "--name", "x"}, 2, "--user is required"},
		{"", []string{"user", "passwd", "--data", dir, "--name", "nobody"}, 1, "no password"},
	} {
		r := admin(t, c.stdin, c.args...)
		if r.code != c.code || !strings.Contains(r.err, c.want) {
			t.Errorf("%v: %+v, want exit %d with %q", c.args, r, c.code, c.want)
		}
	}
	if r := admin(t, "petugas-damkar-1\n", "user", "add", "--data", dir, "--name", "damkar1", "--role", "agency", "--agency", "damkar"); r.code != 0 {
		t.Fatalf("agency user: %+v", r)
	}
	r := admin(t, "", "user", "list", "--data", dir)
	if r.code != 0 || !strings.Contains(r.out, "admin") || !strings.Contains(r.out, "Admin 112") || !strings.Contains(r.out, "damkar1  agency  damkar") {
		t.Errorf("user list: %+v", r)
	}
	if r := admin(t, "kata-sandi-baru-9\n", "user", "passwd", "--data", dir, "--name", "damkar1"); r.code != 0 {
		t.Fatalf("passwd: %+v", r)
	}
	if err := check(t, dir, "damkar1", "kata-sandi-baru-9"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	if r := admin(t, "", "user", "disable", "--data", dir, "--name", "damkar1"); r.code != 0 {
		t.Fatalf("disable: %+v", r)
	}
	if err := check(t, dir, "damkar1", "kata-sandi-baru-9"); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("login of a disabled user: %v", err)
	}

	r = admin(t, "", "token", "add", "--data", dir, "--user", "admin", "--name", "e2e", "--expires-days", "1")
	if r.code != 0 || !strings.HasPrefix(r.out, account.TokenPrefix) || !strings.Contains(r.err, "shown only now") {
		t.Fatalf("token add: %+v", r)
	}
}

func TestPasswordFromTerminal(t *testing.T) {
	answers := []string{"rahasia-sekali-123", "rahasia-sekali-124"}
	var errb bytes.Buffer
	c := &console{errw: &errb, out: io.Discard, isTerm: func() bool { return true }, readPW: func() ([]byte, error) {
		a := answers[0]
		answers = answers[1:]
		return []byte(a), nil
	}}
	if _, err := c.password("Password: ", true); err == nil || !strings.Contains(err.Error(), "differ") {
		t.Errorf("different passwords: %v", err)
	}
	answers = []string{"rahasia-sekali-123", "rahasia-sekali-123"}
	if pw, err := c.password("Password: ", true); err != nil || pw != "rahasia-sekali-123" {
		t.Errorf("same passwords: %q %v", pw, err)
	}
	if !strings.Contains(errb.String(), "Again: ") {
		t.Errorf("no confirmation prompt: %q", errb.String())
	}
}
