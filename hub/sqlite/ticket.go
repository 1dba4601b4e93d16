package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
)

// timeLayout is RFC 3339 in UTC with all nine fractional digits: exact to the nanosecond,
// readable in the sqlite3 shell during an incident review, and of fixed width, so that SQL
// comparing two times as text compares them as times. (Files from before issue 5 hold
// variable-width times; they parse alike, and only compare wrongly within one second.)
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t, nil
}

// nullTime is an optional time as a column value.
func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return formatTime(*t)
}

// optTime reads an optional time column into *dst.
func optTime(ns sql.NullString, dst **time.Time) error {
	if !ns.Valid {
		*dst = nil
		return nil
	}
	t, err := parseTime(ns.String)
	if err != nil {
		return err
	}
	*dst = &t
	return nil
}

// ticketColumns are a ticket's own columns, then what its confirmations add up to.
const ticketColumns = `seq, id, number, incident_id, device_id, source, button, category, priority, status,
	text, reporter, test, occurred_at, created_at, acknowledged_at, acknowledged_by, unverified,
	agency, unit, site, queued_until, ack_due, resolve_due, ack_breached_at, resolve_breached_at,
	dispatched_at, dispatched_by, resolved_at, resolved_by, closed_at, closed_by, cancelled_at, cancelled_by,
	duplicate_of, false_alarm, false_alarm_reason, false_alarm_by, false_alarm_at,
	confirm_state, confirm_asked_at, confirm_asked, updated_at, version,
	(SELECT COUNT(*) FROM ticket_confirmations c WHERE c.ticket_id = tickets.id AND c.answer = 'yes'),
	(SELECT COUNT(*) FROM ticket_confirmations c WHERE c.ticket_id = tickets.id AND c.answer = 'no'),
	(SELECT number || char(9) || at FROM ticket_confirmations c WHERE c.ticket_id = tickets.id ORDER BY at DESC LIMIT 1)`

const selectTickets = `SELECT ` + ticketColumns + ` FROM tickets`

type rowScanner interface{ Scan(dest ...any) error }

func scanTicket(row rowScanner) (*hub.Ticket, error) {
	var (
		t                                    hub.Ticket
		seq                                  int64
		occurred, created, updated, site     string
		priority, status, confirm            string
		acknowledged, queued, ackDue, resDue sql.NullString
		ackBreached, resBreached             sql.NullString
		dispatched, resolved, closed, cancel sql.NullString
		falseAt, askedAt, latest             sql.NullString
	)
	err := row.Scan(&seq, &t.ID, &t.Number, &t.IncidentID, &t.DeviceID, &t.Source, &t.Button, &t.Category,
		&priority, &status, &t.Text, &t.Reporter, &t.Test, &occurred, &created, &acknowledged, &t.AcknowledgedBy, &t.Unverified,
		&t.Agency, &t.Unit, &site, &queued, &ackDue, &resDue, &ackBreached, &resBreached,
		&dispatched, &t.DispatchedBy, &resolved, &t.ResolvedBy, &closed, &t.ClosedBy, &cancel, &t.CancelledBy,
		&t.DuplicateOf, &t.FalseAlarm, &t.FalseAlarmReason, &t.FalseAlarmBy, &falseAt,
		&confirm, &askedAt, &t.Confirmation.Asked, &updated, &t.Version,
		&t.Confirmation.Yes, &t.Confirmation.No, &latest)
	if err != nil {
		return nil, err
	}
	t.Priority, t.Status, t.Confirmation.State = hub.Priority(priority), hub.Status(status), hub.ConfirmState(confirm)
	if t.OccurredAt, err = parseTime(occurred); err != nil {
		return nil, err
	}
	if t.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if t.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, err
	}
	for _, o := range []struct {
		ns  sql.NullString
		dst **time.Time
	}{
		{acknowledged, &t.AcknowledgedAt}, {queued, &t.QueuedUntil}, {ackDue, &t.AckDue}, {resDue, &t.ResolveDue},
		{ackBreached, &t.AckBreachedAt}, {resBreached, &t.ResolveBreachedAt}, {dispatched, &t.DispatchedAt},
		{resolved, &t.ResolvedAt}, {closed, &t.ClosedAt}, {cancel, &t.CancelledAt}, {falseAt, &t.FalseAlarmAt},
		{askedAt, &t.Confirmation.AskedAt},
	} {
		if err := optTime(o.ns, o.dst); err != nil {
			return nil, err
		}
	}
	if err := json.Unmarshal([]byte(site), &t.Site); err != nil {
		return nil, fmt.Errorf("parse stored site of ticket %s: %w", t.Number, err)
	}
	if latest.Valid {
		number, at, _ := strings.Cut(latest.String, "\t")
		t.Confirmation.By = number
		if err := optTime(sql.NullString{String: at, Valid: true}, &t.Confirmation.At); err != nil {
			return nil, err
		}
	}
	return &t, nil
}

