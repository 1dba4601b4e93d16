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
			c, err := net.Dial("tcp", b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			id := fmt.Sprintf("pos-%d-%d", round, i)
			vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60}
			p := append(vh, byte(0), byte(len(id)))
			p = append(p, id...)
			c.Write(append([]byte{0x10, byte(len(p))}, p...))
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
