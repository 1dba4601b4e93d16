package mochi

import (
	"log/slog"
	"strings"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// spillHook keeps mochi from losing a QoS 1/2 message to a network subscriber that cannot keep
// up.
//
// mochi v2.7.9 puts each outgoing message on the client's bounded outbound queue and, when the
// queue is full, drops it and takes it out of the client's in-flight store, while the publisher
// has its PUBACK already: a silent loss (measured at 35–74 % of a flood to a paho subscriber
// whose handler sleeps). Raising the limits only moves the cliff. mochi's own flow control
// (MQTT 5 receive maximum) is no way out: it forgets a parked message once it sends it, so the
// send quota leaks and the client stalls. Disconnecting the slow client so that its persistent
// session gets the message on reconnect is no way out either: mochi's session takeover loses
// what is published to the old session while it hands over.
//
// So a message that finds the queue full is put back into the client's in-flight store under a
// fresh packet ID (which keeps mochi's rollback from deleting it, and makes mochi resend it if
// the connection breaks) and onto a spill list that one goroutine per slow client writes out
// behind the queue. The in-flight store is bounded by Options.MaximumInflight; beyond it mochi
// drops and counts InflightDropped, which the hub exports.
type spillHook struct {
	mochi.HookBase
	log *slog.Logger

	mu     sync.Mutex
	spills map[*mochi.Client][]packets.Packet // a client with an entry has a drainer running
}

func (h *spillHook) ID() string { return "kentongan-spill" }

func (h *spillHook) Provides(b byte) bool { return b == mochi.OnPublishDropped }

// OnPublishDropped runs in the publisher's goroutine before mochi rolls the message back out
// of the in-flight store.
func (h *spillHook) OnPublishDropped(cl *mochi.Client, pk packets.Packet) {
	if cl.Net.Inline {
		return
	}
	qos := min(pk.FixedHeader.Qos, subscribedQoS(cl, pk.TopicName))
	if qos == 0 {
		return // QoS 0 promises nothing
	}
	out := pk.Copy(false)
	out.FixedHeader.Qos = qos
	id, err := cl.NextPacketID()
	if err != nil {
		h.log.Error("embedded broker: QoS message lost: client has no packet ID left",
			"client", cl.ID, "topic", pk.TopicName, "err", err)
		return
	}
	out.PacketID = uint16(id)
	cl.State.Inflight.Set(out)

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.spills == nil {
		h.spills = map[*mochi.Client][]packets.Packet{}
	}
	q, running := h.spills[cl]
	h.spills[cl] = append(q, out)
	if !running {
		h.log.Warn("embedded broker: client too slow for its messages; spilling behind its queue",
			"client", cl.ID, "topic", pk.TopicName)
		go h.drain(cl)
	}
}

// drain writes cl's spilled messages until none is left. WritePacket blocks while the client
// does not read, which holds back only this goroutine. A message it cannot write stays in the
// in-flight store, which mochi resends when the session reconnects.
func (h *spillHook) drain(cl *mochi.Client) {
	for {
		h.mu.Lock()
		q := h.spills[cl]
		if len(q) == 0 || cl.Closed() {
			delete(h.spills, cl)
			h.mu.Unlock()
			return
		}
		h.spills[cl] = nil
		h.mu.Unlock()
		for _, pk := range q {
			if err := cl.WritePacket(pk); err != nil {
				break // closed: the rest stays in flight for the next session
			}
		}
	}
}

// subscribedQoS is the highest QoS of cl's subscriptions that match topic.
func subscribedQoS(cl *mochi.Client, topic string) byte {
	var q byte
	for _, sub := range cl.State.Subscriptions.GetAll() {
		if sub.Qos > q && matchFilter(sub.Filter, topic) {
			q = sub.Qos
		}
	}
	return q
}

// matchFilter reports whether an MQTT topic filter (with + and #, and a $share/group/ prefix)
// matches topic.
func matchFilter(filter, topic string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, filter, ok = strings.Cut(rest, "/")
		if !ok {
			return false
		}
	}
	if strings.HasPrefix(topic, "$") && !strings.HasPrefix(filter, "$") {
		return false
	}
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return true
		}
		if i >= len(ts) || (f != "+" && f != ts[i]) {
			return false
		}
	}
	return len(fs) == len(ts)
}
