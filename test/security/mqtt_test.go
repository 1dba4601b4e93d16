package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/mochi"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

const refusedMsg = "broker refused client"

func refusedMetric(reason string) string {
	return `kentongan_hub_broker_refused_total{reason="` + reason + `"}`
}

// TestMQTTCredentialProbes: no credentials, someone else's, revoked ones, and a valid
// certificate used on another device's topics. Each is refused, logged with its reason and
// counted in kentongan_hub_broker_refused_total.
func TestMQTTCredentialProbes(t *testing.T) {
	h := startHub(t, "pos-plain-a", "pos-plain-b")
	a := h.enroll("Panongan/Ciakar/03/01", "00000000sec0000a")
	b := h.enroll("Panongan/Ciakar/03/02", "00000000sec0000b")

	t.Run("TLS listener without a client certificate", func(t *testing.T) {
		cfg := a.tls.Clone()
		cfg.Certificates = nil
		if _, err := connect(t, a.url, mochi.KioskClientPrefix+a.id, cfg, ""); err == nil {
			t.Fatal("connected without a certificate")
		}
		h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefuseTLSHandshake, "listener": "tls"})
		h.waitMetric(refusedMetric(mochi.RefuseTLSHandshake), 1)
	})

	t.Run("TLS listener with a certificate of another CA", func(t *testing.T) {
		cfg := a.tls.Clone()
		cfg.Certificates = []tls.Certificate{selfSigned(t, "kentongand-"+a.id)}
		if _, err := connect(t, a.url, mochi.KioskClientPrefix+a.id, cfg, ""); err == nil {
			t.Fatal("connected with a self-made certificate")
		}
		h.waitMetric(refusedMetric(mochi.RefuseTLSHandshake), 2)
	})

	t.Run("another device's client ID with one's own certificate", func(t *testing.T) {
		if _, err := b.connectTLS(t, mochi.KioskClientPrefix+a.id); err == nil {
			t.Fatal("device B connected as device A")
		}
		h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefuseClientIDMismatch, "device": b.id,
			"client": mochi.KioskClientPrefix + a.id})
		h.waitMetric(refusedMetric(mochi.RefuseClientIDMismatch), 1)
	})

	t.Run("an enrolled device's client ID on the plain listener", func(t *testing.T) {
		if _, err := connect(t, h.m.BrokerURL(), mochi.KioskClientPrefix+a.id, nil, ""); err == nil {
			t.Fatal("device A's ID let in without credentials")
		}
		h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefuseEnrolledOnPlain, "device": a.id})
		h.waitMetric(refusedMetric(mochi.RefuseEnrolledOnPlain), 1)
	})

	t.Run("valid certificate publishing on another device's topic", func(t *testing.T) {
		kb, err := b.connectTLS(t, "")
		if err != nil {
			t.Fatalf("device B's own connection: %v", err)
		}
		forged := newIncident(t, a.id, mqtt.SourceButton, "", "")
		kb.c.Publish(mqtt.Topic(a.id, mqtt.KindIncident), 1, false, encode(t, forged))
		poll.True(t, wait, "the forger disconnected", func() bool { return !kb.c.IsConnectionOpen() })
		h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefuseACLPublish, "client": mochi.KioskClientPrefix + b.id,
			"topic": mqtt.Topic(a.id, mqtt.KindIncident)})
		h.waitMetric(refusedMetric(mochi.RefuseACLPublish), 1)
		if st, _ := h.do("GET", "/api/v1/tickets/"+forged.ID, h.admin, "", nil); st != 404 {
			t.Errorf("the forged incident has a ticket (GET answered %d)", st)
		}
	})

	t.Run("valid certificate subscribing to another device's acks and commands", func(t *testing.T) {
		kb, err := b.connectTLS(t, "")
		if err != nil {
			t.Fatalf("device B's own connection: %v", err)
		}
		for _, topic := range []string{mqtt.Topic(a.id, mqtt.KindAck), mqtt.Topic(a.id, mqtt.KindCommand), "kentongan/#"} {
			tok := kb.c.Subscribe(topic, 1, func(paho.Client, paho.Message) { t.Errorf("device B received a message on %s", topic) })
			tok.WaitTimeout(wait)
			if st, ok := tok.(*paho.SubscribeToken); ok {
				if rc := st.Result()[topic]; rc != 0x80 {
					t.Errorf("subscription to %s answered %#x, want 0x80 (failure)", topic, rc)
				}
			}
			h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefuseACLSubscribe, "client": mochi.KioskClientPrefix + b.id,
				"topic": topic})
		}
		h.waitMetric(refusedMetric(mochi.RefuseACLSubscribe), 3)
	})

	t.Run("a Last Will on another device's presence topic", func(t *testing.T) {
		opts := paho.NewClientOptions().AddBroker(h.m.BrokerURL()).SetClientID(mochi.KioskClientPrefix+"pos-plain-a").
			SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(10*time.Second).
			SetWill(mqtt.Topic("pos-plain-b", mqtt.KindPresence), `{"v":1,"device_id":"pos-plain-b","state":"offline"}`, 1, true)
		c := paho.NewClient(opts)
		if tok := c.Connect(); tok.WaitTimeout(wait) && tok.Error() == nil {
			c.Disconnect(0)
			t.Fatal("connected with a will on another kiosk's topic")
		}
		h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefuseForeignWill, "will_topic": "pos-plain-b"})
	})

	t.Run("plain-listener kiosk publishing as another kiosk", func(t *testing.T) {
		k := h.plainKiosk("pos-plain-a")
		k.c.Publish(mqtt.Topic("pos-plain-b", mqtt.KindIncident), 1, false, encode(t, newIncident(t, "pos-plain-b", mqtt.SourceButton, "", "")))
		poll.True(t, wait, "the forger disconnected", func() bool { return !k.c.IsConnectionOpen() })
		h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefuseACLPublish, "client": "kentongand-pos-plain-a",
			"topic": "pos-plain-b"})
	})

	t.Run("revoked credentials", func(t *testing.T) {
		ka, err := a.connectTLS(t, "")
		if err != nil {
			t.Fatalf("device A before revocation: %v", err)
		}
		if _, err := enroll.NewClient(h.base, nil).WithToken(h.admin).Revoke(context.Background(), a.id, "kiosk stolen"); err != nil {
			t.Fatal(err)
		}
		poll.True(t, wait, "the revoked device disconnected", func() bool { return !ka.c.IsConnectionOpen() })
		h.log.waitLog(t, "broker disconnected device", map[string]string{"device": a.id})
		if _, err := a.connectTLS(t, ""); err == nil {
			t.Fatal("a revoked device reconnected")
		}
		h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefuseRevoked, "device": a.id})
		h.waitMetric(refusedMetric(mochi.RefuseRevoked), 1)
		var audit []map[string]any
		h.doJSON("GET", "/api/v1/audit", "", &audit)
		found := false
		for _, e := range audit {
			found = found || (e["action"] == "device_revoke" && e["target"] == a.id)
		}
		if !found {
			t.Errorf("the revocation is not in the audit log: %v", audit)
		}
	})
}

