// Command kentonganctl is the command line for technicians and 112 operators.
//
//	kentonganctl tickets [--hub URL] [--token T] [--status S] [--device ID] [--limit N]
//	kentonganctl ack [--hub URL] [--token T] [--note TEXT] TICKET
//	kentonganctl token create --site KEC/KEL/RW/RT [--expires 24h] | token list | token revoke ID
//	kentonganctl devices | device show ID | device revoke ID | device allow-reprovision ID
//
// TICKET is a ticket's ID or its number (112-000123). The hub's URL also comes from
// $KENTONGAN_HUB (default http://localhost:8080), and the API token from $KENTONGAN_TOKEN.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/hubclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `kentonganctl: the Kentongan command line

  kentonganctl tickets [--hub URL] [--token T] [--status S] [--device ID] [--limit N]
        list tickets, newest first
  kentonganctl ack [--hub URL] [--token T] [--note TEXT] TICKET
        acknowledge a ticket (its ID or number, e.g. 112-000123) as the token's user;
        the kiosk's LED follows
` + devicesUsage + provisionUsage + `
The hub's URL defaults to $KENTONGAN_HUB, or http://localhost:8080. The API token defaults to
$KENTONGAN_TOKEN; make one in the dashboard, with POST /api/v1/tokens, or on the hub with
"kentongan-hub token add --user NAME --name LABEL".
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	switch args[0] {
	case "tickets":
		err = tickets(ctx, args[1:], stdout, stderr)
	case "ack":
		err = ack(ctx, args[1:], stdout, stderr)
	case "token":
		err = tokenCmd(ctx, args[1:], stdout, stderr)
	case "devices":
		err = devices(ctx, args[1:], stdout, stderr)
	case "device":
		err = deviceCmd(ctx, args[1:], stdout, stderr)
	case "provision":
		err = provision(ctx, args[1:], stdout, stderr, openSerial)
	default:
		fmt.Fprintf(stderr, "kentonganctl: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "kentonganctl %s: %v\n", args[0], err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "kentonganctl %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func defaultHub() string {
	if v := os.Getenv("KENTONGAN_HUB"); v != "" {
		return v
	}
	return "http://localhost:8080"
}

// hubFlags are the flags every command has.
type hubFlags struct {
	url, token *string
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, hubFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, hubFlags{
		url:   fs.String("hub", defaultHub(), "the hub's base URL"),
		token: fs.String("token", os.Getenv("KENTONGAN_TOKEN"), "API token (default $KENTONGAN_TOKEN)"),
	}
}

// parse parses flags; a bad flag is a usage error (the flag package has already said why).
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageError{err}
	}
	return err
}

// client returns the API client; without a token it says where to get one, since the hub
// would only answer 401.
func client(f hubFlags) (*hubclient.Client, error) {
	if *f.token == "" {
		return nil, usageError{errors.New("an API token is required: --token or $KENTONGAN_TOKEN")}
	}
	return hubclient.New(*f.url, &http.Client{Timeout: 15 * time.Second}).WithToken(*f.token), nil
}

func tickets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, hf := newFlags("tickets", stderr)
	status := fs.String("status", "", "only tickets in this status (new, acknowledged, …)")
	device := fs.String("device", "", "only tickets from this kiosk")
	limit := fs.Int("limit", 50, "at most this many")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	c, err := client(hf)
	if err != nil {
		return err
	}
	ts, err := c.Tickets(ctx, hub.TicketFilter{Status: hub.Status(*status), DeviceID: *device, Limit: *limit})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NUMBER\tSTATUS\tPRIORITY\tCATEGORY\tKIOSK\tCREATED\tID")
	for _, t := range ts {
		cat := t.Category
		if cat == "" {
			cat = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Number, t.Status, t.Priority, cat, t.DeviceID,
			t.CreatedAt.In(wib).Format("2006-01-02 15:04:05 WIB"), t.ID)
	}
	return w.Flush()
}

// wib is Western Indonesia Time, which operators read; it has no daylight saving.
var wib = time.FixedZone("WIB", 7*3600)

func ack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, hf := newFlags("ack", stderr)
	by := fs.String("by", "", "who acknowledges: the token's user, who is recorded anyway")
	note := fs.String("note", "", "a note for the audit trail")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("give exactly one ticket ID or number")}
	}
	c, err := client(hf)
	if err != nil {
		return err
	}
	id := fs.Arg(0)
	t, err := c.Acknowledge(ctx, id, *by, *note)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s acknowledged by %s\n", t.Number, t.AcknowledgedBy)
	return nil
}
