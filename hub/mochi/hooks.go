package mochi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/mqtt"
)

// KioskClientPrefix starts the MQTT client ID of every kiosk: "kentongand-" + device ID.
const KioskClientPrefix = "kentongand-"

// DeviceAuth is the device registry as the broker asks it (hub/enroll.Service).
type DeviceAuth interface {
	// CheckDevice returns "" if a client presenting a CA-verified certificate for deviceID
	// with this SHA-256 fingerprint may connect, else the reason it may not.
	CheckDevice(ctx context.Context, deviceID, certFingerprint string) string
	// Enrolled reports whether deviceID holds credentials, so that it may connect only with
	// them, on the TLS listener. An error (the registry unreadable) refuses the client.
	Enrolled(ctx context.Context, deviceID string) (bool, error)
	// Seen records that the device connected.
	Seen(ctx context.Context, deviceID string)
}

// Refusal reasons, the label of kentongan_hub_broker_refused_total. CheckDevice adds its own
// (unknown_device, revoked, superseded_certificate).
const (
	RefuseTLSHandshake     = "tls_handshake"      // no, an untrusted, or a stolen-without-key certificate
	RefuseNoIdentity       = "no_identity"        // a CA certificate that names no device or service
	RefuseClientIDMismatch = "client_id_mismatch" // a device certificate used under another client ID
	RefuseEnrolledOnPlain  = "enrolled_on_plain"  // an enrolled device's client ID on the listener without credentials
	RefuseACLPublish       = "acl_publish"        // a publish outside the client's own topics
	RefuseACLSubscribe     = "acl_subscribe"      // a subscription outside them
	RefuseForeignWill      = "foreign_will"       // a Last Will outside them
	RefuseConnectRate      = "connect_rate"       // too many connections from one address; see ConnectLimit
	RefusePacketTooLarge   = "packet_too_large"   // a packet above Options.MaximumPacketSize: disconnected
	RefuseUnknownDevice    = enroll.RefuseUnknownDevice
	RefuseRevoked          = enroll.RefuseRevoked
	RefuseSuperseded       = enroll.RefuseSuperseded
	refuseStoreError       = enroll.RefuseStoreError
)

var refusalReasons = []string{RefuseTLSHandshake, RefuseNoIdentity, RefuseClientIDMismatch, RefuseEnrolledOnPlain,
	RefuseACLPublish, RefuseACLSubscribe, RefuseForeignWill, RefuseConnectRate, RefusePacketTooLarge, RefuseUnknownDevice,
	RefuseRevoked, RefuseSuperseded, refuseStoreError}

// identity is who an authenticated client of the TLS listener is: a device or a service.
type identity = enroll.Identity

// SecurityHook authenticates clients and authorises their topics.
//
// On the TLS listener the identity comes from the client certificate (verified against the
// hub's CA during the handshake): a device certificate's device must be registered, not
// revoked, and the certificate its current one; the client ID must be the device's
// ("kentongand-<device>"), so that no device can take over another's session. A device is
// then confined to its own topics by that identity. A service certificate is not confined.
//
// On the plain listener, kept for the demo, tests and kiosks of the hub's config file, a
// client ID of the kiosk form confines the client to that kiosk's topics, and a client ID of
// an enrolled device is refused: an enrolled device speaks only with its credentials.
type SecurityHook struct {
	mochi.HookBase
	b *Broker

	mu  sync.Mutex
	ids map[*mochi.Client]identity

	// rate limits connections per address; its zero value applies the default ConnectLimit.
	rate connLimiter
}

// ID identifies the hook in mochi's logs.
func (h *SecurityHook) ID() string { return "kentongan-security" }

// Provides says which hook methods are implemented. mochi allows an ACL check if any hook
// allows it, so this must stay the only hook that answers them.
func (h *SecurityHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnConnect, mochi.OnDisconnect}, []byte{b})
}

func (h *SecurityHook) refuse(cl *mochi.Client, reason string, args ...any) {
	h.b.countRefusal(reason)
	h.b.log.Warn("broker refused client", append([]any{"reason", reason, "client", cl.ID, "listener", cl.Net.Listener,
		"remote", cl.Net.Remote}, args...)...)
}

