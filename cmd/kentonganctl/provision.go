package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/provisioning"
	"github.com/kentongan/kentongan/provisioning/laptop"
)

// provisionUsage is the provision command's line in the usage text.
const provisionUsage = `  kentonganctl provision --port /dev/ttyACM0 --hub URL --token ENROLLMENT_TOKEN --site KEC/KEL/RW/RT [--lat L --lon L]
        set a kiosk up over its USB cable: register it with the hub, store its credentials,
        and run its self-test (docs/provisioning.md); exit 0 only if every check passed
`

// provision runs `kentonganctl provision`. open opens the serial port; tests give a pty.
func provision(ctx context.Context, args []string, stdout, stderr io.Writer,
	open func(port string, baud int) (io.ReadWriteCloser, error)) error {
	fs, hf := newFlags("provision", stderr)
	port := fs.String("port", "/dev/ttyACM0", "the kiosk's serial port on this laptop")
	baud := fs.Int("baud", provisioning.DefaultBaud, "baud rate, for a USB-serial adapter on the kiosk's UART")
	site := fs.String("site", "", "the post to set up, kecamatan/kelurahan/RW/RT (e.g. Panongan/Ciakar/03/02)")
	lat := fs.Float64("lat", 0, "latitude measured at the post (optional)")
	lon := fs.Float64("lon", 0, "longitude measured at the post (optional)")
	press := fs.Duration("press-timeout", 0, "how long to wait for each button press in the self-test (default: the kiosk's, 60s)")
	// --token here is the enrollment token, not an API token: it must not default to one.
	*hf.token = os.Getenv("KENTONGAN_ENROLL_TOKEN")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *hf.token == "" {
		return usageError{errors.New("an enrollment token is required: --token (an admin makes one with kentonganctl token create)")}
	}
	var sitePtr *hub.Site
	if *site != "" {
		s, err := enroll.ParseSite(*site)
		if err != nil {
			return usageError{err}
		}
		s.Lat, s.Lon = *lat, *lon
		sitePtr = &s
	} else if *lat != 0 || *lon != 0 {
		return usageError{errors.New("--lat and --lon need --site")}
	}
	line, err := open(*port, *baud)
	if err != nil {
		fmt.Fprintf(stdout, "GAGAL / FAILED: port %s tidak bisa dibuka / cannot be opened: %v\n", *port, err)
		return err
	}
	defer line.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	_, err = laptop.Run(ctx, laptop.Options{Line: line, Port: *port, Hub: *hf.url, Token: *hf.token, Site: sitePtr,
		Out: stdout, Client: "kentonganctl", PressTimeout: *press})
	if err != nil {
		return errReported
	}
	return nil
}

// errReported: the command has explained the failure already; exit 1 without saying more.
var errReported = errors.New("provisioning failed")

func openSerial(port string, baud int) (io.ReadWriteCloser, error) {
	return provisioning.OpenSerial(port, baud)
}
