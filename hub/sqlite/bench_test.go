package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kentongan/kentongan/hub/sqlite"
	"github.com/kentongan/kentongan/hub/storetest"
)

// BenchmarkIngestBatch256 measures group commit: batches of 256 new incidents, each batch one
// durable transaction (synchronous=FULL), reported as tickets per second. Its twin in
// hub/postgres has the same shape, so the two figures compare.
func BenchmarkIngestBatch256(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "tickets.db"), sqlite.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	storetest.BenchIngest(b, s, 256)
}
