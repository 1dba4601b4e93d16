//go:build linux

package periphgpio_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiocdev/simdev"
	"github.com/kentongan/kentongan/drivers/gpio/periphgpio"
)

// TestKernelButtonThroughPeriph runs the periph backend against the kernel on a gpio-sim chip
// whose lines are named as a Raspberry Pi's, where gpio-sim exists (the virtual kiosk's guest);
// it skips elsewhere. periph.io's drivers look for chips once, so the chip is made before Open.
func TestKernelButtonThroughPeriph(t *testing.T) {
	if err := simdev.Available(); err != nil {
		t.Skip(err)
	}
	dev, err := simdev.New(fmt.Sprintf("periph%d", os.Getpid()), 28, map[int]string{17: "GPIO17", 23: "GPIO23"})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	chip, err := periphgpio.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer chip.Close()
	in, err := chip.OpenIn(17, gpio.WithPullUp, gpio.WithDebounce(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := in.Read(); v != gpio.High {
		t.Fatalf("released button reads %s", v)
	}
	if err := dev.Pull(17, gpio.Low); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if ev, err := in.WaitForEdge(ctx); err != nil || ev.Level != gpio.Low {
		t.Fatalf("press: %v %v", ev, err)
	}
	out, err := chip.OpenOut(23)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	if v, err := dev.Value(23); err != nil || v != gpio.High {
		t.Fatalf("LED on: wire %v %v", v, err)
	}
	out.Close()
	if v, err := dev.Value(23); err != nil || v != gpio.Low {
		t.Fatalf("LED after Close: wire %v %v", v, err)
	}
}
