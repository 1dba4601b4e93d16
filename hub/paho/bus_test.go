package paho_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/paho"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// externalBroker starts a plain mochi broker standing in for a site's own broker.
func externalBroker(t *testing.T) string {
	t.Helper()
	srv := mochi.New(&mochi.Options{Logger: discard})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return "tcp://" + tcp.Address()
}

type inbox struct {
	mu   sync.Mutex
	msgs []hub.Message
}

func (in *inbox) handle(m hub.Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs = append(in.msgs, m)
}

func (in *inbox) at(i int) hub.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.msgs[i]
}

func (in *inbox) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.msgs)
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.True(t, 10*time.Second, what, cond)
}

func client(t *testing.T, url, id string) pahomqtt.Client {
	t.Helper()
	c := pahomqtt.NewClient(pahomqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func startBus(t *testing.T, url, clientID string, in *inbox) *paho.Bus {
	t.Helper()
	b, err := paho.New(paho.Options{URL: url, ClientID: clientID, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(mqtt.Filter(mqtt.KindIncident), mqtt.QoSIncident, in.handle); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBusRoundTrip(t *testing.T) {
	url := externalBroker(t)
	var in inbox
	b := startBus(t, url, "hub-test", &in)
	defer b.Close()

	kiosk := client(t, url, "kentongand-pos-1")
	var acks inbox
	kiosk.Subscribe(mqtt.Topic("pos-1", mqtt.KindAck), 1, func(_ pahomqtt.Client, m pahomqtt.Message) {
		acks.handle(hub.Message{Topic: m.Topic(), Payload: m.Payload()})
	}).Wait()

	// Connect returned, so the subscription is in place even on a first-ever session.
	kiosk.Publish(mqtt.Topic("pos-1", mqtt.KindIncident), 1, false, "report").Wait()
	wait(t, "incident at the hub", func() bool { return in.len() == 1 })
	if m := in.at(0); m.Topic != mqtt.Topic("pos-1", mqtt.KindIncident) || string(m.Payload) != "report" {
		t.Errorf("hub got %+v", m)
	}
	if err := b.Publish(context.Background(), mqtt.Topic("pos-1", mqtt.KindAck), []byte("ack"), 1, false); err != nil {
		t.Fatal(err)
	}
	wait(t, "ack at the kiosk", func() bool { return acks.len() == 1 })

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := b.Publish(context.Background(), mqtt.Topic("pos-1", mqtt.KindAck), []byte("late"), 1, false); err == nil {
		t.Errorf("publish after close succeeded")
	}
}

// TestSessionKeepsIncidentsWhileHubIsAway: the hub's session outlives its connection, so an
// incident published while the hub restarts is delivered when it is back.
func TestSessionKeepsIncidentsWhileHubIsAway(t *testing.T) {
	url := externalBroker(t)
	var first inbox
	b := startBus(t, url, "hub-persist", &first)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	kiosk := client(t, url, "kentongand-pos-1")
	if tok := kiosk.Publish(mqtt.Topic("pos-1", mqtt.KindIncident), 1, false, "while away"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}

	var second inbox
	b2 := startBus(t, url, "hub-persist", &second)
	defer b2.Close()
	wait(t, "the queued incident", func() bool { return second.len() == 1 })
	if m := second.at(0); string(m.Payload) != "while away" {
		t.Errorf("got %q", m.Payload)
	}
}

func TestConnectFailsWithoutBroker(t *testing.T) {
	b, err := paho.New(paho.Options{URL: "tcp://127.0.0.1:1", Logger: discard, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Connect(ctx); err == nil {
		t.Errorf("connected to nothing")
	}
	if _, err := paho.New(paho.Options{}); err == nil {
		t.Errorf("New without URL succeeded")
	}
}
