package mochi

import (
	"bytes"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kentongan/kentongan/mqtt"
)

// KioskClientPrefix starts the MQTT client ID of every kiosk: "kentongand-" + device ID.
const KioskClientPrefix = "kentongand-"

// AllowAuthHook lets every client connect. Real credentials are a later issue; until then the
// broker must only listen where kiosks and the 112 centre's own network can reach it.
type AllowAuthHook struct {
	mochi.HookBase
}

// ID identifies the hook in mochi's logs.
func (h *AllowAuthHook) ID() string { return "kentongan-allow-auth" }

// Provides says the hook decides authentication, and nothing else: mochi allows an ACL check if
// any hook allows it, so an allow-all hook that also answered ACL checks would void DeviceACLHook.
func (h *AllowAuthHook) Provides(b byte) bool { return b == mochi.OnConnectAuthenticate }

// OnConnectAuthenticate allows the connection.
func (h *AllowAuthHook) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

// DeviceACLHook confines a kiosk (client ID "kentongand-<device>") to its own topics: it may
// publish only under kentongan/v1/devices/<device>/, subscribe only to its own ack and command
// topics, and leave a Last Will only under its own topics. Other clients (operator tools, test
// publishers, bridges) are not confined until credentials exist.
type DeviceACLHook struct {
	mochi.HookBase
}

// ID identifies the hook in mochi's logs.
func (h *DeviceACLHook) ID() string { return "kentongan-device-acl" }

// Provides says which hook methods are implemented.
func (h *DeviceACLHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnACLCheck, mochi.OnConnect}, []byte{b})
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

// Allowed reports whether the client may publish (write) or subscribe to and receive (!write)
// topic. It is the ACL as a plain function, so that it can be tested without a broker.
func Allowed(clientID, topic string, write bool) bool {
	dev, kiosk := kioskDevice(clientID)
	if !kiosk {
		return true
	}
	if dev == "" {
		return false
	}
	if write {
		return strings.HasPrefix(topic, mqtt.Root+"/devices/"+dev+"/")
	}
	return topic == mqtt.Topic(dev, mqtt.KindAck) || topic == mqtt.Topic(dev, mqtt.KindCommand)
}

// OnACLCheck applies Allowed.
func (h *DeviceACLHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	ok := Allowed(cl.ID, topic, write)
	if !ok {
		h.Log.Warn("refused by device ACL", "client", cl.ID, "topic", topic, "write", write, "remote", cl.Net.Remote)
	}
	return ok
}

// OnConnect refuses a kiosk whose Last Will would publish outside its own topics: mochi sends a
// will without an ACL check, so without this a kiosk could mark another kiosk offline.
func (h *DeviceACLHook) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	if !pk.Connect.WillFlag || Allowed(cl.ID, pk.Connect.WillTopic, true) {
		return nil
	}
	h.Log.Warn("refused kiosk with a foreign Last Will", "client", cl.ID, "will_topic", pk.Connect.WillTopic, "remote", cl.Net.Remote)
	return packets.ErrNotAuthorized
}
