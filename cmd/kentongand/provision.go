package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kentongan/kentongan/daemon"
	"github.com/kentongan/kentongan/provisioning"
)

// reopenDelay spaces attempts to open the provisioning port while no laptop is plugged in: the
// USB gadget's port reads as hung up then.
const reopenDelay = time.Second

// provision runs the kiosk in provisioning mode: the daemon on the issued configuration, if
// any, and the provisioning protocol on port, session after session, until ctx ends.
func provision(ctx context.Context, port string, baud int, stateDir, basePath string, log *slog.Logger) error {
	var base []byte
	if basePath != "" {
		b, err := os.ReadFile(basePath)
		if err != nil {
			return fmt.Errorf("base config: %w", err)
		}
		base = b
	}
	reset := resetAtBoot(ctx, stateDir, log)
	p, err := daemon.NewProvisioner(daemon.ProvisionConfig{StateDir: stateDir, Base: base, Reset: reset,
		Options: []daemon.Option{daemon.WithLogger(log)}}, log)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Start(ctx); err != nil {
		// A kiosk whose configuration broke must still be reachable to be provisioned again.
		log.Error("cannot start the daemon on the provisioned configuration", "err", err)
	}
	log.Info("provisioning port open", "port", port, "state_dir", stateDir)
	quiet := false
	for ctx.Err() == nil {
		rw, err := provisioning.OpenSerial(port, baud)
		if err != nil {
			if !quiet {
				log.Warn("cannot open the provisioning port; retrying", "port", port, "err", err)
				quiet = true
			}
		} else {
			quiet = false
			err := p.Serve(ctx, rw)
			rw.Close()
			if err != nil && !errors.Is(err, provisioning.ErrClosed) && ctx.Err() == nil {
				log.Warn("provisioning session ended", "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(reopenDelay):
		}
	}
	log.Info("shutting down")
	return nil
}

// resetAtBoot checks the physical reset: the first panic button held while kentongand starts.
func resetAtBoot(ctx context.Context, stateDir string, log *slog.Logger) bool {
	cfg, err := daemon.LoadConfig(filepath.Join(stateDir, "current", "kentongand.yaml"))
	if err != nil {
		return false // blank: there is nothing to reset
	}
	held, err := daemon.ResetHeld(ctx, cfg, daemon.ResetHoldTime, log)
	if err != nil {
		log.Warn("cannot read the reset button", "err", err)
		return false
	}
	return held
}
