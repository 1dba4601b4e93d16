package modemtest

import (
	"fmt"
	"os"
	"sync"

	"github.com/creack/pty"
	"github.com/kentongan/kentongan/drivers/serialport"
	"golang.org/x/sys/unix"
)

// link is one pty pair: the modem's end of the cable. A Replug makes a new one, as re-enumerating
// a USB modem gives a new device.
type link struct {
	// master is non-blocking and so goes through the runtime poller: its Close wakes a goroutine
	// blocked in Read or Write, which a blocking *os.File does not (the fd would live on until the
	// blocked call returned, and the slave would never see the hang-up).
	master *os.File
	// slave stays open for the link's lifetime so that the code under test can close and reopen
	// the device: when the last slave handle closes, the master reads EIO for good.
	slave *os.File
	done  chan struct{}

	mu    sync.Mutex
	queue [][]byte
	wake  chan struct{}
}

func openLink() (*link, error) {
	m, sl, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	// pty.Open leaves the master in blocking mode (it calls Fd); a non-blocking duplicate is
	// pollable.
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err != nil {
		sl.Close()
		return nil, fmt.Errorf("duplicate pty master: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		sl.Close()
		return nil, fmt.Errorf("make pty master non-blocking: %w", err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := serialport.MakeRaw(sl); err != nil {
		master.Close()
		sl.Close()
		return nil, err
	}
	return &link{master: master, slave: sl, done: make(chan struct{}), wake: make(chan struct{}, 1)}, nil
}

// push queues bytes for the host. Writing happens on the link's own goroutine so that the
// simulator never blocks on a host that does not read.
func (l *link) push(b []byte) {
	l.mu.Lock()
	l.queue = append(l.queue, b)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *link) writeLoop() {
	for {
		select {
		case <-l.done:
			return
		case <-l.wake:
		}
		for {
			l.mu.Lock()
			q := l.queue
			l.queue = nil
			l.mu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, b := range q {
				if _, err := l.master.Write(b); err != nil {
					return
				}
			}
		}
	}
}

// close hangs the line up: the slave's readers get EIO.
func (l *link) close() error {
	close(l.done)
	err := l.master.Close()
	if serr := l.slave.Close(); err == nil {
		err = serr
	}
	return err
}
