// Package sqlite is the hub.Store on an SQLite file, through modernc.org/sqlite (pure Go, so the
// hub cross-compiles without cgo).
//
// Writes go through one connection, so SQLite's single writer never waits on a lock held inside
// this process and a batch's transaction is the only thing between fsyncs; reads use a pool of
// read-only connections, which WAL lets run alongside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/kentongan/kentongan/hub"
)

// Options configure a Store. Zero fields get the defaults documented on each.
type Options struct {
	Clock       hub.Clock     // default hub.SystemClock
	Logger      *slog.Logger  // default slog.Default()
	BusyTimeout time.Duration // how long a connection waits for a lock; default 5s
	Readers     int           // size of the read pool; default 4
}

func (o *Options) fill() {
	if o.Clock == nil {
		o.Clock = hub.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.Readers <= 0 {
		o.Readers = 4
	}
}

// Store is a hub.Store in one SQLite file.
type Store struct {
	w     *sql.DB // exactly one connection
	r     *sql.DB // read-only pool
	clock hub.Clock
	log   *slog.Logger

	// The inserts of new tickets and their creation events, of one row and of chunkRows rows,
	// prepared once: parsing a group commit's long inserts anew for every batch cost more than
	// running them, and a statement per row costs more than one per chunk.
	insertTicket, insertCreation       *sql.Stmt
	insertTickets64, insertCreations64 *sql.Stmt
}

var _ hub.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and brings its schema up to date.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts.fill()
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open ticket database %q: path must be non-empty and free of '?' and '#'", path)
	}
	busy := fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds())

	// synchronous=FULL: with WAL, NORMAL may lose the last commits on power loss, and a ticket
	// whose "received" ack went out must survive the kiosk's power cut and the hub's alike.
	wq := url.Values{"_pragma": {busy, "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"}, "_txlock": {"immediate"}}
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open ticket database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &Store{w: w, clock: opts.Clock, log: opts.Logger}
	if err := s.migrate(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open ticket database %s: %w", path, err)
	}
	// Prepared before any transaction holds the writer's one connection.
	for _, p := range []struct {
		dst  **sql.Stmt
		rows int
		ev   bool
	}{{&s.insertTicket, 1, false}, {&s.insertTickets64, chunkRows, false}, {&s.insertCreation, 1, true}, {&s.insertCreations64, chunkRows, true}} {
		q := `INSERT INTO tickets (` + newTicketColumns + `) VALUES ` + repeatJoin("("+placeholders(newTicketColumnCount)+")", p.rows)
		if p.ev {
			q = `INSERT INTO ticket_events (ticket_id, at, actor, from_status, to_status, note, kind, agency) VALUES ` +
				repeatJoin("("+placeholders(8)+")", p.rows)
		}
		if *p.dst, err = w.PrepareContext(ctx, q); err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("open ticket database %s: prepare: %w", path, err)
		}
	}

	// Readers are opened after the writer has switched the file to WAL, which is persistent.
	rq := url.Values{"_pragma": {busy, "query_only(1)", "foreign_keys(1)"}}
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open ticket database %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(opts.Readers)
	r.SetMaxIdleConns(opts.Readers)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("open ticket database %s for reading: %w", path, err)
	}
	s.r = r
	return s, nil
}

// Close closes both connection pools. SQLite checkpoints the WAL when the last one closes.
func (s *Store) Close() error {
	return errors.Join(s.insertTicket.Close(), s.insertCreation.Close(), s.insertTickets64.Close(), s.insertCreations64.Close(),
		s.r.Close(), s.w.Close())
}