// OnConnectAuthenticate decides whether the client may connect; see SecurityHook.
func (h *SecurityHook) OnConnectAuthenticate(cl *mochi.Client, _ packets.Packet) bool {
	if cl.Net.Inline {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cl.Net.Listener != tlsListenerID {
		dev, kiosk := kioskDevice(cl.ID)
		if kiosk && dev != "" && h.b.auth != nil {
			switch enrolled, err := h.b.auth.Enrolled(ctx, dev); {
			case err != nil:
				h.refuse(cl, enroll.RefuseStoreError, "device", dev, "err", err)
				return false
			case enrolled:
				h.refuse(cl, RefuseEnrolledOnPlain, "device", dev)
				return false
			}
		}
		return true
	}
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		h.refuse(cl, RefuseTLSHandshake, "err", "not a TLS connection")
		return false
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		h.refuse(cl, RefuseTLSHandshake, "err", "no client certificate")
		return false
	}
	leaf := st.PeerCertificates[0]
	id, ok := enroll.IdentityOf(leaf)
	if !ok {
		h.refuse(cl, RefuseNoIdentity, "subject", leaf.Subject.String())
		return false
	}
	if id.Device != "" {
		if cl.ID != KioskClientPrefix+id.Device {
			h.refuse(cl, RefuseClientIDMismatch, "device", id.Device)
			return false
		}
		if h.b.auth == nil {
			h.refuse(cl, RefuseUnknownDevice, "device", id.Device, "err", "no device registry")
			return false
		}
		if reason := h.b.auth.CheckDevice(ctx, id.Device, enroll.Fingerprint(leaf.Raw)); reason != "" {
			h.refuse(cl, reason, "device", id.Device, "serial", leaf.SerialNumber.Text(16))
			return false
		}
		h.b.auth.Seen(ctx, id.Device)
	}
	h.mu.Lock()
	h.ids[cl] = id
	h.mu.Unlock()
	h.b.log.Info("client authenticated", "client", cl.ID, "device", id.Device, "service", id.Service, "remote", cl.Net.Remote)
	return true
}

func (h *SecurityHook) identity(cl *mochi.Client) (identity, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.ids[cl]
	return id, ok
}

// OnDisconnect forgets the client's identity, and counts a client dropped for an oversized
// packet as refused: mochi itself logs that without saying who.
func (h *SecurityHook) OnDisconnect(cl *mochi.Client, err error, _ bool) {
	if errors.Is(err, packets.ErrPacketTooLarge) {
		h.refuse(cl, RefusePacketTooLarge, "limit", h.b.srv.Options.Capabilities.MaximumPacketSize)
	}
	h.mu.Lock()
	delete(h.ids, cl)
	h.mu.Unlock()
}

// devices returns the connected clients authenticated as device.
func (h *SecurityHook) clientsOf(device string) []*mochi.Client {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*mochi.Client
	for cl, id := range h.ids {
		if id.Device == device {
			out = append(out, cl)
		}
	}
	return out
}

// kioskDevice returns the device a client ID claims, and whether the client is a kiosk at all.
// A kiosk whose device part is not a valid ID gets "" and true: it is confined to nothing.
func kioskDevice(clientID string) (device string, kiosk bool) {
	dev, ok := strings.CutPrefix(clientID, KioskClientPrefix)
	if !ok {
		return "", false
	}
	if mqtt.ValidateDeviceID(dev) != nil {
		return "", true
	}
	return dev, true
}

// Allowed reports whether a client of the plain listener may publish (write) or subscribe to
// and receive (!write) topic, judged by its client ID. It is the ACL as a plain function, so
// that it can be tested without a broker.
func Allowed(clientID, topic string, write bool) bool {
	dev, kiosk := kioskDevice(clientID)
	if !kiosk {
		return true
	}
	return DeviceAllowed(dev, topic, write)
}

// DeviceAllowed is the ACL of a device: it may publish only under
// kentongan/v1/devices/<device>/, and subscribe only to its own ack and command topics.
func DeviceAllowed(device, topic string, write bool) bool {
	if device == "" || mqtt.ValidateDeviceID(device) != nil {
		return false
	}
	if write {
		return strings.HasPrefix(topic, mqtt.Root+"/devices/"+device+"/")
	}
	return topic == mqtt.Topic(device, mqtt.KindAck) || topic == mqtt.Topic(device, mqtt.KindCommand)
}

// OnACLCheck applies the authenticated identity's ACL, or Allowed on the plain listener.
func (h *SecurityHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	var ok bool
	if id, known := h.identity(cl); known {
		ok = id.Service != "" || DeviceAllowed(id.Device, topic, write)
	} else {
		ok = cl.Net.Inline || (cl.Net.Listener != tlsListenerID && Allowed(cl.ID, topic, write))
	}
	if !ok {
		reason := RefuseACLSubscribe
		if write {
			reason = RefuseACLPublish
		}
		h.refuse(cl, reason, "topic", topic)
	}
	return ok
}

