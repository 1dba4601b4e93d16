// Command kentongan-sim simulates a fleet of Kentongan kiosks against a hub and measures it
// (test/fleet, docs/fleet.md).
//
//	kentongan-sim run -broker tcp://127.0.0.1:1883 -kiosks 1000 [-rate 0.01/s | -burst 500:60] [-sms-share 0.2] [-duration 1m]
//	kentongan-sim hubconfig -kiosks 1000 -o hub.yaml
//	kentongan-sim scale -kiosks 5000,15000 -hub ./kentongan-hub -json
//	kentongan-sim drain -kiosks 20000 -queued 10 -hub ./kentongan-hub -json
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