// migrations are applied in order; PRAGMA user_version counts how many a file has had. Append
// only: a released migration never changes.
var migrations = []string{
	`CREATE TABLE sequences (
		name  TEXT PRIMARY KEY,
		value INTEGER NOT NULL
	) STRICT;
	INSERT INTO sequences (name, value) VALUES ('ticket_number', 0);

	CREATE TABLE tickets (
		seq             INTEGER PRIMARY KEY, -- from sequences.ticket_number; never reused
		id              TEXT NOT NULL UNIQUE,
		number          TEXT NOT NULL, -- formatted seq, so unique with it
		incident_id     TEXT NOT NULL UNIQUE, -- what makes ingest idempotent
		device_id       TEXT NOT NULL,
		source          TEXT NOT NULL,
		button          TEXT NOT NULL,
		category        TEXT NOT NULL,
		priority        TEXT NOT NULL,
		status          TEXT NOT NULL,
		text            TEXT NOT NULL,
		reporter        TEXT NOT NULL,
		test            INTEGER NOT NULL,
		occurred_at     TEXT NOT NULL,
		created_at      TEXT NOT NULL,
		acknowledged_at TEXT,
		acknowledged_by TEXT NOT NULL
	) STRICT;
	CREATE INDEX tickets_status ON tickets (status, seq);
	CREATE INDEX tickets_device ON tickets (device_id, seq);

	CREATE TABLE ticket_events (
		id          INTEGER PRIMARY KEY,
		ticket_id   TEXT NOT NULL REFERENCES tickets (id),
		at          TEXT NOT NULL,
		actor       TEXT NOT NULL,
		from_status TEXT NOT NULL,
		to_status   TEXT NOT NULL,
		note        TEXT NOT NULL
	) STRICT;
	CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);`,

	// An SMS from a sender not on the kiosk's allow-list, accepted under the unverified policy.
	`ALTER TABLE tickets ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;`,

	// Issue 5: routing, deadlines, the rest of the lifecycle, false alarms, RT/RW confirmation,
	// and the agencies' webhook deliveries. Times that SQL compares are written fixed-width
	// (see formatTime), so that text order is time order.
	`ALTER TABLE tickets ADD COLUMN agency TEXT NOT NULL DEFAULT 'triage';
	ALTER TABLE tickets ADD COLUMN unit TEXT NOT NULL DEFAULT '';
	ALTER TABLE tickets ADD COLUMN site TEXT NOT NULL DEFAULT '{}'; -- JSON of hub.Site
	ALTER TABLE tickets ADD COLUMN queued_until TEXT;
	ALTER TABLE tickets ADD COLUMN ack_due TEXT;
	ALTER TABLE tickets ADD COLUMN resolve_due TEXT;
	ALTER TABLE tickets ADD COLUMN ack_breached_at TEXT;
	ALTER TABLE tickets ADD COLUMN resolve_breached_at TEXT;
	ALTER TABLE tickets ADD COLUMN dispatched_at TEXT;
	ALTER TABLE tickets ADD COLUMN dispatched_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE tickets ADD COLUMN resolved_at TEXT;
	ALTER TABLE tickets ADD COLUMN resolved_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE tickets ADD COLUMN closed_at TEXT;
	ALTER TABLE tickets ADD COLUMN closed_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE tickets ADD COLUMN cancelled_at TEXT;
	ALTER TABLE tickets ADD COLUMN cancelled_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE tickets ADD COLUMN duplicate_of TEXT NOT NULL DEFAULT '';
	ALTER TABLE tickets ADD COLUMN false_alarm INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE tickets ADD COLUMN false_alarm_reason TEXT NOT NULL DEFAULT '';
	ALTER TABLE tickets ADD COLUMN false_alarm_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE tickets ADD COLUMN false_alarm_at TEXT;
	ALTER TABLE tickets ADD COLUMN confirm_state TEXT NOT NULL DEFAULT '';
	ALTER TABLE tickets ADD COLUMN confirm_asked_at TEXT;
	ALTER TABLE tickets ADD COLUMN confirm_asked INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE tickets ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
	ALTER TABLE tickets ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
	UPDATE tickets SET updated_at = created_at,
		version = (SELECT COUNT(*) FROM ticket_events e WHERE e.ticket_id = tickets.id);
	CREATE INDEX tickets_agency ON tickets (agency, seq);
	CREATE INDEX tickets_created ON tickets (created_at);
	-- The deadline watcher's scan every few seconds reads only tickets that may be overdue.
	CREATE INDEX tickets_ack_due ON tickets (ack_due) WHERE status = 'new';
	CREATE INDEX tickets_resolve_due ON tickets (resolve_due) WHERE status IN ('new', 'acknowledged', 'dispatched');

	ALTER TABLE ticket_events ADD COLUMN kind TEXT NOT NULL DEFAULT 'status';
	ALTER TABLE ticket_events ADD COLUMN agency TEXT NOT NULL DEFAULT '';
	ALTER TABLE ticket_events ADD COLUMN detail TEXT NOT NULL DEFAULT '';

	-- One row per RT/RW head who answered; a head who changes their mind overwrites.
	CREATE TABLE ticket_confirmations (
		ticket_id TEXT NOT NULL REFERENCES tickets (id),
		number    TEXT NOT NULL,
		answer    TEXT NOT NULL,
		at        TEXT NOT NULL,
		PRIMARY KEY (ticket_id, number)
	) STRICT;

	CREATE TABLE webhook_deliveries (
		id           INTEGER PRIMARY KEY,
		agency       TEXT NOT NULL,
		event_id     INTEGER NOT NULL,
		ticket_id    TEXT NOT NULL,
		kind         TEXT NOT NULL,
		payload      TEXT NOT NULL,
		state        TEXT NOT NULL,
		attempts     INTEGER NOT NULL DEFAULT 0,
		next_at      TEXT NOT NULL,
		created_at   TEXT NOT NULL,
		last_at      TEXT,
		last_status  INTEGER NOT NULL DEFAULT 0,
		last_error   TEXT NOT NULL DEFAULT '',
		delivered_at TEXT,
		UNIQUE (agency, event_id)
	) STRICT;
	CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);
	-- Events from before webhooks existed are history, not news.
	INSERT INTO sequences (name, value) VALUES ('webhook_cursor', (SELECT COALESCE(MAX(id), 0) FROM ticket_events));`,
}

