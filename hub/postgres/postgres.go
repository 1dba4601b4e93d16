// Package postgres is the hub.Store (with the accounts' account.Store and the device registry's
// enroll.Store) on PostgreSQL through pgx, for a hub that runs as several replicas on one
// database. Its semantics are hub/sqlite's, pinned by hub/storetest; what differs is how they
// hold when several processes write at once:
//
//   - Ingest inserts with ON CONFLICT (incident_id) DO NOTHING and reads back what another
//     replica made meanwhile, so a report ingested by two replicas at once is one ticket and
//     neither device is told an error. Ticket numbers come from a sequence, so they never
//     collide across replicas (a rolled-back batch leaves a gap, which is harmless).
//   - Changes lock the ticket's row (SELECT … FOR UPDATE) before checking the transition.
//   - Audit events are a log that the webhook fan-out reads by ID (EventsAfter): every
//     transaction that writes events takes one advisory lock just before, so events commit in
//     the order of their IDs and a reader never sees a later ID before an earlier one.
//   - Migrations run in one transaction under an advisory lock, so that replicas starting at
//     once do not both apply them.
//
// Times are stored as fixed-width RFC 3339 text with nanoseconds, as in hub/sqlite: timestamptz
// keeps microseconds, and the stores must give back exactly the times they were given.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kentongan/kentongan/hub"
)

// Options configure a Store. Zero fields get the defaults documented on each.
type Options struct {
	Clock    hub.Clock    // default hub.SystemClock
	Logger   *slog.Logger // default slog.Default()
	MaxConns int32        // size of the connection pool; default 10
}

func (o *Options) fill() {
	if o.Clock == nil {
		o.Clock = hub.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10
	}
}

// Advisory lock keys, fixed so that every replica agrees on them. The high bits spell "KTG".
const (
	lockMigrate int64 = 0x4b5447_0001
	lockEvents  int64 = 0x4b5447_0002
)

// Store is a hub.Store in a PostgreSQL database.
type Store struct {
	pool  *pgxpool.Pool
	clock hub.Clock
	log   *slog.Logger
}

var _ hub.Store = (*Store)(nil)

// Open connects to the database at dsn (a postgres:// URL or key=value string that pgx
// understands) and brings its schema up to date.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	opts.fill()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, errors.New("open ticket database: the connection string does not parse")
	}
	cfg.MaxConns = opts.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open ticket database on %s: %w", cfg.ConnConfig.Host, err)
	}
	s := &Store{pool: pool, clock: opts.Clock, log: opts.Logger}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open ticket database on %s: %w", cfg.ConnConfig.Host, err)
	}
	return s, nil
}

// Pool is the store's connection pool, for what the hub does beside the store on the same
// database (a leader election on an advisory lock).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping ticket database: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// schema is one part's migrations, versioned by its row of schema_versions. Append only: a
// released migration never changes.
type schema struct {
	name       string
	migrations []string
}

var schemas = []schema{
	{name: "tickets", migrations: ticketMigrations},
	{name: "accounts", migrations: accountMigrations},
	{name: "devices", migrations: deviceMigrations},
}

