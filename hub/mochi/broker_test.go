package mochi_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/mochi"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

func TestAllowed(t *testing.T) {
	inc := mqtt.Topic("pos-1", mqtt.KindIncident)
	for _, tt := range []struct {
		client, topic string
		write, want   bool
	}{
		{"kentongand-pos-1", inc, true, true},
		{"kentongand-pos-1", mqtt.Topic("pos-1", mqtt.KindPresence), true, true},
		{"kentongand-pos-1", mqtt.Topic("pos-2", mqtt.KindIncident), true, false},
		{"kentongand-pos-1", "kentongan/v1/devices/pos-10/incident", true, false}, // prefix of another ID
		{"kentongand-pos-1", "elsewhere", true, false},
		{"kentongand-pos-1", mqtt.Topic("pos-1", mqtt.KindAck), false, true},
		{"kentongand-pos-1", mqtt.Topic("pos-1", mqtt.KindCommand), false, true},
		{"kentongand-pos-1", mqtt.Topic("pos-1", mqtt.KindIncident), false, false},
		{"kentongand-pos-1", mqtt.Topic("pos-2", mqtt.KindAck), false, false},
		{"kentongand-pos-1", mqtt.Filter(mqtt.KindAck), false, false},
		{"kentongand-pos-1", "#", false, false},
		{"kentongand-Pos 1", mqtt.Topic("Pos 1", mqtt.KindIncident), true, false}, // not a valid device: confined to nothing
		{"kentongand-", "kentongan/v1/devices//incident", true, false},
		{"operator-console", mqtt.Topic("pos-2", mqtt.KindIncident), true, true},
		{"operator-console", "#", false, true},
	} {
		if got := mochi.Allowed(tt.client, tt.topic, tt.write); got != tt.want {
			t.Errorf("Allowed(%q, %q, write=%v) = %v, want %v", tt.client, tt.topic, tt.write, got, tt.want)
		}
	}
}

type collector struct {
	mu   sync.Mutex
	msgs []hub.Message
}

func (c *collector) handle(m hub.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
}

func (c *collector) topics() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		out = append(out, m.Topic+"="+string(m.Payload))
	}
	return out
}

func startBroker(t *testing.T) *mochi.Broker {
	t.Helper()
	b, err := mochi.New(mochi.Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	})
	if strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr %q: want the bound port", b.Addr())
	}
	return b
}

func connect(t *testing.T, b *mochi.Broker, clientID string, configure func(*paho.ClientOptions)) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(clientID).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	if configure != nil {
		configure(opts)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, context.DeadlineExceeded
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.True(t, 15*time.Second, what, cond)
}

