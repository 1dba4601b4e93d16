// Package vkiosk is the virtual kiosk: a QEMU guest running Debian's own kernel, with the
// kernel's gpio-sim driver standing in for a Raspberry Pi's GPIO lines, in which kentongand runs
// with its gpiocdev backend exactly as on a kiosk. Tests on the host start a hub, boot the guest
// (Boot), start kentongand in it with a configuration of their choosing, press buttons by
// pulling the simulated lines and read the LEDs from the simulated line values. With
// Options.ModemPath, a host pty (a simulated modem's) is the guest's second serial port,
// ModemDevice, for kentongand's modem.
//
// The kernel artefacts (an uncompressed vmlinux, configfs.ko, an e1000 NIC driver and a
// gpio-sim.ko built out of tree, since Debian builds its kernel without CONFIG_GPIO_SIM) come
// from build.sh, which caches them under CacheDir. The Go programs of the guest (guestinit as
// /init, and kentongand) are built from this tree by BuildInitramfs at every run.
package vkiosk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoArtefacts means build.sh has not been run on this machine (or its cache was removed).
var ErrNoArtefacts = errors.New("vkiosk: kernel artefacts not built")

// CacheDir is where build.sh keeps its downloads and builds: $KENTONGAN_VKIOSK_CACHE, else
// $XDG_CACHE_HOME/kentongan-vkiosk, else ~/.cache/kentongan-vkiosk. build.sh computes the same.
func CacheDir() string {
	if d := os.Getenv("KENTONGAN_VKIOSK_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kentongan-vkiosk")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "kentongan-vkiosk")
	}
	return filepath.Join(os.TempDir(), "kentongan-vkiosk")
}

// Artefacts are the kernel side of the guest, as build.sh leaves them in CacheDir()/current.
type Artefacts struct {
	Dir     string
	Kernel  string   // uncompressed vmlinux, booted through its PVH entry
	Release string   // the kernel's release, e.g. 6.1.0-56-amd64
	Modules []string // absolute paths, in load order (a module's dependencies first)
}

// FindArtefacts reads the artefacts in dir, or in CacheDir()/current when dir is empty. It
// returns an error wrapping ErrNoArtefacts when they are not there.
func FindArtefacts(dir string) (Artefacts, error) {
	if dir == "" {
		dir = filepath.Join(CacheDir(), "current")
	}
	a := Artefacts{Dir: dir, Kernel: filepath.Join(dir, "vmlinux")}
	if _, err := os.Stat(a.Kernel); err != nil {
		return a, fmt.Errorf("%w: %v", ErrNoArtefacts, err)
	}
	rel, err := os.ReadFile(filepath.Join(dir, "release"))
	if err != nil {
		return a, fmt.Errorf("%w: %v", ErrNoArtefacts, err)
	}
	a.Release = strings.TrimSpace(string(rel))
	f, err := os.Open(filepath.Join(dir, "modules.list"))
	if err != nil {
		return a, fmt.Errorf("%w: %v", ErrNoArtefacts, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		if filepath.Base(name) != name {
			return a, fmt.Errorf("%s/modules.list: %q is not a file name", dir, name)
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return a, fmt.Errorf("%w: %v", ErrNoArtefacts, err)
		}
		a.Modules = append(a.Modules, p)
	}
	if err := sc.Err(); err != nil {
		return a, fmt.Errorf("read %s/modules.list: %w", dir, err)
	}
	if len(a.Modules) == 0 {
		return a, fmt.Errorf("%w: %s/modules.list names no module", ErrNoArtefacts, dir)
	}
	return a, nil
}
