package modem_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/modem"
)

// fuzzPort plays data to the engine once the engine has written a command, in reads of chunk
// bytes, then reports end-of-file.
type fuzzPort struct {
	data  []byte
	chunk int

	once   sync.Once
	wrote  chan struct{}
	closed chan struct{}
	cmu    sync.Once
}

func (p *fuzzPort) Read(b []byte) (int, error) {
	select {
	case <-p.wrote:
	case <-p.closed:
		return 0, io.ErrClosedPipe
	}
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), p.chunk)], p.data)
	p.data = p.data[n:]
	return n, nil
}

func (p *fuzzPort) Write(b []byte) (int, error) {
	p.once.Do(func() { close(p.wrote) })
	return len(b), nil
}

func (p *fuzzPort) Close() error {
	p.cmu.Do(func() { close(p.closed) })
	return nil
}

// FuzzLineReader feeds arbitrary bytes to the engine while a command (or, if the first byte is
// odd, a message send) is in flight: it must not panic and must not hang.
func FuzzLineReader(f *testing.F) {
	for _, s := range []string{
		"\r\n+CSQ: 21,0\r\n\r\nOK\r\n",
		"AT+CMGL=4\r\r\n+CMGL: 1,1,,23\r\n0791\r\n+CMTI: \"SM\",3\r\n\r\nOK\r\n",
		"\r\n> ",
		">",
		"\r\n+CMT: ,23\r\n",
		"\r\n+CME ERROR: incorrect password\r\n",
		"\xff\x00\xfe\r\n\x1b\x1a\r\n" + strings.Repeat("Z", 5000) + "\nOK\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		chunk := 64
		send := false
		if len(data) > 0 {
			chunk = 1 + int(data[0]%32)
			send = data[0]%2 == 1
		}
		port := &fuzzPort{data: data, chunk: chunk, wrote: make(chan struct{}), closed: make(chan struct{})}
		at := modem.NewAT(port, func(modem.URC) {}, nil)
		defer at.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			if send {
				at.SendPDU(ctx, 1, "0011", time.Second)
			} else {
				at.Command(ctx, "AT+CMGL=4", time.Second)
			}
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("command hung")
		}
		at.Close()
		select {
		case <-at.Done():
		case <-time.After(20 * time.Second):
			t.Fatal("reader hung")
		}
		if at.Garbage() < 0 {
			t.Fatal("negative garbage count")
		}
	})
}