// schema is a set of migrations kept apart from the tickets' own, so that another part of the
// hub (accounts) can have tables in this file without sharing one numbering: each schema's
// version is a row of schema_versions.
type schema struct {
	name       string
	migrations []string // append only, as for migrations
}

// schemas are the other parts' migrations, applied after the tickets' in name order. A file of
// this package adds its part in an init function: schemas = append(schemas, schema{...}).
var schemas []schema

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: database schema version %d is newer than this hub's %d", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate: apply migration %d: %w", i+1, err)
		}
	}
	changed := version != len(migrations)
	if changed {
		// PRAGMA takes no bind parameters; the value is an integer this code controls.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
			return fmt.Errorf("migrate: write schema version: %w", err)
		}
	}
	more, err := migrateSchemas(ctx, tx, s.log)
	if err != nil {
		return err
	}
	if !changed && !more {
		return nil
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	if changed {
		s.log.Info("ticket database migrated", "from_version", version, "to_version", len(migrations))
	}
	return nil
}

// migrateSchemas brings every schema in schemas up to date inside tx; changed reports whether
// anything was applied.
func migrateSchemas(ctx context.Context, tx *sql.Tx, log *slog.Logger) (changed bool, err error) {
	if len(schemas) == 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_versions (
		name    TEXT PRIMARY KEY,
		version INTEGER NOT NULL
	) STRICT`); err != nil {
		return false, fmt.Errorf("migrate: schema versions: %w", err)
	}
	sorted := slices.SortedFunc(slices.Values(schemas), func(a, b schema) int { return strings.Compare(a.name, b.name) })
	for _, sc := range sorted {
		var version int
		err := tx.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE name = ?`, sc.name).Scan(&version)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("migrate %s: read version: %w", sc.name, err)
		}
		if version > len(sc.migrations) {
			return false, fmt.Errorf("migrate %s: database schema version %d is newer than this hub's %d", sc.name, version, len(sc.migrations))
		}
		for i := version; i < len(sc.migrations); i++ {
			if _, err := tx.ExecContext(ctx, sc.migrations[i]); err != nil {
				return false, fmt.Errorf("migrate %s: apply migration %d: %w", sc.name, i+1, err)
			}
		}
		if version == len(sc.migrations) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_versions (name, version) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version`, sc.name, len(sc.migrations)); err != nil {
			return false, fmt.Errorf("migrate %s: write version: %w", sc.name, err)
		}
		changed = true
		log.Info("database schema migrated", "schema", sc.name, "from_version", version, "to_version", len(sc.migrations))
	}
	return changed, nil
}

// Rows per multi-row statement. Each statement costs a parse and a step setup, which per row
// would dominate a group commit; 64 rows × 25 columns stays well under SQLite's 32766 variables.
const chunkRows = 64

// Ingest implements hub.Store. A batch costs a handful of statements, not a few per incident:
// one lookup of the batch's incident IDs, one sequence update, and multi-row inserts.
func (s *Store) Ingest(ctx context.Context, batch []hub.NewTicket) ([]hub.IngestResult, error) {
	results := make([]hub.IngestResult, len(batch))
	if len(batch) == 0 {
		return results, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("ingest %d incidents: begin: %w", len(batch), err)
	}
	defer func() { _ = tx.Rollback() }()

	ids := make([]string, 0, len(batch))
	for i := range batch {
		if err := batch[i].Validate(); err != nil {
			results[i].Err = err
			continue
		}
		ids = append(ids, batch[i].IncidentID)
	}
	known, err := ticketsByIncident(ctx, tx, ids)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}

	// Classify first, so that the sequence is advanced once for the whole batch. An incident
	// twice in one batch is a replay of itself.
	var fresh []int
	for i, nt := range batch {
		if results[i].Err != nil {
			continue
		}
		t, ok := known[nt.IncidentID]
		switch {
		case !ok:
			known[nt.IncidentID] = nil // placeholder: the ticket is made below
			fresh = append(fresh, i)
		case t != nil && t.DeviceID != nt.DeviceID:
			results[i].Err = errOtherDevice(nt.IncidentID)
		default:
			results[i].Existing = true // its ticket is filled in below
		}
	}

	now := s.clock.Now().UTC()
	var last int64
	if len(fresh) > 0 {
		err := tx.QueryRowContext(ctx, `UPDATE sequences SET value = value + ? WHERE name = 'ticket_number' RETURNING value`, len(fresh)).Scan(&last)
		if err != nil {
			return nil, fmt.Errorf("ingest: reserve %d ticket numbers: %w", len(fresh), err)
		}
	}
	made := make([]*hub.Ticket, 0, len(fresh))
	for j, i := range fresh {
		nt := batch[i]
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("ingest: new ticket id: %w", err)
		}
		t := nt.Ticket(id.String(), last-int64(len(fresh))+1+int64(j), now)
		known[nt.IncidentID] = t
		results[i].Ticket = t
		made = append(made, t)
	}
	// Replays get their ticket, which for a replay within the batch exists only now.
	for i, nt := range batch {
		if !results[i].Existing {
			continue
		}
		if t := known[nt.IncidentID]; t.DeviceID == nt.DeviceID {
			results[i].Ticket = t
		} else {
			results[i] = hub.IngestResult{Err: errOtherDevice(nt.IncidentID)}
		}
	}
	if err := s.insertTickets(ctx, tx, made, last-int64(len(made))+1); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("ingest %d incidents: commit: %w", len(batch), err)
	}
	return results, nil
}

// errOtherDevice refuses an incident whose ID is another device's: answering with that
// device's ticket would tell this one that its report was taken when it was not.
func errOtherDevice(incidentID string) error {
	return hub.Errorf(hub.CodeConflict, "incident %s already belongs to a ticket of another device", incidentID)
}

// ticketsByIncident returns the existing tickets of the given incident IDs.
func ticketsByIncident(ctx context.Context, tx *sql.Tx, ids []string) (map[string]*hub.Ticket, error) {
	known := make(map[string]*hub.Ticket, len(ids))
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, selectTickets+` WHERE incident_id IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("look up incidents: %w", err)
		}
		for rows.Next() {
			t, err := scanTicket(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up incidents: %w", err)
			}
			known[t.IncidentID] = t
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("look up incidents: %w", err)
		}
	}
	return known, nil
}