func TestDeviceACL(t *testing.T) {
	b := startBroker(t)
	var got collector
	if err := b.Subscribe(mqtt.Filter(mqtt.KindIncident), mqtt.QoSIncident, got.handle); err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}

	a, err := connect(t, b, "kentongand-pos-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Its own ack topic: granted; another kiosk's: refused in the SUBACK.
	var acks collector
	tok := a.Subscribe(mqtt.Topic("pos-1", mqtt.KindAck), 1, func(_ paho.Client, m paho.Message) {
		acks.handle(hub.Message{Topic: m.Topic(), Payload: m.Payload()})
	})
	tok.Wait()
	if r := tok.(*paho.SubscribeToken).Result()[mqtt.Topic("pos-1", mqtt.KindAck)]; r != 1 {
		t.Errorf("subscribe own ack: granted %#x, want QoS 1", r)
	}
	tok = a.Subscribe(mqtt.Topic("pos-2", mqtt.KindAck), 1, nil)
	tok.Wait()
	if r := tok.(*paho.SubscribeToken).Result()[mqtt.Topic("pos-2", mqtt.KindAck)]; r != 0x80 {
		t.Errorf("subscribe another kiosk's ack: %#x, want 0x80 (refused)", r)
	}

	if tok := a.Publish(mqtt.Topic("pos-1", mqtt.KindIncident), 1, false, "own"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish on own topic: %v", tok.Error())
	}
	wait(t, "own incident at the inline subscriber", func() bool { return len(got.topics()) == 1 })

	// The hub's acks reach the kiosk through Publish.
	if err := b.Publish(context.Background(), mqtt.Topic("pos-1", mqtt.KindAck), []byte("ack"), 1, false); err != nil {
		t.Fatal(err)
	}
	wait(t, "ack at the kiosk", func() bool { return len(acks.topics()) == 1 })

	// Publishing as another kiosk: an MQTT 3.1.1 client is disconnected, the message goes nowhere.
	a.Publish(mqtt.Topic("pos-2", mqtt.KindIncident), 1, false, "forged")
	wait(t, "the forger to be disconnected", func() bool { return !a.IsConnectionOpen() })

	// A non-kiosk client is not confined (no credentials yet), and its message proves that the
	// forged one, sent before, was not merely late.
	tool, err := connect(t, b, "operator-console", nil)
	if err != nil {
		t.Fatal(err)
	}
	tool.Publish(mqtt.Topic("pos-2", mqtt.KindIncident), 1, false, "tool").Wait()
	wait(t, "the tool's message", func() bool { return len(got.topics()) == 2 })
	want := []string{mqtt.Topic("pos-1", mqtt.KindIncident) + "=own", mqtt.Topic("pos-2", mqtt.KindIncident) + "=tool"}
	if g := got.topics(); g[0] != want[0] || g[1] != want[1] {
		t.Errorf("inline subscriber got %q, want %q", g, want)
	}
}

func TestForeignLastWillRefused(t *testing.T) {
	b := startBroker(t)
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	_, err := connect(t, b, "kentongand-pos-1", func(o *paho.ClientOptions) {
		o.SetWill(mqtt.Topic("pos-2", mqtt.KindPresence), `{"state":"offline"}`, 1, true)
	})
	if err == nil {
		t.Errorf("a kiosk with another kiosk's Last Will was let in")
	}
	if _, err := connect(t, b, "kentongand-pos-1", func(o *paho.ClientOptions) {
		o.SetWill(mqtt.Topic("pos-1", mqtt.KindPresence), `{"state":"offline"}`, 1, true)
	}); err != nil {
		t.Errorf("a kiosk with its own Last Will was refused: %v", err)
	}
}

// TestInlineHandlerBlocksOnlyItsPublisher: while the hub's handler holds one kiosk's message,
// that kiosk's later messages wait, and another kiosk's messages still arrive.
func TestInlineHandlerBlocksOnlyItsPublisher(t *testing.T) {
	b := startBroker(t)
	release := make(chan struct{})
	var got collector
	if err := b.Subscribe(mqtt.Filter(mqtt.KindIncident), 1, func(m hub.Message) {
		if string(m.Payload) == "hold" {
			<-release
		}
		got.handle(m)
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	slow, err := connect(t, b, "kentongand-slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := connect(t, b, "kentongand-fast", nil)
	if err != nil {
		t.Fatal(err)
	}
	slow.Publish(mqtt.Topic("slow", mqtt.KindIncident), 1, false, "hold")
	slow.Publish(mqtt.Topic("slow", mqtt.KindIncident), 1, false, "after")
	fast.Publish(mqtt.Topic("fast", mqtt.KindIncident), 1, false, "fast").Wait()
	wait(t, "the other kiosk's message", func() bool { return len(got.topics()) == 1 })
	if g := got.topics(); g[0] != mqtt.Topic("fast", mqtt.KindIncident)+"=fast" {
		t.Fatalf("got %q while the slow kiosk was held", g)
	}
	close(release)
	wait(t, "the held messages, in order", func() bool { return len(got.topics()) == 3 })
	if g := got.topics(); !strings.HasSuffix(g[1], "=hold") || !strings.HasSuffix(g[2], "=after") {
		t.Errorf("after release: %q", g)
	}
}
