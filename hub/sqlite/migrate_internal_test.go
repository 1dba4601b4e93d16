package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/kentongan/kentongan/hub"
)

// TestMigrateKeepsOlderTickets: a file from before issue 5 (schema version 2) opens with its
// tickets readable, in triage, with versions counting their events, and with the webhook cursor
// past its history so that old events are not posted to agencies.
func TestMigrateKeepsOlderTickets(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:2] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`PRAGMA user_version = 2`,
		`INSERT INTO tickets (seq, id, number, incident_id, device_id, source, button, category, priority, status, text, reporter,
			test, occurred_at, created_at, acknowledged_at, acknowledged_by, unverified)
			VALUES (1, 't1', '112-000001', 'i1', 'kiosk-1', 'button', 'panic', '', 'emergency', 'acknowledged', '', '',
			0, '2025-01-02T03:04:05Z', '2025-01-02T03:04:06.5Z', '2025-01-02T03:05:00Z', 'siti', 0)`,
		`INSERT INTO ticket_events (ticket_id, at, actor, from_status, to_status, note) VALUES
			('t1', '2025-01-02T03:04:06.5Z', 'device:kiosk-1', '', 'new', ''),
			('t1', '2025-01-02T03:05:00Z', 'siti', 'new', 'acknowledged', '')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("open old file: %v", err)
	}
	defer s.Close()
	tk, err := s.Ticket(ctx, "112-000001")
	if err != nil {
		t.Fatalf("old ticket: %v", err)
	}
	if tk.Agency != hub.AgencyTriage || tk.Version != 2 || !tk.UpdatedAt.Equal(tk.CreatedAt) || tk.AcknowledgedBy != "siti" || tk.AckDue != nil {
		t.Errorf("migrated ticket %+v", tk)
	}
	evs, err := s.Events(ctx, "t1")
	if err != nil || len(evs) != 2 || evs[1].Kind != hub.EventStatus {
		t.Errorf("migrated events %+v, %v", evs, err)
	}
	if c, err := s.DeliveryCursor(ctx); err != nil || c != evs[1].ID {
		t.Errorf("webhook cursor %d, %v; want %d, past the history", c, err, evs[1].ID)
	}
	// And it moves on as a new ticket's would.
	if got, err := s.Transition(ctx, "t1", hub.StatusResolved, "budi", ""); err != nil || got.Version != 3 || got.ResolvedBy != "budi" {
		t.Errorf("resolve migrated ticket: %+v, %v", got, err)
	}
}
