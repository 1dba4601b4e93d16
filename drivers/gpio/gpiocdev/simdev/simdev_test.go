package simdev_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/gpio/gpiocdev/simdev"
)

func TestBadRequests(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines int
		names map[int]string
	}{
		{"", 4, nil},
		{"a/b", 4, nil},
		{"ok", 0, nil},
		{"ok", 4, map[int]string{4: "GPIO4"}},
	} {
		if d, err := simdev.New(tc.name, tc.lines, tc.names); err == nil || errors.Is(err, simdev.ErrUnavailable) {
			if d != nil {
				d.Close()
			}
			t.Errorf("New(%q, %d, %v): %v, want an error about the request", tc.name, tc.lines, tc.names, err)
		}
	}
}

func TestDevice(t *testing.T) {
	if err := simdev.Available(); err != nil {
		if _, err := simdev.New("x", 1, nil); !errors.Is(err, simdev.ErrUnavailable) {
			t.Fatalf("New without gpio-sim: %v, want ErrUnavailable", err)
		}
		t.Skip(err)
	}
	d, err := simdev.New(fmt.Sprintf("simdev%d", os.Getpid()), 2, map[int]string{1: "SIMDEV_LINE"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/dev/" + d.Chip()); err != nil {
		t.Fatalf("chip %q has no device: %v", d.Chip(), err)
	}
	for _, l := range []gpio.Level{gpio.High, gpio.Low} {
		if err := d.Pull(0, l); err != nil {
			t.Fatal(err)
		}
		if v, err := d.Value(0); err != nil || v != l {
			t.Fatalf("pulled %s, value %s %v", l, v, err)
		}
	}
	if err := d.Pull(2, gpio.Low); err == nil {
		t.Fatal("line 2 of 2 accepted")
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Value(0); err == nil {
		t.Fatal("value of a removed chip")
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close after Remove: %v", err)
	}
}
