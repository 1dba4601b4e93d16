package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/mochi"
	"github.com/kentongan/kentongan/mqtt"
)

// throughputPublishers is how many kiosks (or raw publishers) flood at once: the shape of the
// issue's broker figure, 20 publishers → 1 subscriber.
const throughputPublishers = 20

// throughput measures (c) durable tickets acknowledged per second through the real hub against
// the embedded broker's raw QoS 1 throughput in the same shape, raw runs before and after the
// hub's, so a machine that slows down mid-run shows as a spread.
func throughput(ctx context.Context, cfg Config) ([]Row, error) {
	perPub := 2000
	if cfg.Quick {
		perPub = 200
	}
	rawInline1, err := rawThroughput(ctx, perPub, true)
	if err != nil {
		return nil, fmt.Errorf("raw broker (inline): %w", err)
	}
	rawTCP, err := rawThroughput(ctx, perPub, false)
	if err != nil {
		return nil, fmt.Errorf("raw broker (TCP): %w", err)
	}
	tickets, err := ingestThroughput(ctx, cfg, perPub)
	if err != nil {
		return nil, err
	}
	rawInline2, err := rawThroughput(ctx, perPub, true)
	if err != nil {
		return nil, fmt.Errorf("raw broker (inline): %w", err)
	}
	raw := (rawInline1 + rawInline2) / 2
	return []Row{
		{Measurement: fmt.Sprintf("c. mochi raw QoS 1, %d publishers → 1 inline subscriber, 200 B", throughputPublishers), Value: fmt.Sprintf("%.0f msg/s (%.0f, %.0f)", raw, rawInline1, rawInline2)},
		{Measurement: fmt.Sprintf("c. mochi raw QoS 1, %d publishers → 1 TCP (paho) subscriber, 200 B", throughputPublishers), Value: fmt.Sprintf("%.0f msg/s", rawTCP)},
		{Measurement: fmt.Sprintf("c. hub ingest, durable tickets acked/s (%d kiosks × %d)", throughputPublishers, perPub), Value: fmt.Sprintf("%.0f /s", tickets), Baseline: fmt.Sprintf("raw inline %.0f msg/s (%.0f %%)", raw, 100*tickets/raw), Goal: "≥ 20,000 /s", Met: met(tickets >= 20000)},
		{Measurement: "c. hub ingest commits", Value: batchStats},
		{Measurement: "c. hub ingest vs raw inline broker", Value: fmt.Sprintf("%.0f %%", 100*tickets/raw), Goal: "≥ 60 %", Met: met(tickets >= 0.6*raw)},
	}, nil
}

