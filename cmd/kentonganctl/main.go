// Command kentonganctl is the command line for technicians and 112 operators.
//
//	kentonganctl tickets [--hub URL] [--status S] [--device ID] [--limit N]
//	kentonganctl ack [--hub URL] [--by NAME] [--note TEXT] TICKET
//
// TICKET is a ticket's ID or its number (112-000123). The hub's URL also comes from
// $KENTONGAN_HUB (default http://localhost:8080).
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

  kentonganctl tickets [--hub URL] [--status S] [--device ID] [--limit N]
        list tickets, newest first
  kentonganctl ack [--hub URL] [--by NAME] [--note TEXT] TICKET
        acknowledge a ticket (its ID or number, e.g. 112-000123); the kiosk's LED follows

The hub's URL defaults to $KENTONGAN_HUB, or http://localhost:8080.
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

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	hubURL := fs.String("hub", defaultHub(), "the hub's base URL")
	return fs, hubURL
}

// parse parses flags; a bad flag is a usage error (the flag package has already said why).
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageError{err}
	}
	return err
}

func client(hubURL string) *hubclient.Client {
	return hubclient.New(hubURL, &http.Client{Timeout: 15 * time.Second})
}

func tickets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, hubURL := newFlags("tickets", stderr)
	status := fs.String("status", "", "only tickets in this status (new, acknowledged, …)")
	device := fs.String("device", "", "only tickets from this kiosk")
	limit := fs.Int("limit", 50, "at most this many")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	ts, err := client(*hubURL).Tickets(ctx, hub.TicketFilter{Status: hub.Status(*status), DeviceID: *device, Limit: *limit})
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
	fs, hubURL := newFlags("ack", stderr)
	by := fs.String("by", os.Getenv("USER"), "who acknowledges")
	note := fs.String("note", "", "a note for the audit trail")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("give exactly one ticket ID or number")}
	}
	if *by == "" {
		return usageError{errors.New("--by is required (who acknowledges)")}
	}
	c := client(*hubURL)
	id := fs.Arg(0)
	t, err := c.Acknowledge(ctx, id, *by, *note)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s acknowledged by %s\n", t.Number, *by)
	return nil
}
