package postgres_test

import (
	"context"
	"testing"

	"github.com/kentongan/kentongan/hub/postgres"
	"github.com/kentongan/kentongan/hub/storetest"
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
	storetest.BenchIngest(b, s, 256)
}
