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
	return errors.Join(s.r.Close(), s.w.Close())
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
}

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
	if version == len(migrations) {
		return nil
	}
	// PRAGMA takes no bind parameters; the value is an integer this code controls.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
		return fmt.Errorf("migrate: write schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	s.log.Info("ticket database migrated", "from_version", version, "to_version", len(migrations))
	return nil
}

// Times are stored as RFC 3339 text in UTC: exact to the nanosecond, and readable in the sqlite3
// shell during an incident review.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t, nil
}

const ticketColumns = `seq, id, number, incident_id, device_id, source, button, category, priority, status,
	text, reporter, test, occurred_at, created_at, acknowledged_at, acknowledged_by, unverified`

type rowScanner interface{ Scan(dest ...any) error }

func scanTicket(row rowScanner) (*hub.Ticket, error) {
	var (
		t                 hub.Ticket
		seq               int64
		occurred, created string
		acknowledged      sql.NullString
		priority, status  string
		test              bool
	)
	err := row.Scan(&seq, &t.ID, &t.Number, &t.IncidentID, &t.DeviceID, &t.Source, &t.Button, &t.Category,
		&priority, &status, &t.Text, &t.Reporter, &test, &occurred, &created, &acknowledged, &t.AcknowledgedBy, &t.Unverified)
	if err != nil {
		return nil, err
	}
	t.Priority, t.Status, t.Test = hub.Priority(priority), hub.Status(status), test
	if t.OccurredAt, err = parseTime(occurred); err != nil {
		return nil, err
	}
	if t.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if acknowledged.Valid {
		at, err := parseTime(acknowledged.String)
		if err != nil {
			return nil, err
		}
		t.AcknowledgedAt = &at
	}
	return &t, nil
}

