package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
)

// BenchIngest ingests batches of size new incidents into s, each batch one Store.Ingest (one
// durable transaction), and reports tickets per second. Every store benchmarks through it, so
// that their figures compare.
func BenchIngest(b *testing.B, s hub.Store, size int) {
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	n := 0
	batch := make([]hub.NewTicket, size)
	b.ResetTimer()
	for b.Loop() {
		for i := range batch {
			n++
			batch[i] = hub.NewTicket{
				IncidentID: fmt.Sprintf("0195a1b2-0000-7000-8000-%012d", n),
				DeviceID:   fmt.Sprintf("kiosk-%d", n%500),
				Source:     "button",
				Button:     "darurat",
				Priority:   hub.PriorityEmergency,
				OccurredAt: at,
			}
		}
		res, err := s.Ingest(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		if res[size-1].Err != nil || res[size-1].Existing {
			b.Fatalf("last result %+v", res[size-1])
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tickets/s")
}
