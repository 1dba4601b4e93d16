package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/hub/route"
	"github.com/kentongan/kentongan/hub/sqlite"
)

const adminUsage = `kentongan-hub user and token commands work on the hub's database directly, running hub or not:

  kentongan-hub user add    [--data DIR | --config FILE] --name NAME --role ROLE [--agency ID] [--full-name TEXT]
  kentongan-hub user passwd [--data DIR | --config FILE] --name NAME
  kentongan-hub user list   [--data DIR | --config FILE]
  kentongan-hub user disable|enable [--data DIR | --config FILE] --name NAME
  kentongan-hub token add   [--data DIR | --config FILE] --user NAME --name LABEL [--scope api|open311] [--expires-days N]

ROLE is operator, supervisor, agency (with --agency, an agency ID of the routing configuration)
or admin. The password is asked on the terminal, or read as the first line of standard input;
there is no default password. The first administrator is made this way.
`

// console is where an admin command reads passwords and writes its output.
type console struct {
	in     io.Reader
	out    io.Writer
	errw   io.Writer
	isTerm func() bool
	readPW func() ([]byte, error)
	lines  *bufio.Reader
	// bcryptCost for new passwords; 0 is the account package's default. Tests lower it.
	bcryptCost int
}

func stdConsole() *console {
	fd := int(os.Stdin.Fd())
	return &console{
		in: os.Stdin, out: os.Stdout, errw: os.Stderr,
		isTerm: func() bool { return term.IsTerminal(fd) },
		readPW: func() ([]byte, error) { return term.ReadPassword(fd) },
	}
}

// password asks for a new password: twice on a terminal, without echo; otherwise it is the
// first line of standard input, so that scripts can pipe one in.
func (c *console) password(prompt string, confirm bool) (string, error) {
	if c.isTerm != nil && c.isTerm() {
		fmt.Fprint(c.errw, prompt)
		pw, err := c.readPW()
		fmt.Fprintln(c.errw)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if confirm {
			fmt.Fprint(c.errw, "Again: ")
			again, err := c.readPW()
			fmt.Fprintln(c.errw)
			if err != nil {
				return "", fmt.Errorf("read password: %w", err)
			}
			if string(again) != string(pw) {
				return "", errors.New("the passwords differ")
			}
		}
		return string(pw), nil
	}
	if c.lines == nil {
		c.lines = bufio.NewReader(c.in)
	}
	line, err := c.lines.ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		return "", errors.New("no password on standard input (give it as the first line)")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// adminCmd runs "user …" and "token …"; it returns the exit code.
func adminCmd(ctx context.Context, args []string, c *console) int {
	if len(args) < 2 || args[1] == "-h" || args[1] == "--help" {
		fmt.Fprint(c.errw, adminUsage)
		if len(args) < 2 {
			return 2
		}
		return 0
	}
	cmd := args[0] + " " + args[1]
	err := runAdmin(ctx, cmd, args[2:], c)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err == nil:
		return 0
	}
	if ue, ok := errors.AsType[usageError](err); ok {
		fmt.Fprintf(c.errw, "kentongan-hub %s: %v\n\n%s", cmd, ue.error, adminUsage)
		return 2
	}
	fmt.Fprintf(c.errw, "kentongan-hub %s: %v\n", cmd, err)
	return 1
}

type usageError struct{ error }

