// Package fleet simulates a fleet of Kentongan kiosks in one process: each kiosk is a real MQTT
// client with kentongand's identity and wire behaviour (client ID, topics, QoS, presence and its
// Last Will, heartbeats, re-sending unacknowledged incidents on reconnect and every retry
// interval), so that a hub can be measured against thousands of them. It measures, per incident,
// the time from the press to the hub's "received" ack, and counts re-sends, losses and duplicates.
//
// Memory matters at 20,000 kiosks: per-kiosk state is a few words besides the paho client, every
// message from the hub goes through one handler, and one ticker each drives all heartbeats and
// all re-sends instead of a timer per kiosk.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/daemon/report"
	"github.com/kentongan/kentongan/mqtt"
)

// ClientPrefix starts every kiosk's MQTT client ID, as kentongand's does.
const ClientPrefix = "kentongand-"

// Firmware is what simulated kiosks report as their firmware, so that the hub's device list
// tells them from real ones.
const Firmware = "kentongan-sim"

// Defaults of Config.
const (
	DefaultRetryInterval      = 15 * time.Second // kentongand's retry_interval
	DefaultKeepAlive          = 30 * time.Second // kentongand's broker.keepalive
	DefaultConnectConcurrency = 200
	DefaultConnectRetry       = 5 * time.Second
	DefaultDevicePrefix       = "sim"
)

// Errors.
var (
	// ErrConfig reports a Config that cannot work.
	ErrConfig = errors.New("invalid fleet config")
	// ErrNoKiosk reports a kiosk index outside the fleet.
	ErrNoKiosk = errors.New("no such kiosk")
)

// Config sets up a fleet.
type Config struct {
	Broker string // tcp://host:port
	Kiosks int
	// DevicePrefix names the devices: DevicePrefix-00001 and so on (DeviceID).
	DevicePrefix string
	// Heartbeat is the heartbeat interval; 0 sends only the one on connect. RunHeartbeats
	// staggers the kiosks evenly over it.
	Heartbeat     time.Duration
	RetryInterval time.Duration
	KeepAlive     time.Duration
	// ConnectRetry is the wait between connection attempts, and the longest between reconnects.
	ConnectRetry time.Duration
	// ConnectConcurrency bounds the connection attempts in flight at once.
	ConnectConcurrency int
	// MaxConns bounds the connections open at once (0: no bound), so that a fleet stays under a
	// process's open-file limit; a kiosk that is not connected keeps its incidents queued.
	MaxConns int
	// DisconnectDrained makes a kiosk disconnect once the hub has received all its incidents,
	// freeing its connection for a kiosk still waiting (see MaxConns).
	DisconnectDrained bool
	// SpreadSources makes each kiosk connect from an address of its own in 127.0.0.0/8 (see
	// SourceAddr), as real kiosks come from addresses of their own: a hub that limits
	// connections per address would otherwise refuse a fleet on one address. The broker must
	// then be on loopback.
	SpreadSources bool
	Seed          uint64
	Logger        *slog.Logger
	Now           func() time.Time
}

// DeviceID is the device ID of kiosk i (0-based) under prefix.
func DeviceID(prefix string, i int) string {
	return fmt.Sprintf("%s-%05d", prefix, i+1)
}

// SourceAddr is the loopback address kiosk i connects from with Config.SpreadSources:
// 127.1.0.1 onwards, never a .0 or .255, so 16 million kiosks have one each.
func SourceAddr(i int) net.IP {
	return net.IPv4(127, byte(1+i/(254*254)), byte(1+i/254%254), byte(1+i%254))
}

// Fleet is a set of simulated kiosks.
type Fleet struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	index map[string]int32 // client ID → kiosk
	ks    []kiosk
	slots chan struct{} // MaxConns

	mu        sync.Mutex
	incidents map[string]*incident
	latencies []time.Duration
	rnd       *rand.Rand
	firstConn time.Time
	lastAck   time.Time
	n         counts

	heartbeats  atomic.Int64
	disconnects atomic.Int64
	connected   atomic.Int64
	publishErrs atomic.Int64
	warnedConn  atomic.Bool
	wg          sync.WaitGroup
}

type counts struct {
	incidents, acked, duplicated, resent, rejected, unknownAcks int
}

