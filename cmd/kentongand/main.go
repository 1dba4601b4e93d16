// Command kentongand is the Kentongan kiosk daemon: panic buttons, status LEDs and the link to
// the 112 hub. docs/config.md describes its configuration file.
//
//	kentongand --config /etc/kentongan/kentongand.yaml
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
	configPath := flag.String("config", "", "configuration file (YAML)")
	flag.Parse()
	if *configPath == "" || flag.NArg() > 0 {
		flag.Usage()
		return fmt.Errorf("usage: kentongand --config FILE")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

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
