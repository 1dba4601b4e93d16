package mochi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub/mochi"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

// TestNoQoS1LossToSlowSubscriber floods a kiosk whose handler is stuck (as a kiosk on a slow
// link or a stalled process would be) with far more QoS 1 acks than the broker's outbound queue
// and the sockets hold. mochi alone drops the overflow for good; the broker must deliver every
// message at least once, after the kiosk's persistent session reconnects.
func TestNoQoS1LossToSlowSubscriber(t *testing.T) {
	b, err := mochi.New(mochi.Options{
		Listen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// A small queue reaches the cliff with a small flood; the default only moves it.
		MaximumClientWritesPending: 64,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}

	const n = 10000
	topic := mqtt.Topic("pos-1", mqtt.KindAck)
	gate := make(chan struct{})
	var (
		mu   sync.Mutex
		seen = map[int]bool{}
		bad  []string
	)
	opts := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("kentongand-pos-1").
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(100 * time.Millisecond).
		SetConnectTimeout(5 * time.Second).
		// While the handler is stuck, paho reads nothing, PINGRESP included; on a loaded machine
		// the flood outlasts the default ping timeout, and a reconnect is another test's matter.
		SetKeepAlive(5 * time.Minute).SetPingTimeout(time.Minute).
		// A small receive buffer keeps the kernel from absorbing the flood for the broker.
		SetDialer(&net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			if err != nil {
				return err
			}
			return serr
		}}).
		SetOnConnectHandler(func(c paho.Client) {
			// Resubscribing is harmless with a persistent session and needed if it was lost.
			c.Subscribe(topic, 1, nil)
		}).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			<-gate // the stuck kiosk: nothing is handled until mochi has dropped
			i, err := strconv.Atoi(string(m.Payload()))
			mu.Lock()
			defer mu.Unlock()
			if err != nil || i < 0 || i >= n {
				bad = append(bad, string(m.Payload()))
				return
			}
			seen[i] = true
		})
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	if tok := c.Subscribe(topic, 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	// The hub publishes while the kiosk is stuck; once mochi has had to drop (the flood reached
	// the cliff, or this test would prove nothing), the kiosk resumes.
	published := make(chan error, 1)
	go func() {
		for i := range n {
			if err := b.Publish(context.Background(), topic, []byte(strconv.Itoa(i)), 1, false); err != nil {
				published <- fmt.Errorf("publish %d: %w", i, err)
				return
			}
		}
		published <- nil
	}()
	poll.Until(t, 25*time.Second, "mochi to drop for want of queue room", func() (bool, string) {
		st := b.Stats()
		return st.MessagesDropped > 0, fmt.Sprintf("%+v", st)
	})
	close(gate)
	select {
	case err := <-published:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("the hub's publishing did not finish within 25 s of the kiosk resuming")
	}

	poll.Until(t, 25*time.Second, fmt.Sprintf("all %d acks at the slow kiosk", n), func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n, fmt.Sprintf("%d distinct, stats %+v", len(seen), b.Stats())
	})
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("unexpected payloads: %q", bad[:min(len(bad), 5)])
	}
}

// TestNoQoS1LossSubscriberThatSleeps: a handler that merely sleeps a little per message, under
// a flood from many network publishers, still gets every message.
func TestNoQoS1LossSubscriberThatSleeps(t *testing.T) {
	b, err := mochi.New(mochi.Options{
		Listen:                     "127.0.0.1:0",
		Logger:                     slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaximumClientWritesPending: 64,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	const pubs, each = 8, 500
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	sub, err := connect(t, b, "operator-console", func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetAutoReconnect(true).SetConnectRetryInterval(50 * time.Millisecond).
			SetKeepAlive(5 * time.Minute).SetPingTimeout(time.Minute).
			SetMaxReconnectInterval(100 * time.Millisecond).
			SetOnConnectHandler(func(c paho.Client) { c.Subscribe("flood/#", 1, nil) }).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
				time.Sleep(200 * time.Microsecond)
				mu.Lock()
				seen[string(m.Payload())] = true
				mu.Unlock()
			})
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok := sub.Subscribe("flood/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	var wg sync.WaitGroup
	errs := make(chan error, pubs)
	for p := range pubs {
		pc, err := connect(t, b, fmt.Sprintf("publisher-%d", p), nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last paho.Token
			for i := range each {
				last = pc.Publish(fmt.Sprintf("flood/%d", p), 1, false, fmt.Sprintf("%d-%d", p, i))
			}
			if !last.WaitTimeout(20*time.Second) || last.Error() != nil {
				errs <- fmt.Errorf("publisher %d: %v", p, last.Error())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	poll.Until(t, 25*time.Second, "every message at the sleeping subscriber", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == pubs*each, fmt.Sprintf("%d of %d, stats %+v", len(seen), pubs*each, b.Stats())
	})
}
