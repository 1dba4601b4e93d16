package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"strconv"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
)

const deliveryColumns = `id, agency, event_id, ticket_id, kind, payload, state, attempts, next_at, created_at,
	last_at, last_status, last_error, delivered_at`

func scanDelivery(row rowScanner) (*hub.Delivery, error) {
	var (
		d               hub.Delivery
		payload, state  string
		next, created   string
		last, delivered *string
	)
	if err := row.Scan(&d.ID, &d.Agency, &d.EventID, &d.TicketID, &d.Kind, &payload, &state, &d.Attempts, &next, &created,
		&last, &d.LastStatus, &d.LastError, &delivered); err != nil {
		return nil, err
	}
	d.Payload, d.State = []byte(payload), hub.DeliveryState(state)
	var err error
	if d.NextAt, err = parseTime(next); err != nil {
		return nil, err
	}
	if d.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if err := optTime(last, &d.LastAt); err != nil {
		return nil, err
	}
	if err := optTime(delivered, &d.DeliveredAt); err != nil {
		return nil, err
	}
	return &d, nil
}

func scanDeliveries(rows pgx.Rows) ([]hub.Delivery, error) {
	out := []hub.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *d)
	}
	return out, rows.Err()
}

// DeliveryCursor implements hub.DeliveryStore.
func (s *Store) DeliveryCursor(ctx context.Context) (int64, error) {
	var c int64
	if err := s.pool.QueryRow(ctx, `SELECT value FROM sequences WHERE name = 'webhook_cursor'`).Scan(&c); err != nil {
		return 0, fmt.Errorf("read webhook cursor: %w", err)
	}
	return c, nil
}

// EnqueueDeliveries implements hub.DeliveryStore. The cursor moves in the same transaction as
// the deliveries are stored, and only forward: the conditional UPDATE locks the cursor's row,
// and a second fan-out racing it (on another replica) re-checks the condition against the
// first one's committed cursor, finds it not ahead, and stores nothing.
func (s *Store) EnqueueDeliveries(ctx context.Context, cursor int64, ds []hub.NewDelivery) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("enqueue deliveries: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	res, err := tx.Exec(ctx, `UPDATE sequences SET value = $1 WHERE name = 'webhook_cursor' AND value < $2`, cursor, cursor)
	if err != nil {
		return fmt.Errorf("enqueue deliveries: move cursor: %w", err)
	}
	if res.RowsAffected() != 1 {
		return hub.Errorf(hub.CodeConflict, "webhook cursor is already at or past event %d", cursor)
	}
	now := formatTime(s.clock.Now())
	n := len(ds)
	agency, ticket, kind, payload, next := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	event := make([]int64, n)
	for i, d := range ds {
		if d.Agency == "" || d.TicketID == "" || len(d.Payload) == 0 {
			return hub.Errorf(hub.CodeInvalid, "delivery of event %d: agency, ticket and payload are required", d.EventID)
		}
		if d.EventID > cursor {
			return hub.Errorf(hub.CodeInvalid, "delivery of event %d is past the cursor %d", d.EventID, cursor)
		}
		at := d.NextAt
		if at.IsZero() {
			at = s.clock.Now()
		}
		agency[i], event[i], ticket[i], kind[i], payload[i], next[i] = d.Agency, d.EventID, d.TicketID, string(d.Kind), string(d.Payload), formatTime(at)
	}
	// A delivery already made for this agency and event (it cannot be, given the cursor, unless
	// the database was restored from a backup) is kept as it is.
	if n > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (agency, event_id, ticket_id, kind, payload, state, next_at, created_at)
			SELECT agency, event_id, ticket_id, kind, payload, $7, next_at, $8
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY
				AS u (agency, event_id, ticket_id, kind, payload, next_at, ord)
			ORDER BY ord
			ON CONFLICT (agency, event_id) DO NOTHING`,
			agency, event, ticket, kind, payload, next, string(hub.DeliveryPending), now); err != nil {
			return fmt.Errorf("enqueue %d deliveries: %w", n, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("enqueue deliveries: commit: %w", err)
	}
	return nil
}

// DueDeliveries implements hub.DeliveryStore.
func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]hub.Delivery, error) {
	if limit <= 0 || limit > hub.MaxLimit {
		limit = hub.DefaultLimit
	}
	at := formatTime(now)
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d
		WHERE state = 'pending' AND next_at <= $1
		AND (SELECT h.next_at FROM webhook_deliveries h WHERE h.agency = d.agency AND h.state = 'pending' ORDER BY h.id LIMIT 1) <= $2
		ORDER BY agency, id LIMIT $3`, at, at, limit)
	if err != nil {
		return nil, fmt.Errorf("due deliveries: %w", err)
	}
	defer rows.Close()
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("due deliveries: %w", err)
	}
	return out, nil
}

