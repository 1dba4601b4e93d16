package mochi

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Close must finish while the broker's client list is being written to, as it is whenever a
// client connects or a clean-session client leaves. mochi v2.7.9's own Close takes that list's
// read lock twice in a row (mochi-mqtt/server#488): a writer arriving in between deadlocks it.
// A goroutine taking the write lock in a tight loop makes that interleaving all but certain, so
// this test hangs (and fails on its deadline) if Close reaches mochi's code path again.
func TestCloseWithWriterOnClientList(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for round := range 20 {
		b, err := New(Options{Listen: "127.0.0.1:0", Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Serve(); err != nil {
			t.Fatal(err)
		}
		// A few connected clients, so that Close has someone to disconnect.
		for i := range 3 {
			rawConnect(t, b.Addr(), fmt.Sprintf("pos-%d-%d", round, i), false)
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				b.srv.Clients.Lock()
				b.srv.Clients.Unlock()
			}
		}()
		closed := make(chan error, 1)
		go func() { closed <- b.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("round %d: close: %v", round, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close deadlocked with a writer on the client list", round)
		}
		stop.Store(true)
		wg.Wait()
	}
}

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
		rawConnect(t, b.Addr(), "kentongand-ciakar-rw03", true)
	}
	// And three more whose CONNECT may still be in flight when Close starts.
	for i := range 3 {
		rawConnect(t, b.Addr(), fmt.Sprintf("kentongand-late-%d", i), false)
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

// rawConnect opens a TCP connection and sends an MQTT 3.1.1 CONNECT with a clean session (such a
// client is deleted from the broker's client list when it goes, which takes the list's write
// lock). With waitAck it also waits for the CONNACK.
func rawConnect(t *testing.T, addr, clientID string, waitAck bool) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, byte(len(clientID) >> 8), byte(len(clientID))}
	p = append(p, clientID...)
	if _, err := c.Write(append([]byte{0x10, byte(len(p))}, p...)); err != nil {
		t.Fatal(err)
	}
	if waitAck {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatalf("connack for %s: %v", clientID, err)
		}
	}
	return c
}
