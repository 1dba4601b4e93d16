package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/modem/modemtest"
)

// BenchmarkPressToReceived measures, through a real kiosk and a real hub on loopback, the time
// from the moment a press raises an incident (before its fsync to the outbox) to the moment the
// kiosk holds the hub's "received" ack, which the hub sends only after the ticket is committed.
// Both instants come from the kiosk's clock. Run with:
//
//	go test -run '^$' -bench PressToReceived -benchtime 500x ./test/e2e/
func BenchmarkPressToReceived(b *testing.B) {
	hubDir, kioskDir := b.TempDir(), b.TempDir()
	h := startHub(b, hubDir, "ciakar-rw03")
	cfg := kioskConfig("ciakar-rw03", "tcp://"+h.brokerAddr(), kioskDir)
	for i := range cfg.Buttons {
		cfg.Buttons[i].HoldMS, cfg.Buttons[i].DebounceMS = 10, 2
	}
	kk := startKioskCfg(b, cfg)
	k := kk.d
	eventually(b, "kiosk connected", func() (bool, string) { return k.Status().Connected, "" })

	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		res, err := k.SimPress(ctx, "kebakaran", 20*time.Millisecond)
		if err != nil || !res.Raised {
			b.Fatalf("press: %+v, %v", res, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			var done bool
			for _, in := range k.Status().Incidents {
				if in.ID == res.IncidentID && in.State != "pending" {
					lat = append(lat, in.Updated.Sub(in.OccurredAt))
					done = true
				}
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("incident %s not received within 10 s", res.IncidentID)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkSMSToReceipt measures an RT head's SMS from its delivery into the SIM to the receipt
// leaving the kiosk's modem: +CMTI, read, decode, outbox commit, MQTT, the hub's commit, the
// sms_send command, its commit on the kiosk, and AT+CMGS through the simulator (which answers
// a send after 50 ms, as a SIM800L roughly does). Rerun with:
//
//	go test -run '^$' -bench SMSToReceipt -benchtime 50x ./test/e2e/
func BenchmarkSMSToReceipt(b *testing.B) {
	h := startHub(b, b.TempDir(), "ciakar-rw03")
	sim, err := modemtest.New(modemtest.Options{Logger: testLogger("modem")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sim.Close() })
	k := startKioskCfg(b, smsKioskConfig("ciakar-rw03", "tcp://"+h.brokerAddr(), b.TempDir(), sim.Path()))
	eventually(b, "modem ready", func() (bool, string) {
		st := k.d.Status()
		return st.Connected && st.Modem != nil && st.Modem.State == "ready", ""
	})
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := sim.Deliver(rtHead, fmt.Sprintf("LAPOR SAMPAH menumpuk di gang %d", i)); err != nil {
			b.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if _, err := sim.WaitSent(wctx, i+1); err != nil {
			cancel()
			b.Fatalf("receipt %d: %v", i+1, err)
		}
		cancel()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
