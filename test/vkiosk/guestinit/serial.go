package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kentongan/kentongan/test/vkiosk/guestapi"
)

// serialInfo is where the 8250 driver tells which of its ports have a UART behind them: every
// ttySN node exists (the driver registers a fixed number of them), but only those QEMU gave a
// UART can be opened.
const serialInfo = "/proc/tty/driver/serial"

// maxSerialWindow bounds a serial exchange, as maxSampleWindow bounds sampling.
const maxSerialWindow = 60 * time.Second

var serialName = regexp.MustCompile(`^ttyS[0-9]{1,2}$`)

// serialPorts lists the ports of the 8250 driver that have a UART.
func serialPorts(path string) ([]guestapi.SerialPort, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	defer f.Close()
	return parseSerialInfo(f)
}

// parseSerialInfo reads lines like "1: uart:16550A port:000002F8 irq:3 tx:0 rx:0"; ports whose
// UART is "unknown" are not there.
func parseSerialInfo(r io.Reader) ([]guestapi.SerialPort, error) {
	var ports []guestapi.SerialPort
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		num, rest, ok := strings.Cut(sc.Text(), ":")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			continue // the "serinfo:1.0 driver revision:" header
		}
		p := guestapi.SerialPort{Name: "ttyS" + strconv.Itoa(n)}
		for _, field := range strings.Fields(rest) {
			k, v, _ := strings.Cut(field, ":")
			switch k {
			case "uart":
				p.UART = v
			case "port":
				p.Port = v
			case "irq":
				p.IRQ, _ = strconv.Atoi(v)
			}
		}
		if p.UART != "" && p.UART != "unknown" {
			ports = append(ports, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	return ports, nil
}

func (s *server) serial(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	port := q.Get("port")
	if !serialName.MatchString(port) {
		fail(w, http.StatusBadRequest, fmt.Errorf("port %q is not a ttySN name", port))
		return
	}
	ms, err := strconv.Atoi(q.Get("ms"))
	window := time.Duration(ms) * time.Millisecond
	if err != nil || window <= 0 || window > maxSerialWindow {
		fail(w, http.StatusBadRequest, fmt.Errorf("ms %q: want 1..%d", q.Get("ms"), maxSerialWindow.Milliseconds()))
		return
	}
	out, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("read the bytes to write: %w", err))
		return
	}
	res, err := exchange(r.Context(), port, out, []byte(q.Get("until")), window)
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// exchange writes out to a serial port and reads its answer until it contains until (when not
// empty) or window has passed.
func exchange(ctx context.Context, port string, out, until []byte, window time.Duration) (guestapi.SerialExchange, error) {
	res := guestapi.SerialExchange{Port: port, Read: []byte{}}
	path := "/dev/" + port
	// Non-blocking, so that the file goes through the runtime poller and read deadlines work.
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return res, fmt.Errorf("open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := makeRaw(fd); err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	deadline := time.Now().Add(window)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := f.SetDeadline(deadline); err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	n, err := f.Write(out)
	res.Wrote = n
	if err != nil {
		return res, fmt.Errorf("write %s: %w", path, err)
	}
	buf := make([]byte, 4096)
	for !res.Matched && ctx.Err() == nil {
		n, err := f.Read(buf)
		res.Read = append(res.Read, buf[:n]...)
		res.Matched = len(until) > 0 && bytes.Contains(res.Read, until)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return res, ctx.Err()
}

// makeRaw sets the port to 115200 baud, 8N1, no flow control, and no processing of the bytes
// either way, as kentongand's serial library does for the modem.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR |
		unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | unix.B115200
	t.Ispeed, t.Ospeed = unix.B115200, unix.B115200
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	return nil
}
