package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/mqtt"
)

// Timeouts for waiting on the broker; none of them blocks a button or the LEDs.
const (
	connectTimeout   = 10 * time.Second
	subscribeTimeout = 10 * time.Second
	publishTimeout   = 30 * time.Second
	pruneInterval    = time.Hour
)

func (d *Daemon) clientOptions() *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(d.cfg.Broker.URL).
		SetClientID("kentongand-"+d.cfg.DeviceID).
		SetUsername(d.cfg.Broker.Username).
		SetPassword(d.cfg.Broker.Password).
		// A persistent session keeps our subscriptions, and acks queued for us while we were
		// away, at the broker.
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(d.cfg.Broker.MaxReconnectInterval).
		SetConnectRetry(true).
		SetConnectRetryInterval(d.cfg.Broker.ConnectRetryInterval).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(d.cfg.Broker.KeepAlive).
		SetWriteTimeout(publishTimeout).
		SetStore(noResumeStore{paho.NewMemoryStore()}).
		// The will's time is that of start-up: the broker sends it unchanged whenever we vanish.
		SetBinaryWill(mqtt.Topic(d.cfg.DeviceID, mqtt.KindPresence), d.presence(mqtt.Offline), mqtt.QoSPresence, true).
		// Messages of the persistent session can arrive before we subscribe again, so every
		// message goes through the default handler rather than per-subscription callbacks.
		SetDefaultPublishHandler(d.onMessage).
		SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
			if f, ok := n.(paho.ConnectionNotificationFailed); ok {
				// Loud once per outage, quiet for every retry after it.
				if d.linkFailing.CompareAndSwap(false, true) {
					d.log.Warn("cannot connect to broker; incidents stay queued and retrying continues", "broker", d.cfg.Broker.URL, "err", f.Reason)
				} else {
					d.log.Debug("connect attempt failed", "err", f.Reason)
				}
			}
		}).
		SetOnConnectHandler(func(paho.Client) {
			d.linkFailing.Store(false)
			d.log.Info("connected to broker", "broker", d.cfg.Broker.URL)
			kick(d.connectKick)
			kick(d.ledKick)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			d.log.Warn("lost connection to broker; reconnecting", "err", err)
			kick(d.ledKick)
		}).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			d.log.Debug("reconnecting to broker")
		})
	// Validate has read the files already; an error here means they changed since.
	if t, err := d.cfg.Broker.tlsConfig(); err != nil {
		d.log.Error("broker TLS set-up failed; connecting without a client certificate", "err", err)
	} else if t != nil {
		o.SetTLSConfig(t)
	}
	return o
}