var ticketMigrations = []string{
	`CREATE TABLE sequences (
		name  text PRIMARY KEY,
		value bigint NOT NULL
	);
	CREATE SEQUENCE ticket_number;

	CREATE TABLE tickets (
		seq                 bigint PRIMARY KEY, -- from ticket_number; never reused
		id                  text NOT NULL UNIQUE,
		number              text NOT NULL,
		incident_id         text NOT NULL UNIQUE, -- what makes ingest idempotent
		device_id           text NOT NULL,
		source              text NOT NULL,
		button              text NOT NULL,
		category            text NOT NULL,
		priority            text NOT NULL,
		status              text NOT NULL,
		text                text NOT NULL,
		reporter            text NOT NULL,
		test                boolean NOT NULL,
		unverified          boolean NOT NULL,
		occurred_at         text NOT NULL,
		created_at          text NOT NULL,
		acknowledged_at     text,
		acknowledged_by     text NOT NULL,
		agency              text NOT NULL,
		unit                text NOT NULL,
		site                text NOT NULL, -- JSON of hub.Site
		queued_until        text,
		ack_due             text,
		resolve_due         text,
		ack_breached_at     text,
		resolve_breached_at text,
		dispatched_at       text,
		dispatched_by       text NOT NULL DEFAULT '',
		resolved_at         text,
		resolved_by         text NOT NULL DEFAULT '',
		closed_at           text,
		closed_by           text NOT NULL DEFAULT '',
		cancelled_at        text,
		cancelled_by        text NOT NULL DEFAULT '',
		duplicate_of        text NOT NULL DEFAULT '',
		false_alarm         boolean NOT NULL DEFAULT false,
		false_alarm_reason  text NOT NULL DEFAULT '',
		false_alarm_by      text NOT NULL DEFAULT '',
		false_alarm_at      text,
		confirm_state       text NOT NULL DEFAULT '',
		confirm_asked_at    text,
		confirm_asked       integer NOT NULL DEFAULT 0,
		updated_at          text NOT NULL,
		version             integer NOT NULL
	);
	CREATE INDEX tickets_status ON tickets (status, seq);
	CREATE INDEX tickets_device ON tickets (device_id, seq);
	CREATE INDEX tickets_agency ON tickets (agency, seq);
	CREATE INDEX tickets_created ON tickets (created_at);
	-- The deadline watcher's scan every few seconds reads only tickets that may be overdue.
	CREATE INDEX tickets_ack_due ON tickets (ack_due) WHERE status = 'new';
	CREATE INDEX tickets_resolve_due ON tickets (resolve_due) WHERE status IN ('new', 'acknowledged', 'dispatched');

	CREATE TABLE ticket_events (
		id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		ticket_id   text NOT NULL REFERENCES tickets (id),
		at          text NOT NULL,
		actor       text NOT NULL,
		from_status text NOT NULL,
		to_status   text NOT NULL,
		note        text NOT NULL,
		kind        text NOT NULL DEFAULT 'status',
		agency      text NOT NULL DEFAULT '',
		detail      text NOT NULL DEFAULT ''
	);
	CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

	-- One row per RT/RW head who answered; a head who changes their mind overwrites.
	CREATE TABLE ticket_confirmations (
		ticket_id text NOT NULL REFERENCES tickets (id),
		number    text NOT NULL,
		answer    text NOT NULL,
		at        text NOT NULL,
		PRIMARY KEY (ticket_id, number)
	);

	CREATE TABLE webhook_deliveries (
		id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		agency       text NOT NULL,
		event_id     bigint NOT NULL,
		ticket_id    text NOT NULL,
		kind         text NOT NULL,
		payload      text NOT NULL,
		state        text NOT NULL,
		attempts     integer NOT NULL DEFAULT 0,
		next_at      text NOT NULL,
		created_at   text NOT NULL,
		last_at      text,
		last_status  integer NOT NULL DEFAULT 0,
		last_error   text NOT NULL DEFAULT '',
		delivered_at text,
		UNIQUE (agency, event_id)
	);
	CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);
	INSERT INTO sequences (name, value) VALUES ('webhook_cursor', 0);`,
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Replicas starting together queue here; the second finds the work done.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockMigrate); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_versions (
		name    text PRIMARY KEY,
		version integer NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: schema versions: %w", err)
	}
	changed := false
	for _, sc := range schemas {
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM schema_versions WHERE name = $1`, sc.name).Scan(&version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("migrate %s: read version: %w", sc.name, err)
		}
		if version > len(sc.migrations) {
			return fmt.Errorf("migrate %s: database schema version %d is newer than this hub's %d", sc.name, version, len(sc.migrations))
		}
		if version == len(sc.migrations) {
			continue
		}
		for i := version; i < len(sc.migrations); i++ {
			if _, err := tx.Exec(ctx, sc.migrations[i]); err != nil {
				return fmt.Errorf("migrate %s: apply migration %d: %w", sc.name, i+1, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_versions (name, version) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version`, sc.name, len(sc.migrations)); err != nil {
			return fmt.Errorf("migrate %s: write version: %w", sc.name, err)
		}
		changed = true
		s.log.Info("database schema migrated", "schema", sc.name, "from_version", version, "to_version", len(sc.migrations))
	}
	if !changed {
		return nil
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// lockEventLog makes this transaction the only one writing audit events until it ends.
func lockEventLog(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockEvents); err != nil {
		return fmt.Errorf("lock event log: %w", err)
	}
	return nil
}

// retryable reports whether err is PostgreSQL giving up on a transaction that would succeed if
// run again: a deadlock or serialization failure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Ingest implements hub.Store. A batch is a handful of round trips whatever its size: one
// lookup of its incident IDs, one draw of ticket numbers, one insert of the tickets, and one of
// their creation events.
func (s *Store) Ingest(ctx context.Context, batch []hub.NewTicket) ([]hub.IngestResult, error) {
	if len(batch) == 0 {
		return []hub.IngestResult{}, nil
	}
	for attempt := 0; ; attempt++ {
		res, err := s.ingest(ctx, batch)
		if err != nil && retryable(err) && attempt < 3 {
			s.log.Warn("ingest retried", "incidents", len(batch), "attempt", attempt+1, "err", err)
			continue
		}
		return res, err
	}
}