// NextDeliveryAt implements hub.DeliveryStore.
func (s *Store) NextDeliveryAt(ctx context.Context) (time.Time, bool, error) {
	var next *string
	// The oldest pending delivery of each agency decides when that agency is next due.
	err := s.pool.QueryRow(ctx, `SELECT MIN(next_at) FROM webhook_deliveries d WHERE state = 'pending'
		AND id = (SELECT MIN(h.id) FROM webhook_deliveries h WHERE h.agency = d.agency AND h.state = 'pending')`).Scan(&next)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next delivery: %w", err)
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	t, err := parseTime(*next)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next delivery: %w", err)
	}
	return t, true, nil
}

func (s *Store) deliveryTx(ctx context.Context, tx pgx.Tx, id int64) (*hub.Delivery, error) {
	d, err := scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "delivery %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read delivery %d: %w", id, err)
	}
	return d, nil
}

// RecordAttempt implements hub.DeliveryStore.
func (s *Store) RecordAttempt(ctx context.Context, id int64, a hub.DeliveryAttempt) (*hub.Delivery, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("record delivery attempt: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	d, err := s.deliveryTx(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if d.State != hub.DeliveryPending {
		return nil, hub.Errorf(hub.CodeConflict, "delivery %d is %s, not pending", id, d.State)
	}
	at := a.At.UTC()
	d.Attempts++
	d.LastAt, d.LastStatus, d.LastError = &at, a.Status, truncate(a.Error, hub.MaxNoteLen)
	switch {
	case a.Delivered:
		d.State, d.DeliveredAt, d.LastError = hub.DeliveryDelivered, &at, ""
	case a.GiveUp:
		d.State = hub.DeliveryFailed
	default:
		if a.NextAt.IsZero() {
			return nil, hub.Errorf(hub.CodeInvalid, "a failed attempt at delivery %d needs a next time or GiveUp", id)
		}
		d.NextAt = a.NextAt.UTC()
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET state = $1, attempts = $2, next_at = $3, last_at = $4,
		last_status = $5, last_error = $6, delivered_at = $7 WHERE id = $8`,
		string(d.State), d.Attempts, formatTime(d.NextAt), nullTime(d.LastAt), d.LastStatus, d.LastError, nullTime(d.DeliveredAt), id); err != nil {
		return nil, fmt.Errorf("record attempt at delivery %d: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("record attempt at delivery %d: commit: %w", id, err)
	}
	return d, nil
}

// Deliveries implements hub.DeliveryStore.
func (s *Store) Deliveries(ctx context.Context, f hub.DeliveryFilter) ([]hub.Delivery, error) {
	if f.Limit < 0 || f.Limit > hub.MaxLimit {
		return nil, hub.Errorf(hub.CodeInvalid, "limit %d is outside 1..%d", f.Limit, hub.MaxLimit)
	}
	if f.Limit == 0 {
		f.Limit = hub.DefaultLimit
	}
	switch f.State {
	case "", hub.DeliveryPending, hub.DeliveryDelivered, hub.DeliveryFailed:
	default:
		return nil, hub.Errorf(hub.CodeInvalid, "unknown delivery state %q", f.State)
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Agency != "" {
		where = append(where, "agency = "+arg(f.Agency))
	}
	if f.State != "" {
		where = append(where, "state = "+arg(string(f.State)))
	}
	if f.Failing {
		where = append(where, "(state = 'failed' OR (state = 'pending' AND attempts > 0))")
	}
	q := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(f.Limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// RetryDelivery implements hub.DeliveryStore.
func (s *Store) RetryDelivery(ctx context.Context, id int64, now time.Time) (*hub.Delivery, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("retry delivery: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	d, err := s.deliveryTx(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if d.State == hub.DeliveryDelivered {
		return nil, hub.Errorf(hub.CodeConflict, "delivery %d was delivered already", id)
	}
	d.State, d.NextAt = hub.DeliveryPending, now.UTC()
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET state = $1, next_at = $2 WHERE id = $3`,
		string(d.State), formatTime(d.NextAt), id); err != nil {
		return nil, fmt.Errorf("retry delivery %d: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("retry delivery %d: commit: %w", id, err)
	}
	return d, nil
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