// newTicketColumns are the columns a new ticket is inserted with; the rest take their defaults.
const newTicketColumns = `seq, id, number, incident_id, device_id, source, button, category, priority, status,
	text, reporter, test, occurred_at, created_at, acknowledged_by, unverified, agency, unit, site,
	queued_until, ack_due, resolve_due, updated_at, version`

const newTicketColumnCount = 25

// insertTickets inserts new tickets, numbered from first on, and their creation events: whole
// chunks with one statement each, the rest a row at a time, all prepared once.
func (s *Store) insertTickets(ctx context.Context, tx *sql.Tx, tickets []*hub.Ticket, first int64) error {
	for c, chunk := range chunks(tickets, chunkRows) {
		ins, ev := s.insertTicket, s.insertCreation
		if len(chunk) == chunkRows {
			ins, ev = s.insertTickets64, s.insertCreations64
		}
		ins, ev = tx.StmtContext(ctx, ins), tx.StmtContext(ctx, ev)
		var targs, eargs []any
		flush := func() error {
			if _, err := ins.ExecContext(ctx, targs...); err != nil {
				return fmt.Errorf("insert tickets: %w", err)
			}
			if _, err := ev.ExecContext(ctx, eargs...); err != nil {
				return fmt.Errorf("record creation of tickets: %w", err)
			}
			targs, eargs = targs[:0], eargs[:0]
			return nil
		}
		for j, t := range chunk {
			site, err := json.Marshal(t.Site)
			if err != nil {
				return fmt.Errorf("encode site of ticket %s: %w", t.Number, err)
			}
			targs = append(targs, first+int64(c*chunkRows+j), t.ID, t.Number, t.IncidentID, t.DeviceID, t.Source, t.Button,
				t.Category, string(t.Priority), string(t.Status), t.Text, t.Reporter, t.Test,
				formatTime(t.OccurredAt), formatTime(t.CreatedAt), "", t.Unverified, t.Agency, t.Unit, string(site),
				nullTime(t.QueuedUntil), nullTime(t.AckDue), nullTime(t.ResolveDue), formatTime(t.UpdatedAt), t.Version)
			eargs = append(eargs, t.ID, formatTime(t.CreatedAt), "device:"+t.DeviceID, "", string(hub.StatusNew), "",
				string(hub.EventStatus), t.Agency)
			if len(chunk) < chunkRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if len(chunk) == chunkRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func chunks[T any](s []T, n int) [][]T {
	var out [][]T
	for c := range slices.Chunk(s, n) {
		out = append(out, c)
	}
	return out
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func repeatJoin(s string, n int) string {
	return strings.TrimSuffix(strings.Repeat(s+", ", n), ", ")
}