// tlsConfig is the TLS set-up that broker.ca_file, cert_file and key_file ask for, or nil when
// none is set. Errors name the key, and come at start-up rather than at every connect attempt.
func (c BrokerConfig) tlsConfig() (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("broker.cert_file and broker.key_file must be given together")
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("broker.ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker.ca_file %s: no PEM certificate in it", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("broker.cert_file and key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// noResumeStore is paho's in-memory store with nothing to resume. The outbox, not the MQTT client,
// decides what is re-sent after a reconnect, and does it in order with fresh attempt numbers; paho
// resuming its own copies would only add duplicates, and it races with the publishes made on
// connect (eclipse-paho/paho.mqtt.golang#703, reproduced by this package's tests under -race).
// Subscriptions are renewed on every connect; the hub sends nothing at QoS 2.
type noResumeStore struct{ paho.Store }

func (noResumeStore) All() []string { return nil }

func (d *Daemon) presence(state string) []byte {
	b, err := mqtt.Encode(mqtt.Presence{V: mqtt.SchemaVersion, DeviceID: d.cfg.DeviceID, State: state,
		At: d.now().UTC(), Firmware: d.firmware})
	if err != nil {
		// A fixed struct of strings and a time cannot fail to marshal.
		panic(err)
	}
	return b
}

// runLink does all publishing, one thing at a time so that the order of incidents on the wire is
// the order in the outbox.
func (d *Daemon) runLink(ctx context.Context) {
	// Ticking faster than the retry interval bounds the wait for a retry to 1.25 intervals.
	retry := time.NewTicker(max(d.cfg.RetryInterval/4, 10*time.Millisecond))
	defer retry.Stop()
	hb := time.NewTicker(d.cfg.HeartbeatInterval)
	defer hb.Stop()
	prune := time.NewTicker(pruneInterval)
	defer prune.Stop()
	d.prune()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.connectKick:
			if d.connected() {
				d.onConnected(ctx)
			}
		case <-d.newKick:
			d.publishFresh(ctx)
			if d.connected() {
				d.publishUnstored(ctx, time.Time{})
			}
		case <-retry.C:
			d.persistUnstored()
			if d.connected() {
				d.publishDue(ctx, d.now().Add(-d.cfg.RetryInterval))
				d.publishUnstored(ctx, d.now().Add(-d.cfg.RetryInterval))
			}
		case <-hb.C:
			if d.connected() {
				d.publishHeartbeat(ctx)
			}
		case <-d.pingKick:
			// A ping is the hub asking how we are: the answer is a heartbeat, now.
			if d.connected() {
				d.publishHeartbeat(ctx)
			}
		case <-prune.C:
			d.prune()
		}
	}
}

// onConnected runs after every (re)connect: make sure the subscriptions exist, then say we are
// here, then replay everything the hub has not confirmed, oldest first. Subscribing comes first
// because the hub answers "online" by resending our tickets' states: a broker that lost our
// session (a restart) would drop them if we could not yet hear.
func (d *Daemon) onConnected(ctx context.Context) {
	t := d.client.SubscribeMultiple(map[string]byte{
		mqtt.Topic(d.cfg.DeviceID, mqtt.KindAck):     mqtt.QoSAck,
		mqtt.Topic(d.cfg.DeviceID, mqtt.KindCommand): mqtt.QoSCommand,
	}, nil)
	if err := waitToken(ctx, t, subscribeTimeout); err != nil {
		// The persistent session may still hold the subscriptions; the next reconnect retries.
		d.log.Error("subscribe to ack and command topics failed", "err", err)
	}
	d.publish(ctx, mqtt.Topic(d.cfg.DeviceID, mqtt.KindPresence), mqtt.QoSPresence, true, d.presence(mqtt.Online), "presence")
	d.publishDue(ctx, d.now())
	d.publishUnstored(ctx, d.now())
	d.publishHeartbeat(ctx)
}

// publishUnstored publishes the incidents held in memory that are due.
func (d *Daemon) publishUnstored(ctx context.Context, sentBefore time.Time) {
	for _, in := range d.claimUnstored(sentBefore) {
		d.publishIncident(ctx, in)
	}
}

// publishFresh publishes the incidents just stored, in the order they were raised. Offline, it
// leaves them: they are claimed and published at the next connect, like everything pending.
func (d *Daemon) publishFresh(ctx context.Context) {
	d.freshMu.Lock()
	fresh := d.fresh
	d.fresh = nil
	d.freshMu.Unlock()
	if !d.connected() {
		return
	}
	for _, in := range fresh {
		d.publishIncident(ctx, in)
	}
}

// publishDue publishes the pending incidents never sent or last sent at or before sentBefore.
func (d *Daemon) publishDue(ctx context.Context, sentBefore time.Time) {
	ins, err := d.store.Claim(d.now(), sentBefore)
	if err != nil {
		d.mu.Lock()
		d.storeFault = "store: " + err.Error()
		d.mu.Unlock()
		kick(d.ledKick)
		// Claim writes (the attempt), which a full disk refuses; that must not hold back the
		// reports the disk already has. Sent as read, unrecorded, they are due again at the
		// next retry, which the hub's idempotent ingest makes harmless.
		var perr error
		if ins, perr = d.dueUnclaimed(sentBefore); perr != nil {
			d.log.Error("cannot read pending incidents from the outbox", "err", errors.Join(err, perr))
			return
		}
		if len(ins) > 0 {
			d.log.Error("cannot record sending in the outbox; sending the pending incidents anyway", "count", len(ins), "err", err)
		}
	}
	if len(ins) == 0 {
		return
	}
	for _, in := range ins {
		d.publishIncident(ctx, in)
	}
	d.refresh() // attempts changed
}

// dueUnclaimed returns the pending incidents Claim would, without writing to the outbox: when
// each was last sent is kept in memory instead, so that a full disk does not turn every retry
// tick into a re-send of the whole backlog.
func (d *Daemon) dueUnclaimed(sentBefore time.Time) ([]mqtt.Incident, error) {
	pending, err := d.store.Pending()
	if err != nil {
		return nil, err
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	sent := make(map[string]time.Time, len(pending)) // only what is still pending
	var out []mqtt.Incident
	for _, e := range pending {
		last := e.LastSentAt
		if t, ok := d.sentUnrecorded[e.Incident.ID]; ok && t.After(last) {
			last = t
		}
		if last.IsZero() || !last.After(sentBefore) {
			e.Incident.Attempt++
			out = append(out, e.Incident)
			last = now
		}
		sent[e.Incident.ID] = last
	}
	d.sentUnrecorded = sent
	return out, nil
}

func (d *Daemon) publishIncident(ctx context.Context, in mqtt.Incident) {
	payload, err := mqtt.Encode(in)
	if err != nil {
		d.log.Error("cannot encode incident", "incident_id", in.ID, "err", err)
		return
	}
	d.log.Info("publishing incident", "incident_id", in.ID, "attempt", in.Attempt)
	d.publish(ctx, mqtt.Topic(d.cfg.DeviceID, mqtt.KindIncident), mqtt.QoSIncident, false, payload, "incident "+in.ID)
}

// publish sends without waiting for the broker; a failure is only logged because the outbox,
// not the MQTT client, decides what is re-sent.
func (d *Daemon) publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte, what string) {
	t := d.client.Publish(topic, qos, retained, payload)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := waitToken(ctx, t, publishTimeout); err != nil && ctx.Err() == nil {
			d.log.Warn("publish failed", "what", what, "err", err)
		}
	}()
}