// Ticket implements hub.Store.
func (s *Store) Ticket(ctx context.Context, id string) (*hub.Ticket, error) {
	row := s.r.QueryRowContext(ctx, selectTickets+` WHERE id = ? OR incident_id = ?`, id, id)
	if seq, ok := hub.ParseNumber(id); ok {
		row = s.r.QueryRowContext(ctx, selectTickets+` WHERE seq = ?`, seq)
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

// openList is the SQL list of the open statuses.
var openList = func() string {
	q := make([]string, len(hub.OpenStatuses))
	for i, st := range hub.OpenStatuses {
		q[i] = "'" + string(st) + "'"
	}
	return strings.Join(q, ", ")
}()

// Tickets implements hub.Store.
func (s *Store) Tickets(ctx context.Context, f hub.TicketFilter) ([]*hub.Ticket, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, hub.Errorf(hub.CodeInvalid, "unknown ticket status %q", f.Status)
	}
	if f.Priority != "" && f.Priority != hub.PriorityEmergency && f.Priority != hub.PriorityNormal {
		return nil, hub.Errorf(hub.CodeInvalid, "unknown priority %q", f.Priority)
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
	eq := func(col, v string) {
		if v != "" {
			where, args = append(where, col+" = ?"), append(args, v)
		}
	}
	eq("status", string(f.Status))
	eq("device_id", f.DeviceID)
	eq("agency", f.Agency)
	eq("priority", string(f.Priority))
	eq("category", f.Category)
	eq("source", f.Source)
	if f.Open {
		where = append(where, "status IN ("+openList+")")
	}
	if f.Breached {
		where = append(where, "(ack_breached_at IS NOT NULL OR resolve_breached_at IS NOT NULL)")
	}
	if !f.Overdue.IsZero() {
		// Two queries the partial indexes answer, rather than one OR that scans.
		at := formatTime(f.Overdue)
		where = append(where, "id IN (SELECT id FROM tickets INDEXED BY tickets_ack_due WHERE status = 'new' AND ack_due < ? UNION "+
			"SELECT id FROM tickets INDEXED BY tickets_resolve_due WHERE status IN ("+openList+") AND resolve_due < ?)")
		args = append(args, at, at)
	}
	q := selectTickets
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

const eventColumns = `id, ticket_id, at, actor, kind, from_status, to_status, note, agency, detail`

func scanEvents(rows *sql.Rows) ([]hub.Event, error) {
	events := []hub.Event{}
	for rows.Next() {
		var (
			e              hub.Event
			at             string
			kind, from, to string
		)
		if err := rows.Scan(&e.ID, &e.TicketID, &at, &e.Actor, &kind, &from, &to, &e.Note, &e.Agency, &e.Detail); err != nil {
			return nil, err
		}
		var err error
		if e.At, err = parseTime(at); err != nil {
			return nil, err
		}
		e.Kind, e.From, e.To = hub.EventKind(kind), hub.Status(from), hub.Status(to)
		events = append(events, e)
	}
	return events, rows.Err()
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
	rows, err := tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM ticket_events WHERE ticket_id = ? ORDER BY id`, ticketID)
	if err != nil {
		return nil, fmt.Errorf("events of ticket %s: %w", ticketID, err)
	}
	defer rows.Close()
	events, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("events of ticket %s: %w", ticketID, err)
	}
	return events, nil
}

// EventsAfter implements hub.Store.
func (s *Store) EventsAfter(ctx context.Context, afterID int64, limit int) ([]hub.Event, error) {
	if limit < 0 || limit > hub.MaxLimit {
		return nil, hub.Errorf(hub.CodeInvalid, "limit %d is outside 1..%d", limit, hub.MaxLimit)
	}
	if limit == 0 {
		limit = hub.DefaultLimit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventColumns+` FROM ticket_events WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("events after %d: %w", afterID, err)
	}
	defer rows.Close()
	events, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("events after %d: %w", afterID, err)
	}
	return events, nil
}

// event is an audit entry to be written with a change.
type event struct {
	kind         hub.EventKind
	from, to     hub.Status
	actor, note  string
	detail       string
	agencyOfNext string // "" means the ticket's agency after the change
}

// checkActor checks what an operator supplies with every change.
func checkActor(by, note string) error {
	switch {
	case strings.TrimSpace(by) == "":
		return hub.Errorf(hub.CodeInvalid, "who is changing the ticket must be given")
	case len(by) > hub.MaxActorLen:
		return hub.Errorf(hub.CodeInvalid, "actor is longer than %d bytes", hub.MaxActorLen)
	case len(note) > hub.MaxNoteLen:
		return hub.Errorf(hub.CodeInvalid, "note is longer than %d bytes", hub.MaxNoteLen)
	}
	return nil
}

// loadForUpdate reads a ticket inside the write transaction, so that the check that follows and
// the update are one step: two operators racing cannot both succeed.
func loadForUpdate(ctx context.Context, tx *sql.Tx, ticketID string) (*hub.Ticket, error) {
	t, err := scanTicket(tx.QueryRowContext(ctx, selectTickets+` WHERE id = ?`, ticketID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "ticket %q not found", ticketID)
	}
	if err != nil {
		return nil, fmt.Errorf("read ticket %s: %w", ticketID, err)
	}
	return t, nil
}

// save writes a changed ticket and its events, bumping its version. t's fields are the new state.
func save(ctx context.Context, tx *sql.Tx, t *hub.Ticket, now time.Time, evs ...event) error {
	t.UpdatedAt = now
	t.Version++
	_, err := tx.ExecContext(ctx, `UPDATE tickets SET
		status = ?, acknowledged_at = ?, acknowledged_by = ?, agency = ?, unit = ?,
		ack_breached_at = ?, resolve_breached_at = ?,
		dispatched_at = ?, dispatched_by = ?, resolved_at = ?, resolved_by = ?, closed_at = ?, closed_by = ?,
		cancelled_at = ?, cancelled_by = ?, duplicate_of = ?,
		false_alarm = ?, false_alarm_reason = ?, false_alarm_by = ?, false_alarm_at = ?,
		confirm_state = ?, confirm_asked_at = ?, confirm_asked = ?, updated_at = ?, version = ?
		WHERE id = ?`,
		string(t.Status), nullTime(t.AcknowledgedAt), t.AcknowledgedBy, t.Agency, t.Unit,
		nullTime(t.AckBreachedAt), nullTime(t.ResolveBreachedAt),
		nullTime(t.DispatchedAt), t.DispatchedBy, nullTime(t.ResolvedAt), t.ResolvedBy, nullTime(t.ClosedAt), t.ClosedBy,
		nullTime(t.CancelledAt), t.CancelledBy, t.DuplicateOf,
		t.FalseAlarm, t.FalseAlarmReason, t.FalseAlarmBy, nullTime(t.FalseAlarmAt),
		string(t.Confirmation.State), nullTime(t.Confirmation.AskedAt), t.Confirmation.Asked, formatTime(now), t.Version,
		t.ID)
	if err != nil {
		return fmt.Errorf("update ticket %s: %w", t.Number, err)
	}
	for _, e := range evs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_events (ticket_id, at, actor, kind, from_status, to_status, note, agency, detail)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.ID, formatTime(now), e.actor, string(e.kind), string(e.from), string(e.to),
			e.note, cmp.Or(e.agencyOfNext, t.Agency), e.detail); err != nil {
			return fmt.Errorf("record %s event of ticket %s: %w", e.kind, t.Number, err)
		}
	}
	return nil
}