// Rows per multi-row statement. Each statement costs a parse and a step setup, which per row
// would dominate a group commit; 64 rows × 15 columns stays well under SQLite's 32766 variables.
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
		t := &hub.Ticket{
			ID:         id.String(),
			Number:     hub.FormatNumber(last - int64(len(fresh)) + 1 + int64(j)),
			IncidentID: nt.IncidentID,
			DeviceID:   nt.DeviceID,
			Source:     nt.Source,
			Button:     nt.Button,
			Category:   nt.Category,
			Priority:   nt.Priority,
			Status:     hub.StatusNew,
			Text:       nt.Text,
			Reporter:   nt.Reporter,
			Test:       nt.Test,
			Unverified: nt.Unverified,
			OccurredAt: nt.OccurredAt.UTC(),
			CreatedAt:  now,
		}
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
	if err := insertTickets(ctx, tx, made, last-int64(len(made))+1); err != nil {
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
		rows, err := tx.QueryContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE incident_id IN (`+placeholders(len(chunk))+`)`, args...)
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

// insertTickets inserts new tickets, numbered from first on, and their creation events.
func insertTickets(ctx context.Context, tx *sql.Tx, tickets []*hub.Ticket, first int64) error {
	for c, chunk := range chunks(tickets, chunkRows) {
		targs := make([]any, 0, len(chunk)*16)
		eargs := make([]any, 0, len(chunk)*6)
		for j, t := range chunk {
			seq := first + int64(c*chunkRows+j)
			targs = append(targs, seq, t.ID, t.Number, t.IncidentID, t.DeviceID, t.Source, t.Button,
				t.Category, string(t.Priority), string(t.Status), t.Text, t.Reporter, t.Test,
				formatTime(t.OccurredAt), formatTime(t.CreatedAt), t.Unverified)
			eargs = append(eargs, t.ID, formatTime(t.CreatedAt), "device:"+t.DeviceID, "", string(hub.StatusNew), "")
		}
		q := `INSERT INTO tickets (` + ticketColumns + `) VALUES ` +
			repeatJoin("("+placeholders(15)+", NULL, '', ?)", len(chunk))
		if _, err := tx.ExecContext(ctx, q, targs...); err != nil {
			return fmt.Errorf("insert %d tickets: %w", len(chunk), err)
		}
		q = `INSERT INTO ticket_events (ticket_id, at, actor, from_status, to_status, note) VALUES ` +
			repeatJoin("("+placeholders(6)+")", len(chunk))
		if _, err := tx.ExecContext(ctx, q, eargs...); err != nil {
			return fmt.Errorf("record creation of %d tickets: %w", len(chunk), err)
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

// Ticket implements hub.Store.
func (s *Store) Ticket(ctx context.Context, id string) (*hub.Ticket, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id = ? OR incident_id = ?`, id, id)
	if seq, ok := hub.ParseNumber(id); ok {
		row = s.r.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE seq = ?`, seq)
	}
	t, err := scanTicket(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "ticket %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get ticket %s: %w", id, err)
	}
	return t, nil
}

// Tickets implements hub.Store.
func (s *Store) Tickets(ctx context.Context, f hub.TicketFilter) ([]*hub.Ticket, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, hub.Errorf(hub.CodeInvalid, "unknown ticket status %q", f.Status)
	}
	if f.Limit < 0 || f.Limit > hub.MaxLimit {
		return nil, hub.Errorf(hub.CodeInvalid, "limit %d is outside 1..%d", f.Limit, hub.MaxLimit)
	}
	if f.Limit == 0 {
		f.Limit = hub.DefaultLimit
	}
	var (
		where []string
		args  []any
	)
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	if f.DeviceID != "" {
		where, args = append(where, "device_id = ?"), append(args, f.DeviceID)
	}
	q := `SELECT ` + ticketColumns + ` FROM tickets`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, f.Limit)

	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	defer rows.Close()
	tickets := []*hub.Ticket{}
	for rows.Next() {
		t, err := scanTicket(rows)
		if err != nil {
			return nil, fmt.Errorf("list tickets: %w", err)
		}
		tickets = append(tickets, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return tickets, nil
}

// Events implements hub.Store.
func (s *Store) Events(ctx context.Context, ticketID string) ([]hub.Event, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("events of ticket %s: %w", ticketID, err)
	}
	defer func() { _ = tx.Rollback() }()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM tickets WHERE id = ?`, ticketID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "ticket %q not found", ticketID)
	}
	if err != nil {
		return nil, fmt.Errorf("events of ticket %s: %w", ticketID, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, ticket_id, at, actor, from_status, to_status, note
		FROM ticket_events WHERE ticket_id = ? ORDER BY id`, ticketID)
	if err != nil {
		return nil, fmt.Errorf("events of ticket %s: %w", ticketID, err)
	}
	defer rows.Close()
	events := []hub.Event{}
	for rows.Next() {
		var (
			e        hub.Event
			at       string
			from, to string
		)
		if err := rows.Scan(&e.ID, &e.TicketID, &at, &e.Actor, &from, &to, &e.Note); err != nil {
			return nil, fmt.Errorf("events of ticket %s: %w", ticketID, err)
		}
		if e.At, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("events of ticket %s: %w", ticketID, err)
		}
		e.From, e.To = hub.Status(from), hub.Status(to)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events of ticket %s: %w", ticketID, err)
	}
	return events, nil
}

// Acknowledge implements hub.Store.
func (s *Store) Acknowledge(ctx context.Context, ticketID, by, note string) (*hub.Ticket, error) {
	return s.Transition(ctx, ticketID, hub.StatusAcknowledged, by, note)
}

// Transition implements hub.Store: the move is checked against hub.CheckTransition inside the
// write transaction so that two operators racing cannot both succeed.
func (s *Store) Transition(ctx context.Context, ticketID string, to hub.Status, by, note string) (*hub.Ticket, error) {
	switch {
	case by == "":
		return nil, hub.Errorf(hub.CodeInvalid, "who is changing the ticket must be given")
	case len(by) > hub.MaxActorLen:
		return nil, hub.Errorf(hub.CodeInvalid, "actor is longer than %d bytes", hub.MaxActorLen)
	case len(note) > hub.MaxNoteLen:
		return nil, hub.Errorf(hub.CodeInvalid, "note is longer than %d bytes", hub.MaxNoteLen)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("ticket %s to %s: begin: %w", ticketID, to, err)
	}
	defer func() { _ = tx.Rollback() }()

	t, err := scanTicket(tx.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id = ?`, ticketID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "ticket %q not found", ticketID)
	}
	if err != nil {
		return nil, fmt.Errorf("ticket %s to %s: %w", ticketID, to, err)
	}
	if err := hub.CheckTransition(t.Status, to); err != nil {
		return nil, fmt.Errorf("ticket %s: %w", t.Number, err)
	}

	now := s.clock.Now().UTC()
	from := t.Status
	t.Status = to
	if to == hub.StatusAcknowledged {
		t.AcknowledgedAt, t.AcknowledgedBy = &now, by
		_, err = tx.ExecContext(ctx, `UPDATE tickets SET status = ?, acknowledged_at = ?, acknowledged_by = ? WHERE id = ?`,
			string(to), formatTime(now), by, ticketID)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE tickets SET status = ? WHERE id = ?`, string(to), ticketID)
	}
	if err != nil {
		return nil, fmt.Errorf("ticket %s to %s: update: %w", t.Number, to, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_events (ticket_id, at, actor, from_status, to_status, note)
		VALUES (?, ?, ?, ?, ?, ?)`, ticketID, formatTime(now), by, string(from), string(to), note); err != nil {
		return nil, fmt.Errorf("ticket %s to %s: record event: %w", t.Number, to, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("ticket %s to %s: commit: %w", t.Number, to, err)
	}
	return t, nil
}
