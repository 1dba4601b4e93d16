package serialport

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// MakeRaw turns off a tty's line discipline (no echo, no CR/LF translation, no signals on Ctrl-Z,
// 8 bits, reads return each byte): what a modem or a framed protocol needs, and what a pty that
// stands in for a serial line in tests must be set to before the code under test opens it. It
// works through the file's raw connection, so the file stays non-blocking.
func MakeRaw(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("raw mode for %s: %w", f.Name(), err)
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			ierr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		ierr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		return fmt.Errorf("raw mode for %s: %w", f.Name(), err)
	}
	return nil
}
