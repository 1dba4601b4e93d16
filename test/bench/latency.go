package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/kentongan/kentongan/daemon"
	"github.com/kentongan/kentongan/hub/hubd"
)

// startHub runs a real hub in-process (embedded broker, SQLite, durable) on free ports in a
// fresh directory, knowing devices. The caller closes it and removes the directory.
func startHub(ctx context.Context, cfg Config, devices ...string) (*hubd.Main, string, error) {
	dir, err := os.MkdirTemp("", "kentongan-bench-hub-")
	if err != nil {
		return nil, "", fmt.Errorf("hub dir: %w", err)
	}
	m := hubd.NewMain()
	m.Logger = cfg.Log
	if err := m.ParseFlags(ctx, []string{"--data", dir, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("hub flags: %w", err)
	}
	for _, id := range devices {
		m.Config.Devices = append(m.Config.Devices, hubd.DeviceConfig{ID: id, Name: "Pos " + id})
	}
	if err := m.Run(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start hub: %w", err)
	}
	return m, dir, nil
}

// connectClient connects a paho client with the given ID to a broker URL.
func connectClient(url, id string, configure func(*paho.ClientOptions)) (paho.Client, error) {
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false).
		SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second)
	if configure != nil {
		configure(opts)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect %s: timed out", id)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect %s: %w", id, err)
	}
	return c, nil
}

