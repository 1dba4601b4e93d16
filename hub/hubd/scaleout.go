package hubd

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/hub/leader"
	"github.com/kentongan/kentongan/hub/paho"
	"github.com/kentongan/kentongan/hub/postgres"
	"github.com/kentongan/kentongan/hub/sqlite"
	"github.com/kentongan/kentongan/mqtt"
)

// metricsLog puts the metrics handler's errors (a collector that failed) into the hub's log:
// the scraper sees only a 500.
type metricsLog struct{ log *slog.Logger }

func (l metricsLog) Println(v ...any) { l.log.Error("metrics: " + fmt.Sprint(v...)) }

// flagSet reports whether the named flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// stores are the hub's three stores over one database, and how to elect a leader on it.
type stores struct {
	kind     string // "sqlite" or "postgres", for the log
	tickets  hub.Store
	accounts account.Store
	devices  enroll.Store
	elector  leader.Elector
}

// openStore opens PostgreSQL when store.postgres_url is set, else the SQLite file in the data
// directory.
func (m *Main) openStore(ctx context.Context) (stores, error) {
	log := m.Logger.With("component", "store")
	if dsn := m.Config.Store.PostgresDSN(); dsn != "" {
		pg, err := postgres.Open(ctx, dsn, postgres.Options{Clock: m.Clock, Logger: log, MaxConns: int32(m.Config.Store.MaxConns)})
		if err != nil {
			return stores{}, err
		}
		el, err := leader.NewPostgres(leader.PostgresOptions{DSN: dsn, Retry: m.Config.Leader.Retry,
			ID: m.Config.MQTT.ReplicaID, Logger: m.Logger.With("component", "leader")})
		if err != nil {
			_ = pg.Close()
			return stores{}, err
		}
		return stores{kind: "postgres", tickets: pg, accounts: pg.Accounts(), devices: pg.Devices(), elector: el}, nil
	}
	sq, err := sqlite.Open(ctx, filepath.Join(m.Config.DataDir, DBFile), sqlite.Options{Clock: m.Clock, Logger: log})
	if err != nil {
		return stores{}, err
	}
	return stores{kind: "sqlite", tickets: sq, accounts: sq.Accounts(), devices: sq.Devices(), elector: leader.Always{}}, nil
}

// busOptions are the external broker client's: a replica has its own client ID and a clean
// session, and takes incidents through the replicas' shared subscription. Presence and
// heartbeats are not shared: every replica keeps the whole fleet's live state, in memory.
func (m *Main) busOptions(url string, log *slog.Logger) paho.Options {
	c := m.Config.MQTT
	o := paho.Options{URL: url, Logger: log, ClientID: c.ClientID()}
	if c.ReplicaID != "" {
		o.SharedGroup, o.SharedFilters, o.CleanSession = cmp.Or(c.ShareGroup, "kentongan-hub"), []string{mqtt.Filter(mqtt.KindIncident)}, true
	}
	return o
}

// registerLeaderMetric exports whether this hub leads, so that an operator (and the scale-out
// test) sees where leadership is.
func (m *Main) registerLeaderMetric() {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kentongan_hub_leader",
		Help: "1 while this hub replica leads: marks deadline breaches, notifies the supervisor and posts webhooks.",
	}, func() float64 {
		if m.leading.Load() {
			return 1
		}
		return 0
	}))
}

// startLeading runs the election until Close; while this hub leads, the webhook dispatcher runs
// and ingest marks deadline breaches and notifies.
func (m *Main) startLeading(st stores) {
	ctx, cancel := context.WithCancel(context.Background())
	m.stopLead, m.leadDone = cancel, make(chan struct{})
	wh, log, replica := m.Webhooks, m.Logger, m.Config.MQTT.ReplicaID
	go func() {
		defer close(m.leadDone)
		st.elector.Run(ctx, func(ctx context.Context) {
			m.leading.Store(true)
			if st.kind != "sqlite" {
				log.Info("this replica leads: deadline marks, alert notifications and webhooks run here", "replica", replica)
			}
			wh.Run(ctx)
			m.leading.Store(false)
			if st.kind != "sqlite" && ctx.Err() != nil {
				log.Info("this replica no longer leads", "replica", replica)
			}
		})
	}()
}

func (m *Main) stopLeading() {
	if m.stopLead == nil {
		return
	}
	m.stopLead()
	<-m.leadDone
	m.stopLead, m.leadDone = nil, nil
	m.leading.Store(false)
}

// lookupEvery bounds how often one unknown device ID is looked up in the registry, so that a
// flood of messages from an unregistered ID costs one query per interval, not one each.
const lookupEvery = 5 * time.Second

// maxLookups bounds the memory of IDs looked up; beyond it the memory starts afresh.
const maxLookups = 100_000

// registryBus is the bus as ingest sees it: before a message from a device ingest does not
// know reaches it, the registry is asked, so that a kiosk enrolled through another replica is
// accepted here too (its enrollment registered it with that replica's ingest only).
type registryBus struct {
	hub.Bus
	m    *Main
	prov *provisioning
}

// registryBus wraps m.bus for ingest.
func (m *Main) registryBus(prov *provisioning, devices []hub.Device) hub.Bus {
	m.knownMu.Lock()
	m.known, m.lookedUp = map[string]bool{}, map[string]time.Time{}
	for _, d := range devices {
		m.known[d.ID] = true
	}
	m.knownMu.Unlock()
	return registryBus{Bus: m.bus, m: m, prov: prov}
}

func (b registryBus) Subscribe(filter string, qos byte, h hub.Handler) error {
	return b.Bus.Subscribe(filter, qos, func(msg hub.Message) {
		if id, _, err := mqtt.ParseTopic(msg.Topic); err == nil {
			b.m.learn(id, b.prov)
		}
		h(msg)
	})
}

// learn registers an enrolled device with ingest if this hub has not heard of it yet.
func (m *Main) learn(id string, prov *provisioning) {
	svc := prov.ingest
	if svc == nil {
		return
	}
	now := m.Clock.Now()
	m.knownMu.Lock()
	if m.known[id] || now.Sub(m.lookedUp[id]) < lookupEvery {
		m.knownMu.Unlock()
		return
	}
	if len(m.lookedUp) >= maxLookups {
		m.lookedUp = map[string]time.Time{}
	}
	m.lookedUp[id] = now
	m.knownMu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := prov.svc.Device(ctx, id)
	switch {
	case hub.ErrorCode(err) == hub.CodeNotFound:
		return // ingest rejects it, as it should
	case err != nil:
		m.Logger.Warn("device registry lookup failed; the device's message is judged on what this replica knows", "device", id, "err", err)
		return
	case d.State != enroll.StateActive:
		return
	}
	if err := svc.RegisterDevice(d.HubDevice()); err != nil && hub.ErrorCode(err) != hub.CodeConflict {
		m.Logger.Error("enrolled device not registered with ingest", "device", id, "err", err)
		return
	}
	m.knownMu.Lock()
	m.known[id] = true
	m.knownMu.Unlock()
	m.Logger.Info("device enrolled elsewhere registered with this replica's ingest", "device", id)
}

// markKnown records that ingest registered id, so that its messages skip the lookup.
func (m *Main) markKnown(id string) {
	m.knownMu.Lock()
	defer m.knownMu.Unlock()
	if m.known != nil {
		m.known[id] = true
	}
}