// change runs f on a ticket in one write transaction and saves it with the events f returns.
// f returning no events means nothing changed: nothing is written.
func (s *Store) change(ctx context.Context, what, ticketID string, f func(t *hub.Ticket, now time.Time) ([]event, error)) (*hub.Ticket, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("%s ticket %s: begin: %w", what, ticketID, err)
	}
	defer func() { _ = tx.Rollback() }()
	t, err := loadForUpdate(ctx, tx, ticketID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	evs, err := f(t, now)
	if err != nil {
		return nil, fmt.Errorf("ticket %s: %w", t.Number, err)
	}
	if len(evs) == 0 {
		return t, nil
	}
	if err := save(ctx, tx, t, now, evs...); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("%s ticket %s: commit: %w", what, t.Number, err)
	}
	return t, nil
}

// setStatus moves t to status to, stamping the step, and returns its event.
func setStatus(t *hub.Ticket, to hub.Status, now time.Time, by, note string) (event, error) {
	if err := hub.CheckTransition(t.Status, to); err != nil {
		return event{}, err
	}
	from := t.Status
	t.Status = to
	at := now
	switch to {
	case hub.StatusAcknowledged:
		t.AcknowledgedAt, t.AcknowledgedBy = &at, by
	case hub.StatusDispatched:
		t.DispatchedAt, t.DispatchedBy = &at, by
	case hub.StatusResolved:
		t.ResolvedAt, t.ResolvedBy = &at, by
	case hub.StatusClosed:
		t.ClosedAt, t.ClosedBy = &at, by
	case hub.StatusCancelled:
		t.CancelledAt, t.CancelledBy = &at, by
	}
	return event{kind: hub.EventStatus, from: from, to: to, actor: by, note: note}, nil
}

