// Command kentongand is the Kentongan kiosk daemon: panic buttons, status LEDs and the link to
// the 112 hub. docs/config.md describes its configuration file.
//
//	kentongand --config /etc/kentongan/kentongand.yaml
//	kentongand --provision /dev/ttyGS0 --state-dir /var/lib/kentongan [--config base.yaml]
//
// With --provision the kiosk is set up by a technician's laptop over the serial line
// (docs/provisioning.md); --config is then the base for what only the kiosk knows (gpio driver,
// modem port), and the daemon runs on the configuration the hub issued once there is one.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kentongan/kentongan/daemon"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kentongand:", err)
		os.Exit(1)
	}
}

func run() error {
	configPath := flag.String("config", "", "configuration file (YAML); with --provision, the base for the kiosk's own settings")
	provisionPort := flag.String("provision", "", "serve provisioning on this serial port (e.g. /dev/ttyGS0)")
	stateDir := flag.String("state-dir", "/var/lib/kentongan", "with --provision: where the key, credentials and issued configuration live")
	baud := flag.Int("baud", 0, "with --provision: the serial line's baud rate (default 115200)")
	flag.Parse()
	if (*configPath == "" && *provisionPort == "") || flag.NArg() > 0 {
		flag.Usage()
		return fmt.Errorf("usage: kentongand --config FILE | kentongand --provision PORT --state-dir DIR [--config BASE]")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *provisionPort != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return provision(ctx, *provisionPort, *baud, *stateDir, *configPath, log)
	}

	cfg, err := daemon.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	d, err := daemon.New(cfg, daemon.WithLogger(log))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := d.Start(ctx); err != nil {
		d.Close()
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	return d.Close()
}
