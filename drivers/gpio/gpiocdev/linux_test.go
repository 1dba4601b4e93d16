//go:build linux

package gpiocdev_test

import (
	"errors"
	"strings"
	"testing"

	cdev "github.com/warthog618/go-gpiocdev"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiocdev"
)

// These run on any Linux machine, with or without GPIO chips.

func TestOpenMissingChipSaysSo(t *testing.T) {
	_, err := gpiocdev.Open("gpiochip977")
	if !errors.Is(err, gpio.ErrNoChip) {
		t.Fatalf("err = %v, want ErrNoChip", err)
	}
	if !strings.Contains(err.Error(), "/dev/gpiochip977") || !strings.Contains(err.Error(), "this machine has") {
		t.Fatalf("error does not name the chip and the chips there are: %v", err)
	}
}

func TestOpenSomethingElseIsNoChip(t *testing.T) {
	_, err := gpiocdev.Open("/dev/null")
	if !errors.Is(err, gpio.ErrNoChip) || !strings.Contains(err.Error(), "not a GPIO character device") {
		t.Fatalf("err = %v, want ErrNoChip: not a GPIO character device", err)
	}
	if _, err := gpiocdev.Open(""); !errors.Is(err, gpio.ErrNoChip) {
		t.Fatalf("empty name: err = %v, want ErrNoChip", err)
	}
}

func TestFindLineWithoutChips(t *testing.T) {
	if len(cdev.Chips()) > 0 {
		t.Skip("this machine has GPIO chips; the kernel tests cover FindLine")
	}
	_, _, err := gpiocdev.FindLine("GPIO17")
	if !errors.Is(err, gpio.ErrNoChip) {
		t.Fatalf("err = %v, want ErrNoChip", err)
	}
}
