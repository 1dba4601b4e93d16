package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/enroll"
)

// The device registry and enrollment tokens (hub/enroll) live in the tickets' database under
// their own schema version.

var deviceMigrations = []string{
	`-- hash is the SHA-256 of the token; the token itself is never stored.
	CREATE TABLE enroll_tokens (
		id         text PRIMARY KEY,
		hash       text NOT NULL UNIQUE,
		prefix     text NOT NULL,
		site       text NOT NULL, -- JSON hub.Site
		name       text NOT NULL,
		sms_allow  text NOT NULL, -- JSON array
		created_by text NOT NULL,
		created_at text NOT NULL,
		expires_at text NOT NULL,
		used_at    text,
		device_id  text NOT NULL DEFAULT '',
		revoked_at text
	);

	CREATE TABLE devices (
		id                  text PRIMARY KEY,
		name                text NOT NULL,
		site                text NOT NULL, -- JSON hub.Site
		source              text NOT NULL,
		state               text NOT NULL,
		board               text NOT NULL,
		serial              text NOT NULL,
		firmware            text NOT NULL,
		sms_allow           text NOT NULL, -- JSON array
		reprovision_allowed boolean NOT NULL,
		cert_serial         text NOT NULL,
		cert_fingerprint    text NOT NULL,
		cert_not_after      text NOT NULL,
		key_fingerprint     text NOT NULL,
		cert_pem            text NOT NULL,
		token_id            text NOT NULL,
		enrolled_at         text NOT NULL,
		updated_at          text NOT NULL,
		last_seen           text,
		UNIQUE (board, serial)
	);

	CREATE TABLE device_events (
		id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		device_id text NOT NULL REFERENCES devices (id),
		at        text NOT NULL,
		kind      text NOT NULL,
		actor     text NOT NULL,
		detail    text NOT NULL,
		firmware  text NOT NULL
	);
	CREATE INDEX device_events_device ON device_events (device_id, id);`,
}

// Devices is the enroll.Store in the hub's database.
type Devices struct{ s *Store }

var _ enroll.Store = (*Devices)(nil)

// Devices returns the store's device registry, which shares its connections.
func (s *Store) Devices() *Devices { return &Devices{s: s} }

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

const enrollTokenColumns = `id, hash, prefix, site, name, sms_allow, created_by, created_at, expires_at, used_at, device_id, revoked_at`

func scanEnrollToken(row acctScanner) (*enroll.Token, error) {
	var (
		t                enroll.Token
		site, allow      string
		created, expires string
		used, revoked    *string
	)
	if err := row.Scan(&t.ID, &t.Hash, &t.Prefix, &site, &t.Name, &allow, &t.CreatedBy, &created, &expires, &used, &t.DeviceID, &revoked); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(site), &t.Site); err != nil {
		return nil, fmt.Errorf("token %s: site: %w", t.ID, err)
	}
	if err := json.Unmarshal([]byte(allow), &t.SMSAllow); err != nil {
		return nil, fmt.Errorf("token %s: sms_allow: %w", t.ID, err)
	}
	var err error
	if t.CreatedAt, err = acctParseTime(created); err != nil {
		return nil, err
	}
	if t.ExpiresAt, err = acctParseTime(expires); err != nil {
		return nil, err
	}
	if t.UsedAt, err = acctParseNullTime(used); err != nil {
		return nil, err
	}
	if t.RevokedAt, err = acctParseNullTime(revoked); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateToken implements enroll.Store.
