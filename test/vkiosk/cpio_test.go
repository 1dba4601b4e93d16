package vkiosk

import (
	"bytes"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"
)

type cpioEntry struct {
	name         string
	mode         uint32
	data         []byte
	major, minor uint32
}

// readCPIO parses a newc archive as the kernel's init/initramfs.c does, checking the alignment
// of every field.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("entry at offset %d is not 4-byte aligned", off)
		}
		if len(b)-off < 110 {
			t.Fatalf("truncated header at %d", off)
		}
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, namesize := field(1), field(6), field(9), field(10), field(11)
		nameStart := off + 110
		name := string(b[nameStart : nameStart+int(namesize)-1])
		if b[nameStart+int(namesize)-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		dataStart := (nameStart + int(namesize) + 3) &^ 3
		data := b[dataStart : dataStart+int(size)]
		off = (dataStart + int(size) + 3) &^ 3
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name: name, mode: mode, data: data, major: rmaj, minor: rmin})
	}
}

func TestWriteCPIOIsWhatTheKernelUnpacks(t *testing.T) {
	var buf bytes.Buffer
	err := WriteCPIO(&buf, []File{
		{Path: "/init", Mode: 0o755, Data: []byte("#!init")},
		{Path: "/lib/modules/gpio-sim.ko", Mode: 0o644, Data: []byte("ELF.")},
		{Path: "/dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1},
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "/etc/vkiosk/init.json", Mode: 0o644, Data: []byte(`{"lines":32}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := readCPIO(t, buf.Bytes())
	var names []string
	byName := map[string]cpioEntry{}
	for _, e := range got {
		names = append(names, e.name)
		byName[e.name] = e
	}
	// The kernel creates nothing on its own: every directory comes before its contents.
	want := "dev,dev/console,etc,etc/vkiosk,etc/vkiosk/init.json,init,lib,lib/modules,lib/modules/gpio-sim.ko,tmp"
	if strings.Join(names, ",") != want {
		t.Fatalf("entries %v, want %s", names, want)
	}
	for _, c := range []struct {
		name         string
		mode         uint32
		data         string
		major, minor uint32
	}{
		{"init", 0o100755, "#!init", 0, 0},
		{"lib/modules/gpio-sim.ko", 0o100644, "ELF.", 0, 0},
		{"lib", 0o040755, "", 0, 0},
		{"dev/console", 0o020600, "", 5, 1},
		{"etc/vkiosk/init.json", 0o100644, `{"lines":32}`, 0, 0},
	} {
		e := byName[c.name]
		if e.mode != c.mode || string(e.data) != c.data || e.major != c.major || e.minor != c.minor {
			t.Errorf("%s: mode %o data %q dev %d:%d, want mode %o data %q dev %d:%d",
				c.name, e.mode, e.data, e.major, e.minor, c.mode, c.data, c.major, c.minor)
		}
	}
	if m := byName["tmp"].mode; m != 0o041777 {
		t.Errorf("/tmp mode %o, want a sticky directory 41777", m)
	}
}

func TestWriteCPIORefusesBadEntries(t *testing.T) {
	for _, c := range []struct {
		files []File
		want  string
	}{
		{[]File{{Path: "init", Mode: 0o755}}, "absolute path"},
		{[]File{{Path: "/", Mode: fs.ModeDir}}, "absolute path"},
		{[]File{{Path: "/a", Mode: 0o644}, {Path: "/a/", Mode: 0o644}}, "listed twice"},
		{[]File{{Path: "/a", Mode: 0o644}, {Path: "/a/b", Mode: 0o644}}, "not a directory"},
		{[]File{{Path: "/l", Mode: fs.ModeSymlink | 0o777}}, "not a file, directory or character device"},
		{[]File{{Path: "/d", Mode: fs.ModeDir | 0o755, Data: []byte("x")}}, "has no contents"},
	} {
		err := WriteCPIO(&bytes.Buffer{}, c.files)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one saying %q", c.files[len(c.files)-1].Path, err, c.want)
		}
	}
}

func TestWriteCPIOPadsEveryLength(t *testing.T) {
	for n := range 9 {
		var buf bytes.Buffer
		name := "/" + strings.Repeat("n", n+1)
		data := bytes.Repeat([]byte{0xAB}, n)
		if err := WriteCPIO(&buf, []File{{Path: name, Mode: 0o644, Data: data}}); err != nil {
			t.Fatal(err)
		}
		got := readCPIO(t, buf.Bytes())
		if len(got) != 1 || "/"+got[0].name != name || !bytes.Equal(got[0].data, data) {
			t.Fatalf("%s with %d bytes read back as %s", name, n, fmt.Sprint(got))
		}
	}
}