func waitToken(tok paho.Token, what string) error {
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// rtt measures MQTT QoS 1 round trips: pinger publishes, echoer answers on another topic, the
// pinger's subscription gets the answer.
type rtt struct {
	pinger, echoer paho.Client
	pong           chan struct{}
}

func newRTT(url string) (*rtt, error) {
	r := &rtt{pong: make(chan struct{}, 1)}
	var err error
	if r.echoer, err = connectClient(url, "bench-echo", nil); err != nil {
		return nil, err
	}
	echo := r.echoer
	if err := waitToken(echo.Subscribe("bench/ping", 1, func(_ paho.Client, m paho.Message) {
		echo.Publish("bench/pong", 1, false, m.Payload())
	}), "subscribe bench/ping"); err != nil {
		r.close()
		return nil, err
	}
	if r.pinger, err = connectClient(url, "bench-ping", nil); err != nil {
		r.close()
		return nil, err
	}
	if err := waitToken(r.pinger.Subscribe("bench/pong", 1, func(paho.Client, paho.Message) {
		select {
		case r.pong <- struct{}{}:
		default:
		}
	}), "subscribe bench/pong"); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *rtt) once() (time.Duration, error) {
	payload := make([]byte, 200)
	start := time.Now()
	r.pinger.Publish("bench/ping", 1, false, payload)
	select {
	case <-r.pong:
		return time.Since(start), nil
	case <-time.After(10 * time.Second):
		return 0, errors.New("MQTT round trip: no answer within 10 s")
	}
}

func (r *rtt) close() {
	for _, c := range []paho.Client{r.pinger, r.echoer} {
		if c != nil {
			c.Disconnect(0)
		}
	}
}

// press raises one incident on the kiosk through the sim GPIO chip and returns the time from
// the incident's creation (the debounced edge that completed the hold, before the outbox
// fsync) to the kiosk holding the hub's "received" ack, both on the kiosk's clock.
func press(ctx context.Context, k *daemon.Daemon) (time.Duration, error) {
	// A press held 5× the button's hold raises an incident even when a loaded machine delays
	// the sim's edges; the latency counts from the raise, so the hold does not enter it. One
	// that still raises nothing (a late edge read as chatter) is pressed again.
	var res daemon.PressResult
	for attempt := 1; ; attempt++ {
		var err error
		res, err = k.SimPress(ctx, "kebakaran", 50*time.Millisecond)
		if err != nil {
			return 0, fmt.Errorf("press: %w", err)
		}
		if res.Raised {
			break
		}
		if attempt == 3 {
			return 0, fmt.Errorf("three presses raised no incident: %+v", res)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, in := range k.Status().Incidents {
			if in.ID == res.IncidentID && in.State != "pending" {
				return in.Updated.Sub(in.OccurredAt), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("incident %s not received within 10 s", res.IncidentID)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// latency measures (a) the bare MQTT round trip and (b) press→ack, interleaved in rounds so
// that both see the same machine.
func latency(ctx context.Context, cfg Config) ([]Row, error) {
	rounds, pings, presses := 100, 20, 5
	if cfg.Quick {
		rounds, pings, presses = 10, 10, 2
	}
	const device = "bench-rw01"
	m, hubDir, err := startHub(ctx, cfg, device)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(hubDir)
	defer m.Close()

	kioskDir, err := os.MkdirTemp("", "kentongan-bench-kiosk-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(kioskDir)
	k, err := startKiosk(ctx, cfg, device, m.BrokerURL(), kioskDir)
	if err != nil {
		return nil, err
	}
	defer k.Close()

	r, err := newRTT(m.BrokerURL())
	if err != nil {
		return nil, err
	}
	defer r.close()

	var rt, pa []time.Duration
	for range rounds {
		for range pings {
			d, err := r.once()
			if err != nil {
				return nil, err
			}
			rt = append(rt, d)
		}
		for range presses {
			d, err := press(ctx, k)
			if err != nil {
				return nil, err
			}
			pa = append(pa, d)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	slices.Sort(rt)
	slices.Sort(pa)
	rtP50, rtP99 := quantile(rt, 0.5), quantile(rt, 0.99)
	p50, p99, mx := quantile(pa, 0.5), quantile(pa, 0.99), pa[len(pa)-1]
	var rows []Row
	if cfg.Only["a"] {
		rows = append(rows,
			Row{Measurement: fmt.Sprintf("a. MQTT QoS 1 round trip p50 (paho→mochi→paho→back, n=%d)", len(rt)), Value: ms(rtP50)},
			Row{Measurement: "a. MQTT QoS 1 round trip p99", Value: ms(rtP99)})
	}
	if cfg.Only["b"] {
		rows = append(rows,
			Row{Measurement: fmt.Sprintf("b. press→received ack p50 (n=%d)", len(pa)), Value: ms(p50), Baseline: "RTT p50 " + ms(rtP50) + fmt.Sprintf(" (×%.1f)", float64(p50)/float64(rtP50)), Goal: "≤ 4× RTT p50 = " + ms(4*rtP50), Met: met(p50 <= 4*rtP50)},
			Row{Measurement: "b. press→received ack p99", Value: ms(p99), Baseline: "RTT p99 " + ms(rtP99), Goal: "≤ 5 ms", Met: met(p99 <= 5*time.Millisecond)},
			Row{Measurement: "b. press→received ack max", Value: ms(mx)})
	}
	return rows, nil
}

// startKiosk starts a real kentongand in-process with the sim GPIO chip, and waits until it is
// connected.
func startKiosk(ctx context.Context, cfg Config, device, brokerURL, dir string) (*daemon.Daemon, error) {
	c := daemon.Config{DeviceID: device, Name: "Pos " + device}
	c.Broker.URL = brokerURL
	c.GPIO.Driver = "sim"
	c.Store.Dir = dir
	c.Admin.Listen = "127.0.0.1:0"
	noCancel := 0
	c.Buttons = []daemon.Button{{Name: "kebakaran", Category: "fire", Pin: 27, HoldMS: 10, DebounceMS: 2, CancelWindowMS: &noCancel}}
	c.LEDs = []daemon.LED{{Name: "status", Pin: 23}}
	c.Broker.ConnectRetryInterval = 200 * time.Millisecond
	c.Broker.MaxReconnectInterval = 500 * time.Millisecond
	k, err := daemon.New(c, daemon.WithLogger(cfg.Log.With("proc", device)))
	if err != nil {
		return nil, fmt.Errorf("new kiosk: %w", err)
	}
	if err := k.Start(ctx); err != nil {
		k.Close()
		return nil, fmt.Errorf("start kiosk: %w", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !k.Status().Connected {
		if time.Now().After(deadline) {
			k.Close()
			return nil, errors.New("kiosk not connected to the hub within 20 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return k, nil
}

// quantile of sorted d, nearest rank below.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[int(q*float64(len(d)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