// kiosk is one simulated kiosk. Fields other than id and c are guarded by Fleet.mu.
type kiosk struct {
	id      string
	c       paho.Client
	pending []*incident // not yet received by the hub, oldest first
	hbSeq   uint64
	start   time.Time
	up      bool // connected now
	slot    bool // holds a MaxConns slot
	stopped bool // disconnected on purpose
}

// incident is one report and what became of it; guarded by Fleet.mu.
type incident struct {
	in      mqtt.Incident
	kiosk   int32
	pressed time.Time
	sent    time.Time // zero: never sent
	ticket  string
	acked   bool
	dup     bool
}

// New makes a fleet; nothing connects before Connect.
func New(cfg Config) (*Fleet, error) {
	switch {
	case cfg.Broker == "":
		return nil, fmt.Errorf("%w: no broker URL", ErrConfig)
	case cfg.Kiosks < 1:
		return nil, fmt.Errorf("%w: %d kiosks, need at least 1", ErrConfig, cfg.Kiosks)
	case cfg.Heartbeat < 0 || cfg.RetryInterval < 0 || cfg.KeepAlive < 0 || cfg.ConnectRetry < 0:
		return nil, fmt.Errorf("%w: negative interval", ErrConfig)
	case cfg.MaxConns < 0 || cfg.ConnectConcurrency < 0:
		return nil, fmt.Errorf("%w: negative limit", ErrConfig)
	}
	if cfg.DevicePrefix == "" {
		cfg.DevicePrefix = DefaultDevicePrefix
	}
	if err := mqtt.ValidateDeviceID(DeviceID(cfg.DevicePrefix, cfg.Kiosks-1)); err != nil {
		return nil, fmt.Errorf("%w: device prefix: %w", ErrConfig, err)
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.ConnectRetry == 0 {
		cfg.ConnectRetry = DefaultConnectRetry
	}
	if cfg.ConnectConcurrency == 0 {
		cfg.ConnectConcurrency = DefaultConnectConcurrency
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Fleet{cfg: cfg, log: cfg.Logger, now: cfg.Now, index: make(map[string]int32, cfg.Kiosks),
		ks: make([]kiosk, cfg.Kiosks), incidents: map[string]*incident{},
		rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6b656e746f6e67))}
	if cfg.MaxConns > 0 {
		f.slots = make(chan struct{}, cfg.MaxConns)
	}
	for i := range f.ks {
		k := &f.ks[i]
		k.id = DeviceID(cfg.DevicePrefix, i)
		f.index[ClientPrefix+k.id] = int32(i)
		o := f.options(k.id)
		if cfg.SpreadSources {
			o.SetDialer(&net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: SourceAddr(i)}})
		}
		k.c = paho.NewClient(o)
	}
	return f, nil
}

// Kiosks is the number of kiosks.
func (f *Fleet) Kiosks() int { return len(f.ks) }

// DeviceIDs lists the kiosks' device IDs in kiosk order.
func (f *Fleet) DeviceIDs() []string {
	out := make([]string, len(f.ks))
	for i := range f.ks {
		out[i] = f.ks[i].id
	}
	return out
}

func (f *Fleet) options(id string) *paho.ClientOptions {
	return paho.NewClientOptions().
		AddBroker(f.cfg.Broker).
		SetClientID(ClientPrefix+id).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(f.cfg.ConnectRetry).
		SetConnectRetry(true).
		SetConnectRetryInterval(f.cfg.ConnectRetry).
		SetConnectTimeout(10*time.Second).
		SetKeepAlive(f.cfg.KeepAlive).
		SetWriteTimeout(30*time.Second).
		// As in kentongand: the simulator, not paho, decides what is re-sent.
		SetStore(noResumeStore{paho.NewMemoryStore()}).
		SetBinaryWill(mqtt.Topic(id, mqtt.KindPresence), f.presence(id, mqtt.Offline), mqtt.QoSPresence, true).
		SetDefaultPublishHandler(f.onMessage).
		SetOnConnectHandler(f.onConnect).
		SetConnectionLostHandler(f.onLost)
}

type noResumeStore struct{ paho.Store }

func (noResumeStore) All() []string { return nil }