// Acknowledge implements hub.Store.
func (s *Store) Acknowledge(ctx context.Context, ticketID, by, note string) (*hub.Ticket, error) {
	return s.Transition(ctx, ticketID, hub.StatusAcknowledged, by, note)
}

// Transition implements hub.Store. A move to dispatched keeps the ticket's agency, which must be
// a real one; a move to duplicate needs Merge, which says of what.
func (s *Store) Transition(ctx context.Context, ticketID string, to hub.Status, by, note string) (*hub.Ticket, error) {
	if err := checkActor(by, note); err != nil {
		return nil, err
	}
	if !to.Valid() {
		return nil, hub.Errorf(hub.CodeInvalid, "unknown ticket status %q", to)
	}
	if to == hub.StatusDispatched {
		return s.Dispatch(ctx, ticketID, "", "", by, note)
	}
	if to == hub.StatusDuplicate {
		return nil, hub.Errorf(hub.CodeInvalid, "a ticket becomes a duplicate by being merged into another")
	}
	return s.change(ctx, "move to "+string(to), ticketID, func(t *hub.Ticket, now time.Time) ([]event, error) {
		e, err := setStatus(t, to, now, by, note)
		return []event{e}, err
	})
}

// Dispatch implements hub.Store. agency "" keeps the ticket's agency (and unit, if unit is "").
func (s *Store) Dispatch(ctx context.Context, ticketID, agency, unit, by, note string) (*hub.Ticket, error) {
	if err := checkActor(by, note); err != nil {
		return nil, err
	}
	if len(agency) > hub.MaxActorLen || len(unit) > hub.MaxActorLen {
		return nil, hub.Errorf(hub.CodeInvalid, "agency or unit is longer than %d bytes", hub.MaxActorLen)
	}
	return s.change(ctx, "dispatch", ticketID, func(t *hub.Ticket, now time.Time) ([]event, error) {
		if agency == "" {
			agency = t.Agency
			if unit == "" {
				unit = t.Unit
			}
		}
		if agency == "" || agency == hub.AgencyTriage {
			return nil, hub.Errorf(hub.CodeInvalid, "dispatch needs an agency; the ticket is still in triage")
		}
		if t.Status == hub.StatusDispatched {
			if agency == t.Agency && unit == t.Unit {
				return nil, hub.Errorf(hub.CodeConflict, "ticket is already dispatched to %s", agency)
			}
			t.Agency, t.Unit = agency, unit
			at := now
			t.DispatchedAt, t.DispatchedBy = &at, by
			return []event{{kind: hub.EventReassigned, from: t.Status, to: t.Status, actor: by, note: note, detail: agency}}, nil
		}
		e, err := setStatus(t, hub.StatusDispatched, now, by, note)
		if err != nil {
			return nil, err
		}
		t.Agency, t.Unit = agency, unit
		e.detail = agency
		return []event{e}, nil
	})
}

