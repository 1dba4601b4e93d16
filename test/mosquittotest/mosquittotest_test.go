package mosquittotest_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/test/mosquittotest"
	"github.com/kentongan/kentongan/test/poll"
)

func connect(t *testing.T, url, id string, clean bool, onMsg paho.MessageHandler) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	if onMsg != nil {
		o.SetDefaultPublishHandler(onMsg)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", id, url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

type inbox struct {
	mu   sync.Mutex
	msgs []string
}

func (in *inbox) handle(_ paho.Client, m paho.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, string(m.Payload()))
	in.mu.Unlock()
}

func (in *inbox) has(s string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range in.msgs {
		if m == s {
			return true
		}
	}
	return false
}

func TestConfigSetsNoDelayAndNoLimits(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{})
	data := readConfig(t, b)
	for _, want := range []string{"set_tcp_nodelay true", "max_inflight_messages 0", "max_queued_messages 0",
		"persistence true", "allow_anonymous true"} {
		if !strings.Contains(data, want+"\n") {
			t.Errorf("config lacks %q:\n%s", want, data)
		}
	}
	if !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") {
		t.Errorf("URL = %q", b.URL())
	}
}

// A persistent session's QoS 1 message, queued while its subscriber is away, survives a
// restart of the broker: what hub replicas count on.
func TestRestartKeepsQueuedQoS1(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{})
	sub := connect(t, b.URL(), "sub", false, nil)
	if tok := sub.Subscribe("t/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(100)

	pub := connect(t, b.URL(), "pub", true, nil)
	if tok := pub.Publish("t/1", 1, false, "queued"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	pub.Disconnect(100)

	b.Restart()

	var in inbox
	connect(t, b.URL(), "sub", false, in.handle)
	poll.True(t, 20*time.Second, "the queued message after the restart", func() bool { return in.has("queued") })
}

func TestKillThenRestart(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{})
	b.Kill()
	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("x").SetConnectTimeout(2 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("connected to a killed broker")
	}
	b.Restart()
	var in inbox
	s := connect(t, b.URL(), "s", true, in.handle)
	if tok := s.Subscribe("a", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := s.Publish("a", 1, false, "back"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	poll.True(t, 20*time.Second, "a message through the restarted broker", func() bool { return in.has("back") })
}

func TestPasswordFileRefusesAnonymous(t *testing.T) {
	pw := t.TempDir() + "/passwd"
	// mosquitto_passwd may be absent; a file with an unknown user is enough to refuse anonymous.
	if err := writeFile(pw, "nobody:$7$101$AAAAAAAAAAAAAAAA$AAAA\n"); err != nil {
		t.Fatal(err)
	}
	b := mosquittotest.Start(t, mosquittotest.Options{PasswordFile: pw})
	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("anon").SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("no answer to CONNECT")
	}
	if tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("anonymous client accepted with a password file")
	}
}