// TestMQTTReplayAndHostilePayloads: a captured incident of device A published by device B,
// oversized and malformed payloads. Each is rejected with its reason in the log and the
// metrics, and none leaves a ticket.
func TestMQTTReplayAndHostilePayloads(t *testing.T) {
	h := startHub(t, "pos-plain-a")
	a := h.enroll("Panongan/Ciakar/03/01", "00000000sec0001a")
	b := h.enroll("Panongan/Ciakar/03/02", "00000000sec0001b")
	ka, err := a.connectTLS(t, "")
	if err != nil {
		t.Fatal(err)
	}
	in := newIncident(t, a.id, mqtt.SourceButton, "", "")
	captured := encode(t, in)
	if !ka.publish(mqtt.Topic(a.id, mqtt.KindIncident), captured) {
		t.Fatal("device A's own incident not acknowledged by the broker")
	}
	ticket := ka.waitAck(t, in.ID, mqtt.AckReceived).TicketID
	count := len(h.tickets("?limit=500"))

	t.Run("replay on the replaying device's own topic", func(t *testing.T) {
		kb, err := b.connectTLS(t, "")
		if err != nil {
			t.Fatal(err)
		}
		if !kb.publish(mqtt.Topic(b.id, mqtt.KindIncident), captured) {
			t.Fatal("publish on B's own topic not acknowledged by the broker")
		}
		rej := kb.waitAck(t, in.ID, mqtt.AckRejected)
		if !strings.Contains(rej.Error, "does not match") {
			t.Errorf("rejection says %q", rej.Error)
		}
		h.log.waitLog(t, "incident rejected", map[string]string{"device": b.id, "incident": in.ID, "reason": "device_mismatch"})
		h.waitMetric(`kentongan_hub_incidents_rejected_total{reason="device_mismatch"}`, 1)
	})

	t.Run("replay on the victim's topic", func(t *testing.T) {
		kb, err := b.connectTLS(t, "")
		if err != nil {
			t.Fatal(err)
		}
		kb.c.Publish(mqtt.Topic(a.id, mqtt.KindIncident), 1, false, captured)
		poll.True(t, wait, "the replaying device disconnected", func() bool { return !kb.c.IsConnectionOpen() })
		h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefuseACLPublish, "client": mochi.KioskClientPrefix + b.id})
	})

	t.Run("replay by the device itself answers the same ticket", func(t *testing.T) {
		if !ka.publish(mqtt.Topic(a.id, mqtt.KindIncident), captured) {
			t.Fatal("replay not acknowledged by the broker")
		}
		poll.Until(t, wait, "a second answer about the replayed incident", func() (bool, string) {
			n := 0
			for _, ack := range ka.acks() {
				if ack.IncidentID == in.ID {
					n++
					if ack.TicketID != ticket {
						t.Fatalf("replay answered ticket %s, want %s", ack.TicketID, ticket)
					}
				}
			}
			return n >= 2, fmt.Sprint(ka.acks())
		})
	})

	k := h.plainKiosk("pos-plain-a")
	big := newIncident(t, "pos-plain-a", mqtt.SourceSMS, strings.Repeat("A", mqtt.MaxPayload), "+6281212345678")
	for _, c := range []struct {
		name, reason string
		payload      []byte
	}{
		{"oversized (above mqtt.MaxPayload, below the broker's packet limit)", "too_large", encode(t, big)},
		{"truncated JSON", "malformed", []byte(`{"v":1,"id":"019ac3f2-5b1e-7d3a-9c4e-2f6a8b0d1e3f","device_id":`)},
		{"not JSON", "malformed", []byte("DARURAT KEBAKARAN\x00\xff")},
		{"wrong types", "malformed", []byte(`{"v":1,"id":7,"device_id":["pos-plain-a"],"attempt":"1"}`)},
		{"unknown field", "malformed", []byte(`{"v":1,"id":"019ac3f2-5b1e-7d3a-9c4e-2f6a8b0d1e3f","device_id":"pos-plain-a","source":"button","occurred_at":"2026-11-27T20:00:00Z","attempt":1,"admin":true}`)},
		{"future schema", "unknown_version", []byte(`{"v":99,"id":"019ac3f2-5b1e-7d3a-9c4e-2f6a8b0d1e3f"}`)},
		{"invalid fields", "invalid", []byte(`{"v":1,"id":"not-a-uuid","device_id":"pos-plain-a","source":"rocket","occurred_at":"2026-11-27T20:00:00Z","attempt":0}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(h.log.find("incident rejected", map[string]string{"device": "pos-plain-a", "reason": c.reason}))
			if !k.publish(mqtt.Topic("pos-plain-a", mqtt.KindIncident), c.payload) {
				t.Fatal("not acknowledged by the broker")
			}
			poll.Until(t, wait, "rejection logged", func() (bool, string) {
				n := len(h.log.find("incident rejected", map[string]string{"device": "pos-plain-a", "reason": c.reason}))
				return n > before, fmt.Sprint(h.log.find("incident rejected", nil))
			})
			h.waitMetric(`kentongan_hub_incidents_rejected_total{reason="`+c.reason+`"}`, 1)
		})
	}

	t.Run("a packet above the broker's limit disconnects", func(t *testing.T) {
		k2 := h.plainKiosk("pos-plain-a")
		k2.c.Publish(mqtt.Topic("pos-plain-a", mqtt.KindIncident), 1, false, make([]byte, 70<<10))
		poll.True(t, wait, "the client disconnected", func() bool { return !k2.c.IsConnectionOpen() })
		h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefusePacketTooLarge, "client": "kentongand-pos-plain-a"})
		h.waitMetric(refusedMetric(mochi.RefusePacketTooLarge), 1)
	})

	if n := len(h.tickets("?limit=500")); n != count {
		t.Errorf("%d tickets after the probes, want %d: a refused payload was stored", n, count)
	}
}

// TestMQTTConnectionFlood: connections opened in a loop from one address get the limiter's
// burst and then its rate, refused with a CONNACK "server unavailable", logged (once per
// interval, not once per connection) and counted; kiosks on other addresses, and many behind
// one NAT address, reconnecting all at once as after a hub restart, are all let in.
func TestMQTTConnectionFlood(t *testing.T) {
	h := startHub(t)
	addr := strings.TrimPrefix(h.m.BrokerURL(), "tcp://")
	_, port, _ := net.SplitHostPort(addr)

	const attempts = 3 * mochi.DefaultConnectBurst
	var accepted, refused, other atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > attempts {
					return
				}
				switch rc := rawConnect(t, "127.0.0.1", "127.0.0.1:"+port, fmt.Sprintf("flood-%d", i)); rc {
				case 0:
					accepted.Add(1)
				case 3: // server unavailable
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	limit := int64(mochi.DefaultConnectBurst) + int64(elapsed.Seconds()*mochi.DefaultConnectRate) + 5
	t.Logf("flood: %d connects in %v: %d accepted, %d refused, %d other", attempts, elapsed, accepted.Load(), refused.Load(), other.Load())
	if accepted.Load() > limit {
		t.Errorf("%d connections from one address accepted in %v, want at most %d", accepted.Load(), elapsed, limit)
	}
	if refused.Load() == 0 || other.Load() != 0 {
		t.Errorf("refused %d, other answers %d: want refusals, each a CONNACK 3", refused.Load(), other.Load())
	}
	h.waitMetric(refusedMetric(mochi.RefuseConnectRate), float64(refused.Load()))
	logged := h.log.waitLog(t, refusedMsg, map[string]string{"reason": mochi.RefuseConnectRate, "address": "127.0.0.1"})
	if n := len(h.log.find(refusedMsg, map[string]string{"reason": mochi.RefuseConnectRate})); int64(n) > 1+int64(elapsed/(10*time.Second)) {
		t.Errorf("%d log lines for %d refusals in %v: the flood floods the log", n, refused.Load(), elapsed)
	}
	_ = logged

	// A hub restart: hundreds of kiosks, each on its own address, and a NAT address with many
	// kiosks behind it, all reconnect at once.
	var refusedLegit atomic.Int64
	var mu sync.Mutex
	codes := map[int]int{}
	var wg2 sync.WaitGroup
	for i := range 400 {
		local := fmt.Sprintf("127.0.%d.%d", 10+i/200, 1+i%200)
		if i >= 300 {
			local = "127.0.99.1" // 100 kiosks behind one address
		}
		wg2.Go(func() {
			// A kiosk retries a failed connect, as kentongand does; on a loaded machine the
			// registry lookup of a plain-listener client may time out, which refuses it once.
			// What must never happen is the limiter's refusal (3).
			rc := -1
			for try := 0; try < 3 && rc != 0; try++ {
				if try > 0 {
					time.Sleep(200 * time.Millisecond)
				}
				rc = rawConnect(t, local, "127.0.0.1:"+port, fmt.Sprintf("kentongand-restart-%d", i))
				mu.Lock()
				codes[rc]++
				mu.Unlock()
				if rc == 3 {
					break
				}
			}
			if rc != 0 {
				refusedLegit.Add(1)
			}
		})
	}
	wg2.Wait()
	if n := refusedLegit.Load(); n != 0 {
		t.Errorf("%d of 400 kiosks reconnecting after a restart were refused; CONNACK codes (-1: none) %v; refusals logged: %v",
			n, codes, h.log.find(refusedMsg, map[string]string{"client": "kentongand-restart-"}))
	}
	if codes[3] != 0 {
		t.Errorf("%d kiosks reconnecting after a restart were refused by the connection limit", codes[3])
	}
}

// rawConnect opens a TCP connection from local, sends an MQTT 3.1.1 CONNECT and returns the
// CONNACK's return code, or -1 if none came.
func rawConnect(t *testing.T, local, remote, clientID string) int {
	d := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", remote)
	if err != nil {
		t.Errorf("dial from %s: %v", local, err)
		return -1
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, byte(len(clientID) >> 8), byte(len(clientID))}
	body := append(vh, clientID...)
	pkt := append([]byte{0x10, byte(len(body))}, body...)
	if _, err := c.Write(pkt); err != nil {
		return -1
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 {
		t.Logf("connect from %s as %s: no CONNACK: %v %x", local, clientID, err, ack)
		return -1
	}
	return int(ack[3])
}

// selfSigned is a client certificate no hub CA signed.
func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