func (s *Store) ingest(ctx context.Context, batch []hub.NewTicket) ([]hub.IngestResult, error) {
	batch = storableBatch(batch)
	results := make([]hub.IngestResult, len(batch))
	ids := make([]string, 0, len(batch))
	for i := range batch {
		if err := batch[i].Validate(); err != nil {
			results[i].Err = err
			continue
		}
		ids = append(ids, batch[i].IncidentID)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("ingest %d incidents: begin: %w", len(batch), err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	known, err := ticketsByIncident(ctx, tx, ids)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	// An incident twice in one batch is a replay of itself.
	var fresh []int
	for i, nt := range batch {
		if results[i].Err != nil {
			continue
		}
		if _, ok := known[nt.IncidentID]; !ok {
			known[nt.IncidentID] = nil // placeholder: the ticket is made below
			fresh = append(fresh, i)
		}
	}

	now := s.clock.Now().UTC()
	made := make([]*hub.Ticket, 0, len(fresh))
	if len(fresh) > 0 {
		seqs, err := drawNumbers(ctx, tx, len(fresh))
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		for j, i := range fresh {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("ingest: new ticket id: %w", err)
			}
			made = append(made, batch[i].Ticket(id.String(), seqs[j], now))
		}
		inserted, err := insertTickets(ctx, tx, made)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		// What was not inserted, another replica inserted after our lookup: its ticket is
		// the one, and this batch's copy is dropped.
		var lost []string
		kept := made[:0]
		for _, t := range made {
			if inserted[t.IncidentID] {
				known[t.IncidentID] = t
				kept = append(kept, t)
			} else {
				lost = append(lost, t.IncidentID)
			}
		}
		made = kept
		if len(lost) > 0 {
			theirs, err := ticketsByIncident(ctx, tx, lost)
			if err != nil {
				return nil, fmt.Errorf("ingest: read back concurrent tickets: %w", err)
			}
			for _, id := range lost {
				if theirs[id] == nil {
					return nil, fmt.Errorf("ingest: incident %s conflicted but its ticket is not visible", id)
				}
				known[id] = theirs[id]
			}
		}
		if len(made) > 0 {
			if err := insertCreations(ctx, tx, made); err != nil {
				return nil, fmt.Errorf("ingest: %w", err)
			}
		}
	}
	isMade := make(map[string]bool, len(made))
	for _, t := range made {
		isMade[t.ID] = true
	}
	isFresh := make([]bool, len(batch))
	for _, i := range fresh {
		isFresh[i] = true
	}
	for i, nt := range batch {
		if results[i].Err != nil {
			continue
		}
		t := known[nt.IncidentID]
		switch {
		case t.DeviceID != nt.DeviceID:
			results[i] = hub.IngestResult{Err: errOtherDevice(nt.IncidentID)}
		case isMade[t.ID] && isFresh[i]:
			results[i].Ticket = t
		default:
			results[i] = hub.IngestResult{Ticket: t, Existing: true}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("ingest %d incidents: commit: %w", len(batch), err)
	}
	return results, nil
}

// errOtherDevice refuses an incident whose ID is another device's: answering with that
// device's ticket would tell this one that its report was taken when it was not.
func errOtherDevice(incidentID string) error {
	return hub.Errorf(hub.CodeConflict, "incident %s already belongs to a ticket of another device", incidentID)
}

// storable makes a string PostgreSQL's text can hold: it refuses NUL and invalid UTF-8, which
// a resident's SMS may carry. Replacing them is better than refusing the report: a refused
// report would be re-sent by its kiosk for ever.
func storable(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// storableBatch is batch with every text field storable, as a copy.
func storableBatch(batch []hub.NewTicket) []hub.NewTicket {
	out := slices.Clone(batch)
	for i := range out {
		nt := &out[i]
		nt.IncidentID, nt.DeviceID, nt.Source, nt.Button = storable(nt.IncidentID), storable(nt.DeviceID), storable(nt.Source), storable(nt.Button)
		nt.Category, nt.Text, nt.Reporter = storable(nt.Category), storable(nt.Text), storable(nt.Reporter)
		nt.Agency, nt.Unit = storable(nt.Agency), storable(nt.Unit)
	}
	return out
}

// drawNumbers takes n ticket numbers, increasing, from the sequence that all replicas share.
func drawNumbers(ctx context.Context, tx pgx.Tx, n int) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT nextval('ticket_number') FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, fmt.Errorf("reserve %d ticket numbers: %w", n, err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("reserve %d ticket numbers: %w", n, err)
	}
	if len(seqs) != n {
		return nil, fmt.Errorf("reserve %d ticket numbers: got %d", n, len(seqs))
	}
	slices.Sort(seqs)
	return seqs, nil
}

// ticketsByIncident returns the existing tickets of the given incident IDs.
func ticketsByIncident(ctx context.Context, tx pgx.Tx, ids []string) (map[string]*hub.Ticket, error) {
	known := make(map[string]*hub.Ticket, len(ids))
	if len(ids) == 0 {
		return known, nil
	}
	rows, err := tx.Query(ctx, selectTickets+` WHERE incident_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("look up incidents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTicket(rows)
		if err != nil {
			return nil, fmt.Errorf("look up incidents: %w", err)
		}
		known[t.IncidentID] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up incidents: %w", err)
	}
	return known, nil
}

// insertTickets inserts new tickets in one statement and reports which incidents it inserted;
// the others were inserted by a concurrent transaction. Rows go in in incident ID order, so
// that two replicas inserting overlapping batches wait on each other in one order and cannot
// deadlock.
func insertTickets(ctx context.Context, tx pgx.Tx, tickets []*hub.Ticket) (map[string]bool, error) {
	sorted := slices.Clone(tickets)
	slices.SortFunc(sorted, func(a, b *hub.Ticket) int { return strings.Compare(a.IncidentID, b.IncidentID) })
	n := len(sorted)
	var (
		seq                                            = make([]int64, n)
		id, number, incident, device, source, button   = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		category, priority, status, text, reporter     = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		test, unverified                               = make([]bool, n), make([]bool, n)
		occurred, created, agency, unit, site, updated = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		queued, ackDue, resolveDue                     = make([]*string, n), make([]*string, n), make([]*string, n)
	)
	for i, t := range sorted {
		s, err := siteJSON(t.Site)
		if err != nil {
			return nil, fmt.Errorf("encode site of ticket %s: %w", t.Number, err)
		}
		seq[i], _ = hub.ParseNumber(t.Number)
		id[i], number[i], incident[i], device[i], source[i], button[i] = t.ID, t.Number, t.IncidentID, t.DeviceID, t.Source, t.Button
		category[i], priority[i], status[i], text[i], reporter[i] = t.Category, string(t.Priority), string(t.Status), t.Text, t.Reporter
		test[i], unverified[i] = t.Test, t.Unverified
		occurred[i], created[i], agency[i], unit[i], site[i], updated[i] = formatTime(t.OccurredAt), formatTime(t.CreatedAt), t.Agency, t.Unit, s, formatTime(t.UpdatedAt)
		queued[i], ackDue[i], resolveDue[i] = nullTime(t.QueuedUntil), nullTime(t.AckDue), nullTime(t.ResolveDue)
	}
	rows, err := tx.Query(ctx, `INSERT INTO tickets (seq, id, number, incident_id, device_id, source, button, category,
		priority, status, text, reporter, test, unverified, occurred_at, created_at, acknowledged_by, agency, unit, site,
		queued_until, ack_due, resolve_due, updated_at, version)
		SELECT seq, id, number, incident_id, device_id, source, button, category, priority, status, text, reporter,
			test, unverified, occurred_at, created_at, '', agency, unit, site, queued_until, ack_due, resolve_due, updated_at, 1
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::text[], $12::text[], $13::boolean[], $14::boolean[], $15::text[], $16::text[],
			$17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[])
			WITH ORDINALITY AS u (seq, id, number, incident_id, device_id, source, button, category, priority, status,
			text, reporter, test, unverified, occurred_at, created_at, agency, unit, site, queued_until, ack_due,
			resolve_due, updated_at, ord)
		ORDER BY ord
		ON CONFLICT (incident_id) DO NOTHING
		RETURNING incident_id`,
		seq, id, number, incident, device, source, button, category, priority, status, text, reporter, test, unverified,
		occurred, created, agency, unit, site, queued, ackDue, resolveDue, updated)
	if err != nil {
		return nil, fmt.Errorf("insert tickets: %w", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("insert tickets: %w", err)
	}
	inserted := make(map[string]bool, len(got))
	for _, g := range got {
		inserted[g] = true
	}
	return inserted, nil
}

// insertCreations records the creation event of each new ticket, in the tickets' order. The
// event log's lock and the insert go in one round trip.
func insertCreations(ctx context.Context, tx pgx.Tx, tickets []*hub.Ticket) error {
	n := len(tickets)
	ids, at, actor, agency := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, t := range tickets {
		ids[i], at[i], actor[i], agency[i] = t.ID, formatTime(t.CreatedAt), "device:"+t.DeviceID, t.Agency
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockEvents)
	b.Queue(`INSERT INTO ticket_events (ticket_id, at, actor, from_status, to_status, note, kind, agency)
		SELECT ticket_id, at, actor, '', $5, '', $6, agency
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u (ticket_id, at, actor, agency, ord)
		ORDER BY ord`,
		ids, at, actor, agency, string(hub.StatusNew), string(hub.EventStatus))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record creation of tickets: %w", err)
	}
	return nil
}
