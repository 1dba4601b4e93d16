package mochi

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// A kiosk that reconnects while its old connection still lingers (a half-open link) takes its
// session over; Close must still finish.
func TestCloseAfterSessionTakeover(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := New(Options{Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		id := "kentongand-ciakar-rw03"
		vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60}
		p := append(vh, byte(0), byte(len(id)))
		p = append(p, id...)
		c.Write(append([]byte{0x10, byte(len(p))}, p...))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatalf("connack: %v", err)
		}
	}
	// And three more whose CONNECT may still be in flight when Close starts.
	for i := range 3 {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		id := "kentongand-late-" + string(rune('a'+i))
		vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60}
		p := append(vh, byte(0), byte(len(id)))
		p = append(p, id...)
		c.Write(append([]byte{0x10, byte(len(p))}, p...))
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after a session takeover")
	}
}
