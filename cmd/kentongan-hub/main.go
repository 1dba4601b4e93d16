// Command kentongan-hub is the 112 centre's hub: it takes incidents from Kentongan kiosks over
// MQTT, keeps them as tickets and serves the operators' API. See docs/api.md.
//
//	kentongan-hub [--config FILE] [--data DIR] [--http ADDR] [--mqtt ADDR] [--broker URL] [--demo]
//	kentongan-hub user add|passwd|list|disable|enable …
//	kentongan-hub token add …
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kentongan/kentongan/hub/demo"
	"github.com/kentongan/kentongan/hub/hubd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(os.Args) > 1 && (os.Args[1] == "user" || os.Args[1] == "token") {
		os.Exit(adminCmd(ctx, os.Args[1:], stdConsole()))
	}

	m := hubd.NewMain()
	if err := m.ParseFlags(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "kentongan-hub:", err)
		os.Exit(2)
	}
	if m.Demo {
		demo.Register(&m.Config)
		m.DemoFunc = func(ctx context.Context, m *hubd.Main) error {
			f, err := demo.Start(ctx, m, demo.Options{Logger: m.Logger})
			if err != nil {
				return err
			}
			m.DeferClose(f.Close)
			return nil
		}
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kentongan-hub:", err)
		os.Exit(1)
	}

	<-ctx.Done()
	stop() // a second signal kills at once
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "kentongan-hub:", err)
		os.Exit(1)
	}
}
