package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kentongan/kentongan/hub/enroll"
)

// devicesUsage is the provisioning commands' part of the usage text.
const devicesUsage = `  kentonganctl token create --site KEC/KEL/RW/RT [--lat L --lon L] [--name N] [--sms-allow 08…,08…] [--expires 24h]
        make a one-time enrollment token for one post (administrators); it is shown once
  kentonganctl token list | token revoke ID
        list enrollment tokens, or withdraw an unused one
  kentonganctl devices
        the fleet: every kiosk with its site, firmware, last seen and provisioning state
  kentonganctl device show ID
        one kiosk with its provisioning history
  kentonganctl device revoke [--reason TEXT] ID
        revoke a kiosk's credentials: the broker drops it at once and refuses it after
  kentonganctl device allow-reprovision ID
        let the kiosk's board be provisioned once more (after a repair or a move)
`

func enrollClient(f hubFlags) (*enroll.Client, error) {
	if *f.token == "" {
		return nil, usageError{errors.New("an API token is required: --token or $KENTONGAN_TOKEN")}
	}
	return enroll.NewClient(*f.url, &http.Client{Timeout: 15 * time.Second}).WithToken(*f.token), nil
}

func tokenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("say create, list or revoke")}
	}
	switch args[0] {
	case "create":
		return tokenCreate(ctx, args[1:], stdout, stderr)
	case "list":
		return tokenList(ctx, args[1:], stdout, stderr)
	case "revoke":
		return tokenRevoke(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Errorf("unknown token command %q: say create, list or revoke", args[0])}
}

func tokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, hf := newFlags("token create", stderr)
	site := fs.String("site", "", "the post, kecamatan/kelurahan/RW/RT (e.g. Panongan/Ciakar/03/02)")
	lat := fs.Float64("lat", 0, "the post's latitude")
	lon := fs.Float64("lon", 0, "the post's longitude")
	name := fs.String("name", "", "the kiosk's name (default: Pos RT …/RW … KELURAHAN)")
	allow := fs.String("sms-allow", "", "the RT/RW heads' numbers, comma-separated")
	expires := fs.Duration("expires", enroll.DefaultTokenTTL, "how long the token is valid")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *site == "" {
		return usageError{errors.New("--site is required: the post the kiosk will stand at")}
	}
	if _, err := enroll.ParseSite(*site); err != nil {
		return usageError{err}
	}
	c, err := enrollClient(hf)
	if err != nil {
		return err
	}
	req := enroll.TokenRequest{SitePath: *site, Name: *name, Expires: expires.String()}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "lat":
			req.Lat = lat
		case "lon":
			req.Lon = lon
		}
	})
	for n := range strings.SplitSeq(*allow, ",") {
		if n = strings.TrimSpace(n); n != "" {
			req.SMSAllow = append(req.SMSAllow, n)
		}
	}
	t, err := c.CreateToken(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", t.Secret)
	fmt.Fprintf(stderr, "enrollment token %s for %s, valid until %s; it is shown only now\n",
		t.ID, enroll.FormatSite(t.Site), t.ExpiresAt.In(wib).Format("2006-01-02 15:04 WIB"))
	return nil
}

func tokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, hf := newFlags("token list", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := enrollClient(hf)
	if err != nil {
		return err
	}
	ts, err := c.Tokens(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSITE\tSTATE\tEXPIRES\tDEVICE\tCREATED BY")
	now := time.Now()
	for _, t := range ts {
		state := "unused"
		switch {
		case t.RevokedAt != nil:
			state = "revoked"
		case t.UsedAt != nil:
			state = "used"
		case !now.Before(t.ExpiresAt):
			state = "expired"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, enroll.FormatSite(t.Site), state,
			t.ExpiresAt.In(wib).Format("2006-01-02 15:04 WIB"), dash(t.DeviceID), t.CreatedBy)
	}
	return w.Flush()
}

func tokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, hf := newFlags("token revoke", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("give exactly one enrollment token ID (et-…)")}
	}
	c, err := enrollClient(hf)
	if err != nil {
		return err
	}
	if err := c.RevokeToken(ctx, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrollment token %s revoked\n", fs.Arg(0))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func devices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, hf := newFlags("devices", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	c, err := enrollClient(hf)
	if err != nil {
		return err
	}
	fleet, err := c.Fleet(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSITE\tPRESENCE\tFIRMWARE\tLAST SEEN\tSOURCE\tCREDENTIALS\tPROVISIONED")
	for _, d := range fleet {
		seen := "-"
		if d.LastSeen != nil {
			seen = d.LastSeen.In(wib).Format("2006-01-02 15:04 WIB")
		}
		cred := "-"
		if d.Source == enroll.SourceEnrolled {
			cred = d.Registration
			if d.ReprovisionAllowed {
				cred += " (re-provisioning allowed)"
			}
		}
		prov := "-"
		if n := len(d.History); n > 0 {
			last := d.History[n-1]
			prov = fmt.Sprintf("%s %s", last.Kind, last.At.In(wib).Format("2006-01-02"))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, enroll.FormatSite(d.Site), d.State.Presence, dash(d.Firmware),
			seen, d.Source, cred, prov)
	}
	return w.Flush()
}

func deviceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("say show, revoke or allow-reprovision")}
	}
	fs, hf := newFlags("device "+args[0], stderr)
	reason := ""
	if args[0] == "revoke" {
		fs.StringVar(&reason, "reason", "", "why, for the provisioning history and the audit log")
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("give exactly one device ID")}
	}
	id := fs.Arg(0)
	c, err := enrollClient(hf)
	if err != nil {
		return err
	}
	switch args[0] {
	case "show":
		fleet, err := c.Fleet(ctx)
		if err != nil {
			return err
		}
		for _, d := range fleet {
			if d.ID == id {
				return showDevice(stdout, d)
			}
		}
		return fmt.Errorf("device %q is not registered at this hub", id)
	case "revoke":
		d, err := c.Revoke(ctx, id, reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s revoked: the broker has dropped it and refuses it from now on\n", d.ID)
	case "allow-reprovision":
		d, err := c.AllowReprovision(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s may be provisioned once more, with a new enrollment token (kentonganctl token create)\n", d.ID)
	default:
		return usageError{fmt.Errorf("unknown device command %q: say show, revoke or allow-reprovision", args[0])}
	}
	return nil
}

func showDevice(w io.Writer, d enroll.FleetDevice) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\t%s\nName\t%s\nSite\t%s (%.5f, %.5f)\nSource\t%s\n", d.ID, d.Name, enroll.FormatSite(d.Site), d.Site.Lat, d.Site.Lon, d.Source)
	if d.Hardware != nil {
		fmt.Fprintf(tw, "Hardware\t%s\nCredentials\t%s\nCertificate\t%s\n", d.Hardware, d.Registration, dash(d.CertSerial))
	}
	fmt.Fprintf(tw, "Firmware\t%s\nPresence\t%s\n", dash(d.Firmware), d.State.Presence)
	if d.LastSeen != nil {
		fmt.Fprintf(tw, "Last seen\t%s\n", d.LastSeen.In(wib).Format("2006-01-02 15:04:05 WIB"))
	}
	for _, e := range d.History {
		fmt.Fprintf(tw, "History\t%s  %s  by %s  %s\n", e.At.In(wib).Format("2006-01-02 15:04 WIB"), e.Kind, e.Actor, e.Detail)
	}
	return tw.Flush()
}
