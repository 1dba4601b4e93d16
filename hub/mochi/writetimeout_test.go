package mochi_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub/mochi"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

// rawSubscriber connects as clientID with a persistent session, subscribes to filter at QoS 1
// and then reads nothing more: a kiosk whose process is wedged, or a link gone half-open.
func rawSubscriber(t *testing.T, addr, clientID, filter string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A small receive buffer makes the broker's writes block soon.
	if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	packet := func(header byte, body []byte) []byte {
		return append([]byte{header, byte(len(body))}, body...) // bodies here are under 128 bytes
	}
	connect := append(append(str("MQTT"), 4, 0x00, 0, 60), str(clientID)...) // 3.1.1, persistent session
	subscribe := append(append([]byte{0, 1}, str(filter)...), 1)
	if _, err := c.Write(append(packet(0x10, connect), packet(0x82, subscribe)...)); err != nil {
		t.Fatal(err)
	}
	// CONNACK (4 bytes) and SUBACK (5 bytes), then silence from our side.
	want := []byte{0x20, 2, 0, 0, 0x90, 3, 0, 1, 1}
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("connect and subscribe: got % x, %v; want % x", got, err, want)
	}
	return c
}

// TestStuckClientDoesNotStallPublishers: publishing to a client that stopped reading must not
// block the publisher (the hub's ingest worker, in the hub) for longer than the write timeout,
// and the stuck connection is dropped so that its session can resume elsewhere.
func TestStuckClientDoesNotStallPublishers(t *testing.T) {
	b, err := mochi.New(mochi.Options{
		Listen:                     "127.0.0.1:0",
		Logger:                     slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaximumClientWritesPending: 64,
		WriteTimeout:               300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	topic := mqtt.Topic("pos-1", mqtt.KindAck)
	rawSubscriber(t, b.Addr(), "kentongand-pos-1", topic)

	// Far more than the socket buffers (up to 4 MiB on loopback) and the outbound queue hold.
	const n = 20000
	payload := bytes.Repeat([]byte("x"), 1024)
	var published atomic.Int64
	done := make(chan error, 1)
	go func() {
		for range n {
			if err := b.Publish(context.Background(), topic, payload, 1, false); err != nil {
				done <- err
				return
			}
			published.Add(1)
		}
		done <- nil
	}()
	// Without a write deadline the publisher blocks for good on the client's lock.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("publisher stalled by a client that does not read: %d of %d published", published.Load(), n)
	}

	// The broker gave up on the stuck connection, so that its session can resume on a new one.
	poll.True(t, 10*time.Second, "stuck client dropped", func() bool { return b.Stats().ClientsConnected == 0 })
}