// OnConnect refuses a client whose address has used up its connections (see ConnectLimit),
// and a kiosk whose Last Will would publish outside its own topics: mochi sends a will without
// an ACL check, so without this a kiosk could mark another kiosk offline. It runs before
// authentication, so it judges by client ID, which authentication then ties to the certificate.
func (h *SecurityHook) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	if !cl.Net.Inline {
		addr := remoteHost(cl.Net.Remote)
		if ok, logIt, suppressed := h.rate.allow(addr); !ok {
			h.b.countRefusal(RefuseConnectRate)
			if logIt {
				h.b.log.Warn("broker refused client", "reason", RefuseConnectRate, "client", cl.ID, "listener", cl.Net.Listener,
					"remote", cl.Net.Remote, "address", addr, "refused_since_last_log", suppressed)
			}
			// A CONNACK that says "unavailable" makes a kiosk retry later, as after any outage.
			code := packets.ErrServerBusy
			if cl.Properties.ProtocolVersion < 5 {
				code = packets.ErrServerUnavailable
			}
			_ = h.b.srv.SendConnack(cl, code, false, nil)
			return code
		}
	}
	if !pk.Connect.WillFlag || Allowed(cl.ID, pk.Connect.WillTopic, true) {
		return nil
	}
	h.refuse(cl, RefuseForeignWill, "will_topic", pk.Connect.WillTopic)
	return packets.ErrNotAuthorized
}

// Defaults of ConnectLimit.
//
// They are sized for the field: after a hub restart every kiosk reconnects at once, but each
// from its own address, so that costs each address one token. Kiosks behind one NAT address
// (a kampung's shared broadband, a carrier's CGNAT) share a bucket: DefaultConnectBurst lets
// that many reconnect together, and DefaultConnectRate more every second after. A client
// opening connections in a loop gets the burst and then that rate, not thousands a second.
const (
	DefaultConnectRate  = 20.0
	DefaultConnectBurst = 300
)

// refusalLogEvery bounds the log to one line per address per interval while it is refused, so
// that a flood does not fill the hub's disk; the metric still counts every refusal.
const refusalLogEvery = 10 * time.Second

// limiterSweepEvery is how often buckets that have refilled are forgotten, so that the map
// holds only addresses seen recently.
const limiterSweepEvery = time.Minute

// ConnectLimit limits new connections per remote address with a token bucket.
type ConnectLimit struct {
	// Rate is how many connections per second an address regains; 0 is DefaultConnectRate,
	// and a negative rate turns the limit off (a fleet simulator on one address).
	Rate float64
	// Burst is how many connections an address may open at once; 0 is DefaultConnectBurst.
	Burst int
}

func (l ConnectLimit) filled() ConnectLimit {
	if l.Rate == 0 {
		l.Rate = DefaultConnectRate
	}
	if l.Burst <= 0 {
		l.Burst = DefaultConnectBurst
	}
	return l
}

// SetConnectLimit changes the per-address connection limit; it applies to the next connection.
func (b *Broker) SetConnectLimit(l ConnectLimit) {
	b.sec.rate.set(l)
}

// connLimiter is a token bucket per address. Its zero value uses the default limit and the
// system clock.
type connLimiter struct {
	mu      sync.Mutex
	limit   ConnectLimit
	ready   bool
	now     func() time.Time
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens     float64
	at         time.Time // when tokens was last brought up to date
	loggedAt   time.Time // last refusal logged; zero if none
	suppressed int       // refusals since then, not logged
}

func (l *connLimiter) set(c ConnectLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit, l.ready = c.filled(), true
	l.buckets = nil // a new size starts every address afresh
}

// allow takes a token for addr. When it refuses, logIt says whether this refusal should be
// logged, and suppressed how many were not since the last that was.
func (l *connLimiter) allow(addr string) (ok, logIt bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ready {
		l.limit, l.ready = ConnectLimit{}.filled(), true
	}
	if l.limit.Rate < 0 {
		return true, false, 0
	}
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	l.sweep(now)
	b := l.buckets[addr]
	if b == nil {
		b = &bucket{tokens: float64(l.limit.Burst), at: now}
		l.buckets[addr] = b
	}
	if dt := now.Sub(b.at); dt > 0 {
		b.tokens = min(float64(l.limit.Burst), b.tokens+dt.Seconds()*l.limit.Rate)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, false, 0
	}
	if b.loggedAt.IsZero() || now.Sub(b.loggedAt) >= refusalLogEvery {
		n := b.suppressed
		b.loggedAt, b.suppressed = now, 0
		return false, true, n
	}
	b.suppressed++
	return false, false, 0
}

// sweep forgets buckets that would be full by now: they hold nothing a new bucket would not.
func (l *connLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < limiterSweepEvery {
		return
	}
	l.swept = now
	full := time.Duration(float64(l.limit.Burst) / l.limit.Rate * float64(time.Second))
	for addr, b := range l.buckets {
		if now.Sub(b.at) > full && now.Sub(b.loggedAt) > refusalLogEvery {
			delete(l.buckets, addr)
		}
	}
}

// remoteHost is the address part of a client's remote "host:port", the unit of the limit.
func remoteHost(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}
