package paho_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub/paho"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/mosquittotest"
	"github.com/kentongan/kentongan/test/poll"
)

// Two replicas on one Mosquitto: each incident reaches exactly one of them, each heartbeat
// reaches both.
func TestSharedSubscriptionSplitsIncidentsOnly(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	incidents := mqtt.Filter(mqtt.KindIncident)
	var inc, hb [2]inbox
	for i := range 2 {
		b, err := paho.New(paho.Options{URL: broker.URL(), ClientID: fmt.Sprintf("hub-%d", i), Logger: discard,
			SharedGroup: "hubs", SharedFilters: []string{incidents}, CleanSession: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		if err := b.Subscribe(incidents, 1, inc[i].handle); err != nil {
			t.Fatal(err)
		}
		if err := b.Subscribe(mqtt.Filter(mqtt.KindHeartbeat), 0, hb[i].handle); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = b.Connect(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	o := pahomqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("kiosk").SetAutoReconnect(false)
	kiosk := pahomqtt.NewClient(o)
	if tok := kiosk.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("kiosk connect: %v", tok.Error())
	}
	defer kiosk.Disconnect(0)
	const n = 100
	for i := range n {
		tok := kiosk.Publish(mqtt.Topic(fmt.Sprintf("k-%d", i%5), mqtt.KindIncident), 1, false, fmt.Sprint(i))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	for range 3 {
		tok := kiosk.Publish(mqtt.Topic("k-0", mqtt.KindHeartbeat), 1, false, "hb")
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	poll.Until(t, 20*time.Second, "every incident delivered", func() (bool, string) {
		got := inc[0].len() + inc[1].len()
		return got >= n, fmt.Sprintf("%d of %d", got, n)
	})
	poll.Until(t, 20*time.Second, "every heartbeat at both replicas", func() (bool, string) {
		return hb[0].len() == 3 && hb[1].len() == 3, fmt.Sprintf("%d and %d of 3", hb[0].len(), hb[1].len())
	})
	seen := map[string]int{}
	for i := range 2 {
		for j := range inc[i].len() {
			seen[string(inc[i].at(j).Payload)]++
		}
	}
	for p, c := range seen {
		if c != 1 {
			t.Errorf("incident %s delivered %d times", p, c)
		}
	}
	if len(seen) != n || inc[0].len() == 0 || inc[1].len() == 0 {
		t.Errorf("split %d/%d, %d distinct: want both replicas to share all %d", inc[0].len(), inc[1].len(), len(seen), n)
	}
}

func TestSharedGroupValidated(t *testing.T) {
	for _, g := range []string{"a/b", "a+", "#"} {
		if _, err := paho.New(paho.Options{URL: "tcp://127.0.0.1:1", SharedGroup: g}); err == nil {
			t.Errorf("group %q accepted", g)
		}
	}
}
