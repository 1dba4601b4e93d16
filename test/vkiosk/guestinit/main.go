// Command guestinit is /init of the virtual kiosk: a QEMU guest running Debian's kernel with the
// gpio-sim driver. It is a static binary (CGO_ENABLED=0) and the only program in the initramfs
// besides kentongand, so it does by hand what a distribution's init would: it mounts the kernel
// filesystems, loads the modules, creates the simulated GPIO chip through configfs, brings up the
// network QEMU's user-mode networking expects, and serves the control API of package guestapi,
// through which the host harness starts kentongand, presses buttons and watches LEDs.
//
// Whatever goes wrong before the control server is up powers the guest off with the reason on
// the console, so that the host sees QEMU exit at once instead of waiting for a timeout.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ConfigPath is where the harness puts the init's Config in the initramfs.
const ConfigPath = "/etc/vkiosk/init.json"

// Config is what the harness tells /init. Zero fields take the defaults of defaultConfig.
type Config struct {
	// Modules are loaded in this order; a module's dependencies must come before it.
	Modules []string `json:"modules"`
	// Lines is the number of lines of the simulated chip's one bank.
	Lines int `json:"lines"`
	// Interface is configured with Address (CIDR) and brought up.
	Interface string `json:"interface"`
	Address   string `json:"address"`
	// Kentongand is the daemon's binary.
	Kentongand string `json:"kentongand"`
}

func defaultConfig() Config {
	return Config{
		Lines:      32,
		Interface:  "eth0",
		Address:    "10.0.2.15/24", // QEMU user-mode networking's guest address
		Kentongand: "/bin/kentongand",
	}
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stdout, nil)).With("proc", "vkiosk-init")
	if err := run(log); err != nil {
		log.Error("virtual kiosk init failed; powering off", "err", err)
		fmt.Fprintf(os.Stdout, "VKIOSK-INIT-FAILED: %v\n", err)
		powerOff()
	}
}

func run(log *slog.Logger) error {
	if err := mountBase(); err != nil {
		return err
	}
	cfg, err := loadConfig(ConfigPath)
	if err != nil {
		return err
	}
	for _, m := range cfg.Modules {
		if err := loadModule(m); err != nil {
			return err
		}
	}
	if err := mount("configfs", "/sys/kernel/config", "configfs"); err != nil {
		return err
	}
	chip, err := createChip("kiosk", cfg.Lines)
	if err != nil {
		return err
	}
	log.Info("gpio-sim chip live", "chip", chip.name, "dev", chip.devName, "lines", chip.lines)
	if err := setUp("lo", ""); err != nil {
		return err
	}
	if err := waitInterface(cfg.Interface, 20*time.Second); err != nil {
		return err
	}
	if err := setUp(cfg.Interface, cfg.Address); err != nil {
		return err
	}
	if err := os.MkdirAll("/var/lib/kentongand", 0o700); err != nil {
		return fmt.Errorf("create kentongand's state directory: %w", err)
	}
	boot := uptime()
	log.Info("virtual kiosk ready", "boot", boot, "interface", cfg.Interface, "address", cfg.Address)
	srv := newServer(log, chip, cfg.Kentongand, boot)
	return srv.serve()
}

func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read init config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return cfg, fmt.Errorf("parse init config %s: %w", path, err)
	}
	if len(c.Modules) > 0 {
		cfg.Modules = c.Modules
	}
	if c.Lines != 0 {
		cfg.Lines = c.Lines
	}
	if c.Interface != "" {
		cfg.Interface = c.Interface
	}
	if c.Address != "" {
		cfg.Address = c.Address
	}
	if c.Kentongand != "" {
		cfg.Kentongand = c.Kentongand
	}
	if cfg.Lines < 1 || cfg.Lines > 1024 {
		return cfg, fmt.Errorf("init config %s: lines %d out of range 1..1024", path, cfg.Lines)
	}
	return cfg, nil
}

func mountBase() error {
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := mount(m.src, m.dir, m.fs); err != nil {
			return err
		}
	}
	return nil
}

func mount(src, dir, fstype string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	if err := unix.Mount(src, dir, fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount %s on %s: %w", fstype, dir, err)
	}
	return nil
}

// loadModule loads a kernel module from a file, as insmod does; there is no modprobe, so
// dependencies are the caller's order.
func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}

// simChip is a live gpio-sim chip with one bank.
type simChip struct {
	name    string // character device, e.g. gpiochip0
	devName string // platform device, e.g. gpio-sim.0
	lines   int
}

// createChip creates a gpio-sim device through configfs with one bank of n lines named like a
// Raspberry Pi's ("GPIO0"…), so that kentongand can find lines by name as well as by offset.
func createChip(name string, n int) (simChip, error) {
	dev := filepath.Join("/sys/kernel/config/gpio-sim", name)
	bank := filepath.Join(dev, "bank0")
	if err := os.MkdirAll(bank, 0o755); err != nil {
		return simChip{}, fmt.Errorf("create gpio-sim bank (is gpio-sim.ko loaded?): %w", err)
	}
	write := func(path, value string) error {
		if err := os.WriteFile(path, []byte(value), 0); err != nil {
			return fmt.Errorf("configure gpio-sim: %w", err)
		}
		return nil
	}
	if err := write(filepath.Join(bank, "num_lines"), strconv.Itoa(n)); err != nil {
		return simChip{}, err
	}
	if err := write(filepath.Join(bank, "label"), "vkiosk"); err != nil {
		return simChip{}, err
	}
	for i := range n {
		line := filepath.Join(bank, "line"+strconv.Itoa(i))
		if err := os.Mkdir(line, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return simChip{}, fmt.Errorf("configure gpio-sim line %d: %w", i, err)
		}
		if err := write(filepath.Join(line, "name"), "GPIO"+strconv.Itoa(i)); err != nil {
			return simChip{}, err
		}
	}
	if err := write(filepath.Join(dev, "live"), "1"); err != nil {
		return simChip{}, err
	}
	read := func(path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read gpio-sim chip: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	c := simChip{lines: n}
	var err error
	if c.devName, err = read(filepath.Join(dev, "dev_name")); err != nil {
		return c, err
	}
	if c.name, err = read(filepath.Join(bank, "chip_name")); err != nil {
		return c, err
	}
	return c, nil
}

// lineAttr is a line's attribute in gpio-sim's sysfs group, e.g. …/sim_gpio17/pull.
func (c simChip) lineAttr(line int, attr string) (string, error) {
	if line < 0 || line >= c.lines {
		return "", fmt.Errorf("line %d: the chip has lines 0..%d", line, c.lines-1)
	}
	return filepath.Join("/sys/devices/platform", c.devName, c.name, "sim_gpio"+strconv.Itoa(line), attr), nil
}

func (c simChip) setPull(line int, pull string) error {
	p, err := c.lineAttr(line, "pull")
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, []byte(pull), 0); err != nil {
		return fmt.Errorf("set line %d pull %s: %w", line, pull, err)
	}
	return nil
}

func uptime() time.Duration {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(b), " ")
	s, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

func powerOff() {
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// PID 1 must not return: the kernel would panic and hide the reason above.
	select {}
}