// rawThroughput floods a bare embedded broker from throughputPublishers paho clients with
// perPub QoS 1 messages each and times until one subscriber (inline, as the hub subscribes, or
// a paho client) has them all.
func rawThroughput(ctx context.Context, perPub int, inline bool) (float64, error) {
	b, err := mochi.New(mochi.Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return 0, err
	}
	defer b.Close()
	total := int64(throughputPublishers * perPub)
	var got atomic.Int64
	done := make(chan struct{})
	count := func() {
		if got.Add(1) == total {
			close(done)
		}
	}
	if inline {
		if err := b.Subscribe("raw/#", 1, func(hub.Message) { count() }); err != nil {
			return 0, err
		}
	}
	if err := b.Serve(); err != nil {
		return 0, err
	}
	url := "tcp://" + b.Addr()
	if !inline {
		sub, err := connectClient(url, "raw-sub", nil)
		if err != nil {
			return 0, err
		}
		defer sub.Disconnect(0)
		if err := waitToken(sub.Subscribe("raw/#", 1, func(paho.Client, paho.Message) { count() }), "subscribe raw/#"); err != nil {
			return 0, err
		}
	}
	pubs := make([]paho.Client, throughputPublishers)
	for i := range pubs {
		if pubs[i], err = connectClient(url, fmt.Sprintf("raw-pub-%d", i), nil); err != nil {
			return 0, err
		}
		defer pubs[i].Disconnect(0)
	}
	payload := make([]byte, 200)
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("raw/%d", i)
			for range perPub {
				c.Publish(topic, 1, false, payload)
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(time.Minute):
		return 0, fmt.Errorf("subscriber got %d of %d messages within a minute", got.Load(), total)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// ingestThroughput floods the real hub from throughputPublishers simulated kiosks (paho
// clients with kiosk identities, each publishing perPub distinct incidents as its outbox
// replay would) and times until every "received" ack is back; then it checks the tickets in
// the database.
func ingestThroughput(ctx context.Context, cfg Config, perPub int) (float64, error) {
	devices := make([]string, throughputPublishers)
	for i := range devices {
		devices[i] = fmt.Sprintf("bench-k%02d", i)
	}
	m, dir, err := startHub(ctx, cfg, devices...)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	defer m.Close()

	total := int64(len(devices) * perPub)
	var received, other atomic.Int64
	done := make(chan struct{})
	// Build every payload first, so that the timed part is MQTT, the hub and SQLite.
	payloads := make([][][]byte, len(devices))
	now := time.Now().UTC()
	for i, dev := range devices {
		payloads[i] = make([][]byte, perPub)
		for j := range perPub {
			id, err := mqtt.NewIncidentID()
			if err != nil {
				return 0, err
			}
			p, err := mqtt.Encode(mqtt.Incident{V: mqtt.SchemaVersion, ID: id, DeviceID: dev, Source: mqtt.SourceButton,
				Button: "kebakaran", Category: "fire", OccurredAt: now, Attempt: 1})
			if err != nil {
				return 0, err
			}
			payloads[i][j] = p
		}
	}
	clients := make([]paho.Client, len(devices))
	for i, dev := range devices {
		var seen sync.Map
		c, err := connectClient(m.BrokerURL(), mochi.KioskClientPrefix+dev, nil)
		if err != nil {
			return 0, err
		}
		defer c.Disconnect(0)
		clients[i] = c
		err = waitToken(c.Subscribe(mqtt.Topic(dev, mqtt.KindAck), 1, func(_ paho.Client, msg paho.Message) {
			a, err := mqtt.DecodeAck(msg.Payload())
			if err != nil || a.Status != mqtt.AckReceived {
				other.Add(1)
				return
			}
			if _, dup := seen.LoadOrStore(a.IncidentID, true); dup {
				return
			}
			if received.Add(1) == total {
				close(done)
			}
		}), "subscribe to acks")
		if err != nil {
			return 0, err
		}
	}
	start := time.Now()
	for i, c := range clients {
		go func() {
			topic := mqtt.Topic(devices[i], mqtt.KindIncident)
			for _, p := range payloads[i] {
				c.Publish(topic, mqtt.QoSIncident, false, p)
			}
		}()
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("%d of %d received acks within 5 minutes (%d other acks)", received.Load(), total, other.Load())
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	rate := float64(total) / time.Since(start).Seconds()
	batchStats = scrapeBatches("http://" + m.HTTPAddr() + "/metrics")
	counts, err := m.Store.TicketCounts(ctx)
	if err != nil {
		return 0, fmt.Errorf("count tickets: %w", err)
	}
	var n int64
	for _, c := range counts {
		n += int64(c.Count)
	}
	if n != total {
		return rate, fmt.Errorf("%d tickets in the database for %d incidents acknowledged", n, total)
	}
	return rate, nil
}

// batchStats is the mean batch size and commit time of the last ingest run, for the table.
var batchStats string

// scrapeBatches reads the ingest's batch size and commit time histograms from /metrics.
func scrapeBatches(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	v := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		for _, name := range []string{"kentongan_hub_ingest_batch_size_sum", "kentongan_hub_ingest_batch_size_count", "kentongan_hub_ingest_commit_seconds_sum"} {
			if rest, ok := strings.CutPrefix(line, name+" "); ok {
				v[name], _ = strconv.ParseFloat(strings.TrimSpace(rest), 64)
			}
		}
	}
	n := v["kentongan_hub_ingest_batch_size_count"]
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f commits, mean batch %.1f, mean commit %.2f ms", n, v["kentongan_hub_ingest_batch_size_sum"]/n, 1000*v["kentongan_hub_ingest_commit_seconds_sum"]/n)
}