func (f *Fleet) presence(id, state string) []byte {
	b, _ := mqtt.Encode(mqtt.Presence{V: mqtt.SchemaVersion, DeviceID: id, State: state, At: f.now().UTC(), Firmware: Firmware})
	return b
}

func (f *Fleet) kioskOf(c paho.Client) (int, bool) {
	r := c.OptionsReader()
	i, ok := f.index[r.ClientID()]
	return int(i), ok
}

// Connect connects every kiosk, at most ConnectConcurrency attempts at a time, and returns once
// all are connected (or, with DisconnectDrained, have connected once), or when ctx ends. With
// MaxConns, a kiosk waits for a free connection slot first.
func (f *Fleet) Connect(ctx context.Context) error {
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(f.cfg.ConnectConcurrency, len(f.ks)) {
		wg.Go(func() {
			for i := range work {
				if err := f.connect(ctx, i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
feed:
	for i := range f.ks {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	return ctx.Err()
}

func (f *Fleet) connect(ctx context.Context, i int) error {
	k := &f.ks[i]
	if f.slots != nil {
		select {
		case f.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		f.mu.Lock()
		k.slot = true
		f.mu.Unlock()
	}
	f.mu.Lock()
	if f.firstConn.IsZero() {
		f.firstConn = f.now()
	}
	f.mu.Unlock()
	t := k.c.Connect()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return fmt.Errorf("connect kiosk %s: %w", k.id, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("connect kiosk %s: %w", k.id, ctx.Err())
	}
}

// onConnect runs on every (re)connect, in a goroutine of its own, as kentongand's onConnected
// does: subscribe, say we are online, replay everything the hub has not received, heartbeat.
func (f *Fleet) onConnect(c paho.Client) {
	i, ok := f.kioskOf(c)
	if !ok {
		return
	}
	k := &f.ks[i]
	t := c.SubscribeMultiple(map[string]byte{
		mqtt.Topic(k.id, mqtt.KindAck):     mqtt.QoSAck,
		mqtt.Topic(k.id, mqtt.KindCommand): mqtt.QoSCommand,
	}, nil)
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		f.log.Warn("kiosk subscription not confirmed; the persistent session may still hold it", "device", k.id, "err", t.Error())
	}
	c.Publish(mqtt.Topic(k.id, mqtt.KindPresence), mqtt.QoSPresence, true, f.presence(k.id, mqtt.Online))
	now := f.now()
	f.mu.Lock()
	if !k.up {
		k.up = true
		f.connected.Add(1)
	}
	if k.start.IsZero() {
		k.start = now
	}
	due := f.claimLocked(k, now, now)
	f.mu.Unlock()
	f.warnedConn.Store(false)
	f.send(k, due)
	f.heartbeat(i)
	f.maybeStop(i)
}

func (f *Fleet) onLost(c paho.Client, err error) {
	i, ok := f.kioskOf(c)
	if !ok {
		return
	}
	f.disconnects.Add(1)
	f.mu.Lock()
	if f.ks[i].up {
		f.ks[i].up = false
		f.connected.Add(-1)
	}
	f.mu.Unlock()
	if f.warnedConn.CompareAndSwap(false, true) {
		f.log.Warn("kiosk lost its connection; reconnecting", "device", f.ks[i].id, "err", err)
	}
}

// claimLocked returns k's incidents never sent or last sent at or before sentBefore, with their
// attempt counted, as kentongand's outbox Claim does.
func (f *Fleet) claimLocked(k *kiosk, now, sentBefore time.Time) []mqtt.Incident {
	var out []mqtt.Incident
	for _, in := range k.pending {
		if !in.sent.IsZero() && in.sent.After(sentBefore) {
			continue
		}
		if !in.sent.IsZero() {
			in.in.Attempt++
			f.n.resent++
		}
		in.sent = now
		out = append(out, in.in)
	}
	return out
}

func (f *Fleet) send(k *kiosk, ins []mqtt.Incident) {
	topic := mqtt.Topic(k.id, mqtt.KindIncident)
	for _, in := range ins {
		b, err := mqtt.Encode(in)
		if err != nil {
			f.log.Error("encode incident", "err", err)
			continue
		}
		// Not waited for: like kentongand, the re-send loop, not the token, makes delivery sure.
		k.c.Publish(topic, mqtt.QoSIncident, false, b)
	}
}

// Source of a simulated report.
type Source int

const (
	Button Source = iota
	SMS
)

// smsTexts are reports as RT/RW heads text them; the kiosk parses them as daemon/sms.go does.
var smsTexts = []string{
	"DARURAT KEBAKARAN rumah warga dekat musholla RT 03",
	"DARURAT MEDIS ibu pingsan di gang 5",
	"LAPOR banjir setinggi lutut di jalan utama RW 07",
	"LAPOR pohon tumbang menutup jalan desa",
	"DARURAT pencurian motor di pos ronda",
	"LAPOR lampu jalan mati sejak kemarin",
}

// Press makes a report at kiosk i now and publishes it if the kiosk is connected; otherwise it
// waits for the connect, as in kentongand's outbox. It returns the incident's ID.
func (f *Fleet) Press(i int, src Source) (string, error) {
	return f.raise(i, src, true)
}

// Queue makes n reports at kiosk i that wait for its next connect, as after an outage.
func (f *Fleet) Queue(i, n int, src Source) error {
	for range n {
		if _, err := f.raise(i, src, false); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fleet) raise(i int, src Source, publish bool) (string, error) {
	if i < 0 || i >= len(f.ks) {
		return "", fmt.Errorf("raise incident at kiosk %d: %w (fleet of %d)", i, ErrNoKiosk, len(f.ks))
	}
	k := &f.ks[i]
	id, err := mqtt.NewIncidentID()
	if err != nil {
		return "", err
	}
	now := f.now()
	in := mqtt.Incident{V: mqtt.SchemaVersion, ID: id, DeviceID: k.id, OccurredAt: now.UTC(), Attempt: 1}
	f.mu.Lock()
	switch src {
	case SMS:
		text := smsTexts[f.rnd.IntN(len(smsTexts))]
		r := report.Parse(text)
		in.Source, in.Text, in.Category = mqtt.SourceSMS, text, r.Category
		in.Emergency = r.Kind == report.Emergency
		in.Reporter = fmt.Sprintf("+62812%07d", f.rnd.IntN(10_000_000))
	default:
		in.Source, in.Button = mqtt.SourceButton, "darurat"
	}
	rec := &incident{in: in, kiosk: int32(i), pressed: now}
	f.incidents[id] = rec
	k.pending = append(k.pending, rec)
	f.n.incidents++
	send := publish && k.up
	if send {
		rec.sent = now
	}
	f.mu.Unlock()
	if send {
		f.send(k, []mqtt.Incident{in})
	}
	return id, nil
}

// onMessage is the one handler of every kiosk's acks and commands.
func (f *Fleet) onMessage(c paho.Client, m paho.Message) {
	i, ok := f.kioskOf(c)
	if !ok {
		return
	}
	dev, kind, err := mqtt.ParseTopic(m.Topic())
	if err != nil || dev != f.ks[i].id {
		return
	}
	switch kind {
	case mqtt.KindAck:
		f.onAck(i, m.Payload())
	case mqtt.KindCommand:
		cmd, err := mqtt.DecodeCommand(m.Payload())
		if err == nil && cmd.Name == mqtt.CommandPing {
			f.heartbeat(i)
		}
	}
}

func (f *Fleet) onAck(i int, payload []byte) {
	a, err := mqtt.DecodeAck(payload)
	if err != nil {
		f.log.Warn("unreadable ack", "device", f.ks[i].id, "err", err)
		return
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.incidents[a.IncidentID]
	switch {
	case in == nil || int(in.kiosk) != i:
		f.n.unknownAcks++
	case a.Status == mqtt.AckRejected:
		f.n.rejected++
		f.log.Warn("hub rejected an incident", "device", f.ks[i].id, "incident_id", a.IncidentID, "hub_error", a.Error)
	case a.TicketID == "":
	case !in.acked:
		in.acked, in.ticket = true, a.TicketID
		f.n.acked++
		f.latencies = append(f.latencies, now.Sub(in.pressed))
		f.lastAck = now
		k := &f.ks[i]
		k.pending = slices.DeleteFunc(k.pending, func(p *incident) bool { return p == in })
		if len(k.pending) == 0 && f.cfg.DisconnectDrained {
			f.wg.Go(func() { f.maybeStop(i) })
		}
	case a.TicketID != in.ticket && !in.dup:
		in.dup = true
		f.n.duplicated++
		f.log.Error("two tickets for one incident", "incident_id", a.IncidentID, "first", in.ticket, "second", a.TicketID)
	}
}

// maybeStop disconnects a drained kiosk (Config.DisconnectDrained) and frees its slot.
func (f *Fleet) maybeStop(i int) {
	if !f.cfg.DisconnectDrained {
		return
	}
	k := &f.ks[i]
	f.mu.Lock()
	if len(k.pending) > 0 || k.stopped || !k.up {
		f.mu.Unlock()
		return
	}
	k.stopped = true
	f.mu.Unlock()
	k.c.Disconnect(100)
	f.release(i)
}

func (f *Fleet) release(i int) {
	k := &f.ks[i]
	f.mu.Lock()
	held := k.slot
	k.slot = false
	if k.up {
		k.up = false
		f.connected.Add(-1)
	}
	f.mu.Unlock()
	if held && f.slots != nil {
		<-f.slots
	}
}

// heartbeat publishes kiosk i's heartbeat if it is connected.
func (f *Fleet) heartbeat(i int) {
	k := &f.ks[i]
	now := f.now()
	f.mu.Lock()
	if !k.up {
		f.mu.Unlock()
		return
	}
	k.hbSeq++
	hb := mqtt.Heartbeat{V: mqtt.SchemaVersion, DeviceID: k.id, At: now.UTC(), Seq: k.hbSeq,
		UptimeSec: int64(now.Sub(k.start) / time.Second), QueueDepth: len(k.pending), LEDState: "idle",
		Firmware: Firmware,
		Modem: &mqtt.Modem{State: "ready", SignalDBm: -71, Operator: "TELKOMSEL", Registration: "home", SIM: "ready",
			StorageTotal: 30}}
	f.mu.Unlock()
	b, err := mqtt.Encode(hb)
	if err != nil {
		return
	}
	k.c.Publish(mqtt.Topic(k.id, mqtt.KindHeartbeat), mqtt.QoSHeartbeat, false, b)
	f.heartbeats.Add(1)
}

// RunHeartbeats sends every connected kiosk's heartbeat once per Config.Heartbeat, the kiosks
// staggered evenly over the interval, until ctx ends. One ticker drives them all.
func (f *Fleet) RunHeartbeats(ctx context.Context) {
	if f.cfg.Heartbeat <= 0 {
		return
	}
	tick := time.NewTicker(min(100*time.Millisecond, f.cfg.Heartbeat/10))
	defer tick.Stop()
	start := time.Now()
	n := int64(len(f.ks))
	var done int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			due := int64(time.Since(start)) * n / int64(f.cfg.Heartbeat)
			for ; done < due; done++ {
				f.heartbeat(int(done % n))
			}
		}
	}
}

// RunRetries re-sends, until ctx ends, every incident the hub has not received within
// Config.RetryInterval of its last send, as kentongand does. One ticker drives all kiosks.
func (f *Fleet) RunRetries(ctx context.Context) {
	tick := time.NewTicker(max(f.cfg.RetryInterval/4, 10*time.Millisecond))
	defer tick.Stop()
	type batch struct {
		k   *kiosk
		ins []mqtt.Incident
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := f.now()
		var todo []batch
		f.mu.Lock()
		for i := range f.ks {
			k := &f.ks[i]
			if !k.up || len(k.pending) == 0 {
				continue
			}
			if ins := f.claimLocked(k, now, now.Add(-f.cfg.RetryInterval)); len(ins) > 0 {
				todo = append(todo, batch{k, ins})
			}
		}
		f.mu.Unlock()
		for _, b := range todo {
			f.send(b.k, b.ins)
		}
	}
}

// Close disconnects every kiosk, saying goodbye so that no Last Will is sent.
func (f *Fleet) Close() {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(f.cfg.ConnectConcurrency, len(f.ks)) {
		wg.Go(func() {
			for i := range work {
				f.ks[i].c.Disconnect(50)
				f.release(i)
			}
		})
	}
	for i := range f.ks {
		work <- i
	}
	close(work)
	wg.Wait()
	f.wg.Wait()
}
