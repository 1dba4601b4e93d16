package vkiosk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

// InitramfsOptions says what goes into the guest's initramfs.
type InitramfsOptions struct {
	Artefacts Artefacts
	// ModuleDir is the root of this Go module; empty: found from the working directory.
	ModuleDir string
	// Kentongand is a static linux/amd64 kentongand to use as it is; empty: built from ModuleDir.
	Kentongand string
	// Lines is the number of lines of the simulated GPIO chip (default 32, like the
	// GPIO0…GPIO31 a Raspberry Pi's header reaches).
	Lines int
}

// Paths of the programs in the guest.
const (
	guestInit       = "/init"
	guestKentongand = "/bin/kentongand"
	guestModuleDir  = "/lib/modules"
)

// BuildInitramfs builds guestinit and kentongand as static binaries and writes an initramfs
// (cpio, uncompressed: unpacking is faster than decompressing under emulation) with them, the
// kernel modules and the init's configuration to dst.
func BuildInitramfs(ctx context.Context, dst string, o InitramfsOptions) error {
	if o.ModuleDir == "" {
		dir, err := moduleRoot()
		if err != nil {
			return err
		}
		o.ModuleDir = dir
	}
	tmp, err := os.MkdirTemp("", "vkiosk-build-")
	if err != nil {
		return fmt.Errorf("build initramfs: %w", err)
	}
	defer os.RemoveAll(tmp)

	initBin := filepath.Join(tmp, "init")
	if err := goBuild(ctx, o.ModuleDir, "./test/vkiosk/guestinit", initBin); err != nil {
		return err
	}
	kBin := o.Kentongand
	if kBin == "" {
		kBin = filepath.Join(tmp, "kentongand")
		if err := goBuild(ctx, o.ModuleDir, "./cmd/kentongand", kBin); err != nil {
			return err
		}
	}

	files := []File{
		{Path: "/dev", Mode: fs.ModeDir | 0o755},
		// The kernel opens /dev/console for init's stdin, stdout and stderr before init runs
		// and mounts devtmpfs; without the node init's messages would go nowhere.
		{Path: "/dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1},
		{Path: "/proc", Mode: fs.ModeDir | 0o755},
		{Path: "/sys", Mode: fs.ModeDir | 0o755},
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "/var/lib/kentongand", Mode: fs.ModeDir | 0o700},
	}
	add := func(guestPath, hostPath string, mode fs.FileMode) error {
		data, err := os.ReadFile(hostPath)
		if err != nil {
			return fmt.Errorf("build initramfs: %w", err)
		}
		files = append(files, File{Path: guestPath, Mode: mode, Data: data})
		return nil
	}
	if err := add(guestInit, initBin, 0o755); err != nil {
		return err
	}
	if err := add(guestKentongand, kBin, 0o755); err != nil {
		return err
	}
	cfg := struct {
		Modules    []string `json:"modules"`
		Lines      int      `json:"lines,omitempty"`
		Kentongand string   `json:"kentongand"`
	}{Lines: o.Lines, Kentongand: guestKentongand}
	for _, m := range o.Artefacts.Modules {
		p := guestModuleDir + "/" + filepath.Base(m)
		if err := add(p, m, 0o644); err != nil {
			return err
		}
		cfg.Modules = append(cfg.Modules, p)
	}
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("build initramfs: %w", err)
	}
	files = append(files, File{Path: "/etc/vkiosk/init.json", Mode: 0o644, Data: cfgJSON})

	var buf bytes.Buffer
	if err := WriteCPIO(&buf, files); err != nil {
		return err
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

// goBuild builds a static linux/amd64 binary: the guest has no C library.
func goBuild(ctx context.Context, moduleDir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for the guest: %w\n%s", pkg, err, msg)
	}
	return nil
}

// moduleRoot finds the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
