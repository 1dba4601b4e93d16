package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/postgres"
	"github.com/kentongan/kentongan/test/pgtest"
)

// BenchmarkIngestBatch256 measures group commit: batches of 256 new incidents, each batch one
// durable transaction (the server runs with fsync on), reported as tickets per second. Its
// twin in hub/sqlite has the same shape, so the two figures compare.
func BenchmarkIngestBatch256(b *testing.B) {
	s, err := postgres.Open(context.Background(), pgtest.URL(b), postgres.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	benchIngest(b, s, 256)
}

func benchIngest(b *testing.B, s hub.Store, size int) {
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