// Merge implements hub.Store.
func (s *Store) Merge(ctx context.Context, ticketID, intoID, by, note string) (*hub.Ticket, *hub.Ticket, error) {
	if err := checkActor(by, note); err != nil {
		return nil, nil, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("merge ticket %s: begin: %w", ticketID, err)
	}
	defer func() { _ = tx.Rollback() }()
	dup, err := loadForUpdate(ctx, tx, ticketID)
	if err != nil {
		return nil, nil, err
	}
	// The survivor may be named as people name tickets: by number.
	intoRef := intoID
	if seq, ok := hub.ParseNumber(intoID); ok {
		if err := tx.QueryRowContext(ctx, `SELECT id FROM tickets WHERE seq = ?`, seq).Scan(&intoID); errors.Is(err, sql.ErrNoRows) {
			return nil, nil, hub.Errorf(hub.CodeNotFound, "ticket %q to merge into not found", intoRef)
		} else if err != nil {
			return nil, nil, fmt.Errorf("merge ticket %s: %w", dup.Number, err)
		}
	}
	survivor, err := loadForUpdate(ctx, tx, intoID)
	if hub.ErrorCode(err) == hub.CodeNotFound {
		return nil, nil, hub.Errorf(hub.CodeNotFound, "ticket %q to merge into not found", intoRef)
	}
	if err != nil {
		return nil, nil, err
	}
	switch {
	case survivor.ID == dup.ID:
		return nil, nil, hub.Errorf(hub.CodeInvalid, "ticket %s cannot be merged into itself", dup.Number)
	case survivor.Status == hub.StatusDuplicate:
		return nil, nil, hub.Errorf(hub.CodeConflict, "ticket %s is itself a duplicate; merge into the ticket it was merged into", survivor.Number)
	case survivor.Status == hub.StatusCancelled || survivor.Status == hub.StatusClosed:
		return nil, nil, hub.Errorf(hub.CodeConflict, "ticket %s is %s; merge into a ticket that is still being handled", survivor.Number, survivor.Status)
	}
	now := s.clock.Now().UTC()
	e, err := setStatus(dup, hub.StatusDuplicate, now, by, note)
	if err != nil {
		return nil, nil, fmt.Errorf("ticket %s: %w", dup.Number, err)
	}
	e.detail = survivor.ID
	dup.DuplicateOf = survivor.ID
	if err := save(ctx, tx, dup, now, e); err != nil {
		return nil, nil, fmt.Errorf("merge: %w", err)
	}
	merged := event{kind: hub.EventMerged, from: survivor.Status, to: survivor.Status, actor: by,
		note: cmp.Or(note, dup.Number+" merged into this ticket"), detail: dup.ID}
	if err := save(ctx, tx, survivor, now, merged); err != nil {
		return nil, nil, fmt.Errorf("merge: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("merge ticket %s: commit: %w", dup.Number, err)
	}
	return dup, survivor, nil
}

// MarkFalseAlarm implements hub.Store.
func (s *Store) MarkFalseAlarm(ctx context.Context, ticketID, by, reason string) (*hub.Ticket, error) {
	if err := checkActor(by, reason); err != nil {
		return nil, err
	}
	if strings.TrimSpace(reason) == "" {
		return nil, hub.Errorf(hub.CodeInvalid, "a false alarm needs a reason")
	}
	return s.change(ctx, "mark false alarm", ticketID, func(t *hub.Ticket, now time.Time) ([]event, error) {
		if t.FalseAlarm {
			return nil, hub.Errorf(hub.CodeConflict, "ticket is already marked a false alarm")
		}
		at := now
		t.FalseAlarm, t.FalseAlarmReason, t.FalseAlarmBy, t.FalseAlarmAt = true, reason, by, &at
		evs := []event{{kind: hub.EventFalseAlarm, from: t.Status, to: t.Status, actor: by, note: reason}}
		if t.Status.Open() {
			e, err := setStatus(t, hub.StatusCancelled, now, by, "false alarm: "+reason)
			if err != nil {
				return nil, err
			}
			evs = append(evs, e)
		}
		return evs, nil
	})
}

// RequestConfirmation implements hub.Store.
func (s *Store) RequestConfirmation(ctx context.Context, ticketID string, asked int) (*hub.Ticket, error) {
	if asked < 1 {
		return nil, hub.Errorf(hub.CodeInvalid, "a confirmation request is sent to at least one RT/RW head")
	}
	return s.change(ctx, "request confirmation", ticketID, func(t *hub.Ticket, now time.Time) ([]event, error) {
		if t.Confirmation.AskedAt != nil {
			return nil, nil
		}
		at := now
		t.Confirmation.AskedAt, t.Confirmation.Asked = &at, asked
		if t.Confirmation.State == hub.ConfirmNone {
			t.Confirmation.State = hub.ConfirmPending
		}
		return []event{{kind: hub.EventConfirmRequested, from: t.Status, to: t.Status, actor: "hub",
			detail: fmt.Sprint(asked)}}, nil
	})
}

// RecordConfirmation implements hub.Store.
func (s *Store) RecordConfirmation(ctx context.Context, ticketID, number string, answer hub.ConfirmAnswer) (*hub.Ticket, bool, error) {
	if answer != hub.ConfirmYes && answer != hub.ConfirmNo {
		return nil, false, hub.Errorf(hub.CodeInvalid, "a confirmation answer is %q or %q, not %q", hub.ConfirmYes, hub.ConfirmNo, answer)
	}
	if number == "" || len(number) > hub.MaxActorLen {
		return nil, false, hub.Errorf(hub.CodeInvalid, "the answering number must be 1 to %d bytes", hub.MaxActorLen)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("record confirmation of %s: begin: %w", ticketID, err)
	}
	defer func() { _ = tx.Rollback() }()
	t, err := loadForUpdate(ctx, tx, ticketID)
	if err != nil {
		return nil, false, err
	}
	var prev string
	err = tx.QueryRowContext(ctx, `SELECT answer FROM ticket_confirmations WHERE ticket_id = ? AND number = ?`, t.ID, number).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, false, fmt.Errorf("record confirmation of %s: %w", t.Number, err)
	}
	if prev == string(answer) {
		return t, false, nil
	}
	now := s.clock.Now().UTC()
	if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_confirmations (ticket_id, number, answer, at) VALUES (?, ?, ?, ?)
		ON CONFLICT (ticket_id, number) DO UPDATE SET answer = excluded.answer, at = excluded.at`,
		t.ID, number, string(answer), formatTime(now)); err != nil {
		return nil, false, fmt.Errorf("record confirmation of %s: %w", t.Number, err)
	}
	if prev == string(hub.ConfirmYes) {
		t.Confirmation.Yes--
	} else if prev == string(hub.ConfirmNo) {
		t.Confirmation.No--
	}
	if answer == hub.ConfirmYes {
		t.Confirmation.Yes++
	} else {
		t.Confirmation.No++
	}
	at := now
	t.Confirmation.By, t.Confirmation.At = number, &at
	switch {
	case t.Confirmation.Yes > 0 && t.Confirmation.No > 0:
		t.Confirmation.State = hub.ConfirmDisputed
	case t.Confirmation.Yes > 0:
		t.Confirmation.State = hub.ConfirmYes
	default:
		t.Confirmation.State = hub.ConfirmNo
	}
	e := event{kind: hub.EventConfirmation, from: t.Status, to: t.Status, actor: "sms:" + number, detail: string(answer)}
	if err := save(ctx, tx, t, now, e); err != nil {
		return nil, false, fmt.Errorf("record confirmation: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("record confirmation of %s: commit: %w", t.Number, err)
	}
	return t, true, nil
}

// MarkBreach implements hub.Store. The deadline is checked again against the ticket as it is
// in the transaction: an operator who acknowledged it a moment ago met it.
func (s *Store) MarkBreach(ctx context.Context, ticketID string, kind hub.BreachKind) (*hub.Ticket, bool, error) {
	if !kind.Valid() {
		return nil, false, hub.Errorf(hub.CodeInvalid, "unknown deadline %q", kind)
	}
	marked := false
	t, err := s.change(ctx, "mark breach", ticketID, func(t *hub.Ticket, now time.Time) ([]event, error) {
		for _, k := range t.Overdue(now) {
			if k != kind {
				continue
			}
			at := now
			var due *time.Time
			if kind == hub.BreachAck {
				t.AckBreachedAt, due = &at, t.AckDue
			} else {
				t.ResolveBreachedAt, due = &at, t.ResolveDue
			}
			marked = true
			return []event{{kind: hub.EventBreach, from: t.Status, to: t.Status, actor: "hub", detail: string(kind),
				note: "due " + due.UTC().Format(time.RFC3339)}}, nil
		}
		return nil, nil
	})
	if err != nil {
		return nil, false, err
	}
	return t, marked, nil
}

// TicketCounts implements hub.Store.
func (s *Store) TicketCounts(ctx context.Context) ([]hub.TicketCount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT status, priority, COUNT(*) FROM tickets GROUP BY status, priority ORDER BY status, priority`)
	if err != nil {
		return nil, fmt.Errorf("count tickets: %w", err)
	}
	defer rows.Close()
	out := []hub.TicketCount{}
	for rows.Next() {
		var (
			c                hub.TicketCount
			status, priority string
		)
		if err := rows.Scan(&status, &priority, &c.Count); err != nil {
			return nil, fmt.Errorf("count tickets: %w", err)
		}
		c.Status, c.Priority = hub.Status(status), hub.Priority(priority)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count tickets: %w", err)
	}
	return out, nil
}

// DeviceCounts implements hub.Store.
func (s *Store) DeviceCounts(ctx context.Context, since time.Time) (map[string]hub.DeviceTicketCount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT device_id, COUNT(*), SUM(false_alarm) FROM tickets INDEXED BY tickets_created
		WHERE created_at >= ? AND test = 0 GROUP BY device_id`, formatTime(since))
	if err != nil {
		return nil, fmt.Errorf("count tickets by device: %w", err)
	}
	defer rows.Close()
	out := map[string]hub.DeviceTicketCount{}
	for rows.Next() {
		var (
			id string
			c  hub.DeviceTicketCount
		)
		if err := rows.Scan(&id, &c.Tickets, &c.FalseAlarms); err != nil {
			return nil, fmt.Errorf("count tickets by device: %w", err)
		}
		out[id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count tickets by device: %w", err)
	}
	return out, nil
}