var errTimeout = errors.New("timed out")

func waitToken(ctx context.Context, t paho.Token, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-timer.C:
		return errTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Daemon) publishHeartbeat(ctx context.Context) {
	connected := d.connected()
	now := d.now()
	d.mu.Lock()
	d.hbSeq++
	hb := mqtt.Heartbeat{
		V:          mqtt.SchemaVersion,
		DeviceID:   d.cfg.DeviceID,
		At:         now.UTC(),
		Seq:        d.hbSeq,
		UptimeSec:  int64(now.Sub(d.startedAt) / time.Second),
		QueueDepth: len(d.pending),
		LEDState:   deriveState(d.displayLocked(connected), now, d.cfg.LEDDisplayTime),
		Fault:      d.faultLocked(),
		Firmware:   d.firmware,
	}
	d.mu.Unlock()
	if d.sms != nil {
		hb.Modem = d.sms.heartbeat()
	}
	payload, err := mqtt.Encode(hb)
	if err != nil {
		d.log.Error("cannot encode heartbeat", "err", err)
		return
	}
	d.publish(ctx, mqtt.Topic(d.cfg.DeviceID, mqtt.KindHeartbeat), mqtt.QoSHeartbeat, false, payload, "heartbeat")
}

func (d *Daemon) prune() {
	if n, err := d.store.PruneSMS(d.now()); err != nil {
		d.log.Warn("cannot prune old SMS records", "err", err)
	} else if n > 0 {
		d.log.Info("pruned old SMS records", "count", n)
	}
	n, err := d.store.Prune(d.now())
	if err != nil {
		d.log.Warn("cannot prune old incident records", "err", err)
		return
	}
	if n > 0 {
		d.log.Info("pruned old incident records", "count", n)
		d.refresh()
	}
}

// onMessage handles what the hub sends us. It runs on the MQTT client's delivery goroutine, so it
// takes no lock that is held while waiting on the broker.
func (d *Daemon) onMessage(_ paho.Client, m paho.Message) {
	dev, kind, err := mqtt.ParseTopic(m.Topic())
	if err != nil || dev != d.cfg.DeviceID {
		d.log.Warn("message on unexpected topic", "topic", m.Topic())
		return
	}
	switch kind {
	case mqtt.KindAck:
		d.handleAck(m.Payload())
	case mqtt.KindCommand:
		d.handleCommand(m.Payload())
	default:
		d.log.Debug("ignoring message", "topic", m.Topic())
	}
}

func (d *Daemon) handleAck(payload []byte) {
	a, err := mqtt.DecodeAck(payload)
	if err != nil {
		d.log.Warn("unreadable ack from hub", "err", err)
		return
	}
	if d.isClosed() {
		return
	}
	if d.takeUnstoredAck(a) {
		if a.Status == mqtt.AckRejected {
			d.log.Error("hub rejected an incident held in memory; keeping it and retrying", "incident_id", a.IncidentID, "hub_error", a.Error)
		} else {
			d.log.Info("hub holds an incident that was never on disk", "incident_id", a.IncidentID, "status", a.Status, "ticket", a.TicketNumber)
		}
		d.refreshSoon()
		return
	}
	now := d.now()
	res, err := d.store.Ack(a, now)
	if err != nil {
		d.mu.Lock()
		d.storeFault = "store: " + err.Error()
		d.mu.Unlock()
		// The hub will answer the next retry with the same ack, so nothing is lost.
		d.log.Error("cannot record ack in the outbox", "incident_id", a.IncidentID, "status", a.Status, "err", err)
		kick(d.ledKick)
		return
	}
	d.mu.Lock()
	d.lastAckAt = now
	if res.Rejected || res.Received || res.Updated {
		d.storeFault = "" // the store took a write again
	}
	d.mu.Unlock()
	log := d.log.With("incident_id", a.IncidentID, "status", a.Status, "ticket", a.TicketNumber)
	switch {
	case res.Rejected:
		log.Error("hub rejected the incident; keeping it and retrying", "hub_error", a.Error)
	case res.Received:
		log.Info("hub holds the incident")
	case res.Updated:
		log.Info("ticket status changed")
	case res.Unknown:
		log.Debug("ack for an incident not in the outbox")
	default:
		log.Debug("ack changed nothing")
	}
	d.refreshSoon()
}

func (d *Daemon) handleCommand(payload []byte) {
	c, err := mqtt.DecodeCommand(payload)
	if err != nil {
		d.log.Warn("unreadable command from hub", "err", err)
		return
	}
	switch c.Name {
	case mqtt.CommandPing:
		d.log.Info("ping from hub; answering with a heartbeat", "command_id", c.ID)
		kick(d.pingKick)
	case mqtt.CommandSMSSend:
		d.queueSMSCommand(c)
	default:
		d.log.Warn("unknown command from hub", "command", c.Name, "command_id", c.ID)
	}
}

func (d *Daemon) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}