func runAdmin(ctx context.Context, cmd string, args []string, c *console) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(c.errw)
	data := fs.String("data", "./data", "the hub's data `dir`ectory")
	config := fs.String("config", "", "the hub's configuration `file`, for its data_dir and routing")
	var name, role, agency, fullName, userName, scope *string
	var days *int
	switch cmd {
	case "user add":
		name = fs.String("name", "", "login `name`: lower-case letters, digits, . _ -")
		role = fs.String("role", "", "operator, supervisor, agency or admin")
		agency = fs.String("agency", "", "for role agency: the agency `ID`")
		fullName = fs.String("full-name", "", "the person's name, for the dashboard")
	case "user passwd", "user disable", "user enable":
		name = fs.String("name", "", "login `name`")
	case "user list":
	case "token add":
		userName = fs.String("user", "", "whose token: a user `name`")
		name = fs.String("name", "", "what the token is for, e.g. \"kentonganctl on the night desk\"")
		scope = fs.String("scope", account.ScopeAPI, "api (the whole API) or open311 (Open311 only)")
		days = fs.Int("expires-days", 0, "lifetime in days; 0 means no expiry")
	default:
		return usageError{fmt.Errorf("unknown command %q", cmd)}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if name != nil && *name == "" {
		return usageError{errors.New("--name is required")}
	}

	dataDir, routes, err := hubSettings(*data, *config, fs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	quiet := slog.New(slog.NewTextHandler(c.errw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := sqlite.Open(ctx, filepath.Join(dataDir, hubd.DBFile), sqlite.Options{Logger: quiet})
	if err != nil {
		return err
	}
	defer store.Close()
	svc, err := account.NewService(account.Options{
		Store:      store.Accounts(),
		Logger:     quiet,
		BcryptCost: c.bcryptCost,
		AgencyExists: func(id string) bool {
			_, ok := routes.Agency(id)
			return ok
		},
	})
	if err != nil {
		return err
	}
	by := account.Actor{CLI: osUser(), From: "local"}

	switch cmd {
	case "user add":
		if !account.ValidRole(*role) {
			return usageError{fmt.Errorf("--role must be one of %s", strings.Join(account.Roles, ", "))}
		}
		pw, err := c.password("Password for "+*name+": ", true)
		if err != nil {
			return err
		}
		u, err := svc.CreateUser(ctx, by, account.NewUser{Name: *name, FullName: *fullName, Role: *role, Agency: *agency, Password: pw})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "user %s added with role %s\n", u.Name, u.Role)
	case "user passwd":
		pw, err := c.password("New password for "+*name+": ", true)
		if err != nil {
			return err
		}
		if err := svc.SetPassword(ctx, by, *name, "", pw); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "password of %s changed; their sessions are ended\n", *name)
	case "user disable", "user enable":
		disabled := cmd == "user disable"
		if _, err := svc.UpdateUser(ctx, by, *name, account.UserChange{Disabled: &disabled}); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "user %s %sd\n", *name, strings.TrimPrefix(cmd, "user "))
	case "user list":
		users, err := svc.Users(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tROLE\tAGENCY\tDISABLED\tFULL NAME")
		for _, u := range users {
			fmt.Fprintf(w, "%s\t%s\t%s\t%t\t%s\n", u.Name, u.Role, dash(u.Agency), u.Disabled, dash(u.FullName))
		}
		return w.Flush()
	case "token add":
		if *userName == "" {
			return usageError{errors.New("--user is required")}
		}
		if *days < 0 {
			return usageError{errors.New("--expires-days must not be negative")}
		}
		t, raw, err := svc.CreateToken(ctx, by, *userName, *name, *scope, time.Duration(*days)*24*time.Hour)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.errw, "token %s for %s (scope %s); it is shown only now:\n", t.ID, t.User, t.Scope)
		fmt.Fprintln(c.out, raw)
	}
	return nil
}

// hubSettings returns the data directory and the routing table, from --config when given
// (with --data overriding its data_dir) or the defaults.
func hubSettings(data, config string, fs *flag.FlagSet) (string, *route.Table, error) {
	if config == "" {
		return data, route.Default(), nil
	}
	cfg, err := hubd.LoadConfig(config)
	if err != nil {
		return "", nil, err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "data" {
			cfg.DataDir = data
		}
	})
	if cfg.Routing.File == "" {
		return cfg.DataDir, route.Default(), nil
	}
	raw, err := os.ReadFile(cfg.Routing.File)
	if err != nil {
		return "", nil, fmt.Errorf("routing: %w", err)
	}
	t, err := route.Parse(raw, os.Getenv)
	if err != nil {
		return "", nil, fmt.Errorf("routing %s: %w", cfg.Routing.File, err)
	}
	return cfg.DataDir, t, nil
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
