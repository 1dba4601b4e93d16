package vkiosk

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// File is one entry of an initramfs.
type File struct {
	Path string      // absolute path in the guest, e.g. /init
	Mode fs.FileMode // permission bits (and fs.ModeSticky), plus fs.ModeDir or fs.ModeDevice|fs.ModeCharDevice
	Data []byte      // contents of a regular file
	// Major and Minor number a character device.
	Major, Minor uint32
}

// WriteCPIO writes files as a cpio archive in the "newc" format the kernel unpacks into its
// initial root filesystem. Parent directories that are not listed are added (the kernel does not
// create them), and entries are written parents first.
func WriteCPIO(w io.Writer, files []File) error {
	byPath := make(map[string]File, len(files))
	for _, f := range files {
		p := path.Clean(f.Path)
		if !strings.HasPrefix(p, "/") || p == "/" {
			return fmt.Errorf("initramfs entry %q: want an absolute path below /", f.Path)
		}
		if _, dup := byPath[p]; dup {
			return fmt.Errorf("initramfs entry %q listed twice", p)
		}
		if f.Mode.Type() != 0 && !f.Mode.IsDir() && f.Mode.Type() != fs.ModeDevice|fs.ModeCharDevice {
			return fmt.Errorf("initramfs entry %q: mode %v is not a file, directory or character device", p, f.Mode)
		}
		if f.Mode&(fs.ModeDir|fs.ModeCharDevice) != 0 && len(f.Data) > 0 {
			return fmt.Errorf("initramfs entry %q: a %v has no contents", p, f.Mode.Type())
		}
		f.Path = p
		byPath[p] = f
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if have, ok := byPath[d]; ok {
				if !have.Mode.IsDir() {
					return fmt.Errorf("initramfs entry %q: parent %q is not a directory", p, d)
				}
				continue
			}
			byPath[d] = File{Path: d, Mode: fs.ModeDir | 0o755}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	// Sorting puts every directory before what it contains.
	slices.Sort(paths)

	bw := bufio.NewWriter(w)
	ino := uint32(1)
	for _, p := range paths {
		if err := writeEntry(bw, ino, byPath[p]); err != nil {
			return err
		}
		ino++
	}
	if err := writeEntry(bw, 0, File{Path: "TRAILER!!!"}); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

func writeEntry(w *bufio.Writer, ino uint32, f File) error {
	const (
		sIFREG = 0o100000
		sIFDIR = 0o040000
		sIFCHR = 0o020000
	)
	mode := uint32(f.Mode.Perm())
	if f.Mode&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	nlink := uint32(1)
	switch {
	case f.Mode.IsDir():
		mode |= sIFDIR
		nlink = 2
	case f.Mode&fs.ModeCharDevice != 0:
		mode |= sIFCHR
	default:
		mode |= sIFREG
	}
	name := strings.TrimPrefix(f.Path, "/")
	if f.Path == "TRAILER!!!" {
		mode, nlink = 0, 1
	}
	_, err := fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(f.Data), 0, 0, f.Major, f.Minor, len(name)+1, 0)
	if err != nil {
		return fmt.Errorf("write initramfs entry %s: %w", f.Path, err)
	}
	w.WriteString(name)
	w.WriteByte(0)
	pad(w, 110+len(name)+1)
	w.Write(f.Data)
	pad(w, len(f.Data))
	return nil
}

// pad writes the zeros that align the next field to four bytes.
func pad(w *bufio.Writer, n int) {
	for ; n%4 != 0; n++ {
		w.WriteByte(0)
	}
}