func (d *Devices) CreateToken(ctx context.Context, t *enroll.Token) error {
	site, err := jsonText(t.Site)
	if err != nil {
		return fmt.Errorf("insert enrollment token: %w", err)
	}
	allow, err := jsonText(nonNil(t.SMSAllow))
	if err != nil {
		return fmt.Errorf("insert enrollment token: %w", err)
	}
	_, err = d.s.pool.Exec(ctx, `INSERT INTO enroll_tokens (`+enrollTokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		t.ID, t.Hash, t.Prefix, site, t.Name, allow, t.CreatedBy, acctTime(t.CreatedAt), acctTime(t.ExpiresAt),
		acctNullTime(t.UsedAt), t.DeviceID, acctNullTime(t.RevokedAt))
	if isUnique(err) {
		return hub.Errorf(hub.CodeConflict, "enrollment token %s already exists", t.ID)
	}
	if err != nil {
		return fmt.Errorf("insert enrollment token %s: %w", t.ID, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (d *Devices) token(ctx context.Context, where string, arg any) (*enroll.Token, error) {
	t, err := scanEnrollToken(d.s.pool.QueryRow(ctx, `SELECT `+enrollTokenColumns+` FROM enroll_tokens WHERE `+where+` = $1`, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "enrollment token not found")
	}
	if err != nil {
		return nil, fmt.Errorf("get enrollment token: %w", err)
	}
	return t, nil
}

// TokenByHash implements enroll.Store.
func (d *Devices) TokenByHash(ctx context.Context, hash string) (*enroll.Token, error) {
	return d.token(ctx, "hash", hash)
}

// Token implements enroll.Store.
func (d *Devices) Token(ctx context.Context, id string) (*enroll.Token, error) {
	t, err := d.token(ctx, "id", id)
	if hub.ErrorCode(err) == hub.CodeNotFound {
		return nil, hub.Errorf(hub.CodeNotFound, "enrollment token %q not found", id)
	}
	return t, err
}

// Tokens implements enroll.Store.
func (d *Devices) Tokens(ctx context.Context) ([]*enroll.Token, error) {
	rows, err := d.s.pool.Query(ctx, `SELECT `+enrollTokenColumns+` FROM enroll_tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list enrollment tokens: %w", err)
	}
	defer rows.Close()
	out := []*enroll.Token{}
	for rows.Next() {
		t, err := scanEnrollToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list enrollment tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list enrollment tokens: %w", err)
	}
	return out, nil
}

// RevokeToken implements enroll.Store.
func (d *Devices) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := d.s.pool.Exec(ctx, `UPDATE enroll_tokens SET revoked_at = $1 WHERE id = $2`, acctTime(at), id)
	if err != nil {
		return fmt.Errorf("revoke enrollment token %s: %w", id, err)
	}
	return oneRow(res, "enrollment token", id)
}

const deviceColumns = `id, name, site, source, state, board, serial, firmware, sms_allow, reprovision_allowed, cert_serial,
	cert_fingerprint, cert_not_after, key_fingerprint, cert_pem, token_id, enrolled_at, updated_at, last_seen`

func scanDevice(row acctScanner) (*enroll.Device, error) {
	var (
		v                               enroll.Device
		site, allow, notAfter, enr, upd string
		seen                            *string
	)
	if err := row.Scan(&v.ID, &v.Name, &site, &v.Source, &v.State, &v.Hardware.Board, &v.Hardware.Serial, &v.Firmware, &allow,
		&v.ReprovisionAllowed, &v.CertSerial, &v.CertFingerprint, &notAfter, &v.KeyFingerprint, &v.CertPEM, &v.TokenID,
		&enr, &upd, &seen); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(site), &v.Site); err != nil {
		return nil, fmt.Errorf("device %s: site: %w", v.ID, err)
	}
	if err := json.Unmarshal([]byte(allow), &v.SMSAllow); err != nil {
		return nil, fmt.Errorf("device %s: sms_allow: %w", v.ID, err)
	}
	var err error
	if v.CertNotAfter, err = acctParseTime(notAfter); err != nil {
		return nil, err
	}
	if v.EnrolledAt, err = acctParseTime(enr); err != nil {
		return nil, err
	}
	if v.UpdatedAt, err = acctParseTime(upd); err != nil {
		return nil, err
	}
	if v.LastSeen, err = acctParseNullTime(seen); err != nil {
		return nil, err
	}
	return &v, nil
}

// execer is a pgx.Tx or the pool.
type execer interface {
	Exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error)
}

func putDevice(ctx context.Context, tx execer, v *enroll.Device) error {
	site, err := jsonText(v.Site)
	if err != nil {
		return err
	}
	allow, err := jsonText(nonNil(v.SMSAllow))
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO devices (`+deviceColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, site = excluded.site, source = excluded.source,
			state = excluded.state, board = excluded.board, serial = excluded.serial, firmware = excluded.firmware,
			sms_allow = excluded.sms_allow, reprovision_allowed = excluded.reprovision_allowed,
			cert_serial = excluded.cert_serial, cert_fingerprint = excluded.cert_fingerprint,
			cert_not_after = excluded.cert_not_after, key_fingerprint = excluded.key_fingerprint,
			cert_pem = excluded.cert_pem, token_id = excluded.token_id, updated_at = excluded.updated_at`,
		v.ID, v.Name, site, v.Source, v.State, v.Hardware.Board, v.Hardware.Serial, v.Firmware, allow, v.ReprovisionAllowed,
		v.CertSerial, v.CertFingerprint, acctTime(v.CertNotAfter), v.KeyFingerprint, v.CertPEM, v.TokenID,
		acctTime(v.EnrolledAt), acctTime(v.UpdatedAt), acctNullTime(v.LastSeen))
	if isUnique(err) {
		return hub.Errorf(hub.CodeConflict, "board %s is already another device", v.Hardware)
	}
	return err
}

func addEvent(ctx context.Context, tx execer, id string, ev enroll.Event) error {
	_, err := tx.Exec(ctx, `INSERT INTO device_events (device_id, at, kind, actor, detail, firmware) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, acctTime(ev.At), ev.Kind, ev.Actor, ev.Detail, ev.Firmware)
	return err
}

// SaveEnrollment implements enroll.Store.
func (d *Devices) SaveEnrollment(ctx context.Context, tokenID string, at time.Time, v *enroll.Device, ev enroll.Event) error {
	tx, err := d.s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("save enrollment of %s: %w", v.ID, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	res, err := tx.Exec(ctx, `UPDATE enroll_tokens SET used_at = COALESCE(used_at, $1), device_id = $2
		WHERE id = $3 AND (device_id = '' OR device_id = $4)`, acctTime(at), v.ID, tokenID, v.ID)
	if err != nil {
		return fmt.Errorf("save enrollment of %s: spend token: %w", v.ID, err)
	}
	if res.RowsAffected() == 0 {
		return hub.Errorf(hub.CodeConflict, "enrollment token %s is used by another device", tokenID)
	}
	if err := putDevice(ctx, tx, v); err != nil {
		return fmt.Errorf("save enrollment of %s: %w", v.ID, err)
	}
	if err := addEvent(ctx, tx, v.ID, ev); err != nil {
		return fmt.Errorf("save enrollment of %s: history: %w", v.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("save enrollment of %s: commit: %w", v.ID, err)
	}
	return nil
}

// UpdateDevice implements enroll.Store.
func (d *Devices) UpdateDevice(ctx context.Context, v *enroll.Device, ev enroll.Event) error {
	tx, err := d.s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("update device %s: %w", v.ID, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var exists int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM devices WHERE id = $1`, v.ID).Scan(&exists); err != nil {
		return fmt.Errorf("update device %s: %w", v.ID, err)
	}
	if exists == 0 {
		return hub.Errorf(hub.CodeNotFound, "device %q not found", v.ID)
	}
	if err := putDevice(ctx, tx, v); err != nil {
		return fmt.Errorf("update device %s: %w", v.ID, err)
	}
	if err := addEvent(ctx, tx, v.ID, ev); err != nil {
		return fmt.Errorf("update device %s: history: %w", v.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("update device %s: commit: %w", v.ID, err)
	}
	return nil
}

// TouchDevice implements enroll.Store.
func (d *Devices) TouchDevice(ctx context.Context, id string, at time.Time) error {
	if _, err := d.s.pool.Exec(ctx, `UPDATE devices SET last_seen = $1 WHERE id = $2`, acctTime(at), id); err != nil {
		return fmt.Errorf("touch device %s: %w", id, err)
	}
	return nil
}

func (d *Devices) device(ctx context.Context, where string, args ...any) (*enroll.Device, error) {
	v, err := scanDevice(d.s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE `+where, args...))
	if err != nil {
		return nil, err
	}
	if v.History, err = d.history(ctx, v.ID); err != nil {
		return nil, err
	}
	return v, nil
}

// Device implements enroll.Store.
func (d *Devices) Device(ctx context.Context, id string) (*enroll.Device, error) {
	v, err := d.device(ctx, `id = $1`, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "device %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get device %s: %w", id, err)
	}
	return v, nil
}

// DeviceByHardware implements enroll.Store.
func (d *Devices) DeviceByHardware(ctx context.Context, h enroll.Hardware) (*enroll.Device, error) {
	v, err := d.device(ctx, `board = $1 AND serial = $2`, h.Board, h.Serial)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "no device with hardware %s", h)
	}
	if err != nil {
		return nil, fmt.Errorf("get device by hardware %s: %w", h, err)
	}
	return v, nil
}

// Devices implements enroll.Store.
func (d *Devices) Devices(ctx context.Context) ([]*enroll.Device, error) {
	rows, err := d.s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	var out []*enroll.Device
	for rows.Next() {
		v, err := scanDevice(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, v)
	}
	rows.Close()
	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	// History after the rows are closed: the pool may be a single connection.
	for _, v := range out {
		if v.History, err = d.history(ctx, v.ID); err != nil {
			return nil, err
		}
	}
	if out == nil {
		out = []*enroll.Device{}
	}
	return out, nil
}

func (d *Devices) history(ctx context.Context, id string) ([]enroll.Event, error) {
	rows, err := d.s.pool.Query(ctx, `SELECT at, kind, actor, detail, firmware FROM device_events WHERE device_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("history of device %s: %w", id, err)
	}
	defer rows.Close()
	out := []enroll.Event{}
	for rows.Next() {
		var (
			ev enroll.Event
			at string
		)
		if err := rows.Scan(&at, &ev.Kind, &ev.Actor, &ev.Detail, &ev.Firmware); err != nil {
			return nil, fmt.Errorf("history of device %s: %w", id, err)
		}
		if ev.At, err = acctParseTime(at); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of device %s: %w", id, err)
	}
	return out, nil
}
