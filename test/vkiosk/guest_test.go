package vkiosk

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A kernel QEMU cannot load ends Boot at once with QEMU's own words, not after the boot timeout.
func TestBootReportsWhyQEMUExited(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (test/vkiosk/build.sh installs it)")
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "vmlinux")
	if err := os.WriteFile(bad, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initramfs.cpio")
	if err := os.WriteFile(initrd, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Boot(context.Background(), Options{
		Artefacts:   Artefacts{Kernel: bad},
		Initramfs:   initrd,
		WorkDir:     dir,
		BootTimeout: 2 * time.Minute,
	})
	if !errors.Is(err, ErrExited) {
		t.Fatalf("Boot with a bad kernel: %v, want ErrExited", err)
	}
	if !strings.Contains(err.Error(), "QEMU (exit status") {
		t.Errorf("error does not carry QEMU's output: %v", err)
	}
	if time.Since(start) > time.Minute {
		t.Errorf("Boot took %v to notice QEMU had exited", time.Since(start))
	}
}

func TestFindArtefactsSaysWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindArtefacts(dir); !errors.Is(err, ErrNoArtefacts) {
		t.Fatalf("empty dir: %v, want ErrNoArtefacts", err)
	}
	for name, data := range map[string]string{"vmlinux": "x", "release": "6.1.0-56-amd64\n", "gpio-sim.ko": "x"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.list"), []byte("configfs.ko\ngpio-sim.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FindArtefacts(dir); !errors.Is(err, ErrNoArtefacts) || !strings.Contains(err.Error(), "configfs.ko") {
		t.Fatalf("missing module: %v, want ErrNoArtefacts naming configfs.ko", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.list"), []byte("../etc/passwd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FindArtefacts(dir); err == nil || !strings.Contains(err.Error(), "not a file name") {
		t.Fatalf("path in modules.list: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.list"), []byte("# load order\ngpio-sim.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := FindArtefacts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Release != "6.1.0-56-amd64" || len(a.Modules) != 1 || a.Modules[0] != filepath.Join(dir, "gpio-sim.ko") {
		t.Fatalf("artefacts %+v", a)
	}
}
