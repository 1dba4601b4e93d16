package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"strconv"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// The accounts' tables live in the tickets' database, so that one backup holds the whole hub,
// under their own schema version (see schema).

var accountMigrations = []string{
	`CREATE TABLE users (
		name          text PRIMARY KEY,
		full_name     text NOT NULL,
		role          text NOT NULL,
		agency        text NOT NULL,
		password_hash bytea NOT NULL,
		disabled      boolean NOT NULL,
		created_at    text NOT NULL,
		updated_at    text NOT NULL
	);

	-- hash is the SHA-256 of the cookie's token; the token is never stored.
	CREATE TABLE sessions (
		hash         text PRIMARY KEY,
		user_name    text NOT NULL REFERENCES users (name),
		created_at   text NOT NULL,
		last_seen_at text NOT NULL,
		expires_at   text NOT NULL,
		ip           text NOT NULL,
		user_agent   text NOT NULL
	);
	CREATE INDEX sessions_user ON sessions (user_name);
	CREATE INDEX sessions_expires ON sessions (expires_at);

	CREATE TABLE api_tokens (
		id           text PRIMARY KEY,
		hash         text NOT NULL UNIQUE,
		user_name    text NOT NULL REFERENCES users (name),
		name         text NOT NULL,
		scope        text NOT NULL,
		prefix       text NOT NULL,
		created_at   text NOT NULL,
		created_by   text NOT NULL,
		expires_at   text,
		last_used_at text,
		revoked_at   text,
		revoked_by   text NOT NULL DEFAULT ''
	);
	CREATE INDEX api_tokens_user ON api_tokens (user_name, created_at);

	CREATE TABLE audit_log (
		id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		at     text NOT NULL,
		actor  text NOT NULL,
		action text NOT NULL,
		target text NOT NULL,
		ip     text NOT NULL,
		detail text NOT NULL
	);
	CREATE INDEX audit_log_actor ON audit_log (actor, id);
	CREATE INDEX audit_log_action ON audit_log (action, id);`,
}

// Accounts is the account.Store in the hub's database.
type Accounts struct{ s *Store }

var _ account.Store = (*Accounts)(nil)

// Accounts returns the store's accounts, which share its connections.
func (s *Store) Accounts() *Accounts { return &Accounts{s: s} }

func acctTime(t time.Time) string { return formatTime(t) }

func acctNullTime(t *time.Time) *string { return nullTime(t) }

func acctParseTime(s string) (time.Time, error) { return parseTime(s) }

func acctParseNullTime(ns *string) (*time.Time, error) {
	var t *time.Time
	err := optTime(ns, &t)
	return t, err
}

type acctScanner interface{ Scan(dest ...any) error }

const userColumns = `name, full_name, role, agency, password_hash, disabled, created_at, updated_at`

func scanUser(row acctScanner) (*account.User, error) {
	var (
		u                account.User
		created, updated string
	)
	if err := row.Scan(&u.Name, &u.FullName, &u.Role, &u.Agency, &u.PasswordHash, &u.Disabled, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if u.CreatedAt, err = acctParseTime(created); err != nil {
		return nil, err
	}
	if u.UpdatedAt, err = acctParseTime(updated); err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser implements account.Store.
func (a *Accounts) CreateUser(ctx context.Context, u *account.User) error {
	_, err := a.s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.Name, u.FullName, u.Role, u.Agency, u.PasswordHash, u.Disabled, acctTime(u.CreatedAt), acctTime(u.UpdatedAt))
	if isUnique(err) {
		return hub.Errorf(hub.CodeConflict, "user %q already exists", u.Name)
	}
	if err != nil {
		return fmt.Errorf("insert user %s: %w", u.Name, err)
	}
	return nil
}

// User implements account.Store.
func (a *Accounts) User(ctx context.Context, name string) (*account.User, error) {
	u, err := scanUser(a.s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "user %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", name, err)
	}
	return u, nil
}

// Users implements account.Store.
func (a *Accounts) Users(ctx context.Context) ([]*account.User, error) {
	rows, err := a.s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	users := []*account.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// UpdateUser implements account.Store.
func (a *Accounts) UpdateUser(ctx context.Context, u *account.User) error {
	res, err := a.s.pool.Exec(ctx, `UPDATE users SET full_name = $1, role = $2, agency = $3, password_hash = $4,
		disabled = $5, updated_at = $6 WHERE name = $7`,
		u.FullName, u.Role, u.Agency, u.PasswordHash, u.Disabled, acctTime(u.UpdatedAt), u.Name)
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.Name, err)
	}
	return oneRow(res, "user", u.Name)
}

func oneRow(res pgconn.CommandTag, what, key string) error {
	if res.RowsAffected() == 0 {
		return hub.Errorf(hub.CodeNotFound, "%s %q not found", what, key)
	}
	return nil
}

// CreateSession implements account.Store.
func (a *Accounts) CreateSession(ctx context.Context, s *account.Session) error {
	_, err := a.s.pool.Exec(ctx, `INSERT INTO sessions (hash, user_name, created_at, last_seen_at, expires_at, ip, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.Hash, s.User, acctTime(s.CreatedAt), acctTime(s.LastSeenAt), acctTime(s.ExpiresAt), s.IP, s.UserAgent)
	if isUnique(err) {
		return hub.Errorf(hub.CodeConflict, "session already exists")
	}
	if err != nil {
		return fmt.Errorf("insert session of %s: %w", s.User, err)
	}
	return nil
}

// Session implements account.Store.
func (a *Accounts) Session(ctx context.Context, hash string) (*account.Session, error) {
	var (
		s                      account.Session
		created, seen, expires string
	)
	err := a.s.pool.QueryRow(ctx, `SELECT hash, user_name, created_at, last_seen_at, expires_at, ip, user_agent
		FROM sessions WHERE hash = $1`, hash).Scan(&s.Hash, &s.User, &created, &seen, &expires, &s.IP, &s.UserAgent)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "session not found")
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	if s.CreatedAt, err = acctParseTime(created); err != nil {
		return nil, err
	}
	if s.LastSeenAt, err = acctParseTime(seen); err != nil {
		return nil, err
	}
	if s.ExpiresAt, err = acctParseTime(expires); err != nil {
		return nil, err
	}
	return &s, nil
}

// TouchSession implements account.Store.
func (a *Accounts) TouchSession(ctx context.Context, hash string, at time.Time) error {
	res, err := a.s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE hash = $2`, acctTime(at), hash)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return oneRow(res, "session", "")
}

// DeleteSession implements account.Store.
func (a *Accounts) DeleteSession(ctx context.Context, hash string) error {
	res, err := a.s.pool.Exec(ctx, `DELETE FROM sessions WHERE hash = $1`, hash)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return oneRow(res, "session", "")
}

// DeleteSessions implements account.Store.
func (a *Accounts) DeleteSessions(ctx context.Context, user string) (int, error) {
	res, err := a.s.pool.Exec(ctx, `DELETE FROM sessions WHERE user_name = $1`, user)
	if err != nil {
		return 0, fmt.Errorf("delete sessions of %s: %w", user, err)
	}
	return int(res.RowsAffected()), nil
}

// DeleteExpiredSessions implements account.Store.
func (a *Accounts) DeleteExpiredSessions(ctx context.Context, t time.Time) (int, error) {
	res, err := a.s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, acctTime(t))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return int(res.RowsAffected()), nil
}

const tokenColumns = `id, hash, user_name, name, scope, prefix, created_at, created_by, expires_at, last_used_at, revoked_at, revoked_by`

func scanToken(row acctScanner) (*account.Token, error) {
	var (
		t                    account.Token
		created              string
		expires, used, revok *string
	)
	if err := row.Scan(&t.ID, &t.Hash, &t.User, &t.Name, &t.Scope, &t.Prefix, &created, &t.CreatedBy,
		&expires, &used, &revok, &t.RevokedBy); err != nil {
		return nil, err
	}
	var err error
	if t.CreatedAt, err = acctParseTime(created); err != nil {
		return nil, err
	}
	if t.ExpiresAt, err = acctParseNullTime(expires); err != nil {
		return nil, err
	}
	if t.LastUsedAt, err = acctParseNullTime(used); err != nil {
		return nil, err
	}
	if t.RevokedAt, err = acctParseNullTime(revok); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateToken implements account.Store.
func (a *Accounts) CreateToken(ctx context.Context, t *account.Token) error {
	_, err := a.s.pool.Exec(ctx, `INSERT INTO api_tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		t.ID, t.Hash, t.User, t.Name, t.Scope, t.Prefix, acctTime(t.CreatedAt), t.CreatedBy,
		acctNullTime(t.ExpiresAt), acctNullTime(t.LastUsedAt), acctNullTime(t.RevokedAt), t.RevokedBy)
	if isUnique(err) {
		return hub.Errorf(hub.CodeConflict, "token %s already exists", t.ID)
	}
	if err != nil {
		return fmt.Errorf("insert token for %s: %w", t.User, err)
	}
	return nil
}

func (a *Accounts) tokenWhere(ctx context.Context, where string, arg any) (*account.Token, error) {
	t, err := scanToken(a.s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, hub.Errorf(hub.CodeNotFound, "token not found")
	}
	if err != nil {
		return nil, fmt.Errorf("get token: %w", err)
	}
	return t, nil
}

// TokenByHash implements account.Store.
func (a *Accounts) TokenByHash(ctx context.Context, hash string) (*account.Token, error) {
	return a.tokenWhere(ctx, `hash = $1`, hash)
}

// TokenByID implements account.Store.
func (a *Accounts) TokenByID(ctx context.Context, id string) (*account.Token, error) {
	t, err := a.tokenWhere(ctx, `id = $1`, id)
	if hub.ErrorCode(err) == hub.CodeNotFound {
		return nil, hub.Errorf(hub.CodeNotFound, "token %q not found", id)
	}
	return t, err
}

// Tokens implements account.Store.
func (a *Accounts) Tokens(ctx context.Context, user string) ([]*account.Token, error) {
	q, args := `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at DESC, id DESC`, []any{}
	if user != "" {
		q, args = `SELECT `+tokenColumns+` FROM api_tokens WHERE user_name = $1 ORDER BY created_at DESC, id DESC`, []any{user}
	}
	rows, err := a.s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []*account.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken implements account.Store. Revoking is once: a revoked token keeps its first
// revocation's time and author.
func (a *Accounts) RevokeToken(ctx context.Context, id, by string, at time.Time) error {
	res, err := a.s.pool.Exec(ctx, `UPDATE api_tokens SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL`,
		acctTime(at), by, id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return oneRow(res, "active token", id)
}

// TouchToken implements account.Store.
func (a *Accounts) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := a.s.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`, acctTime(at), id)
	if err != nil {
		return fmt.Errorf("record use of token %s: %w", id, err)
	}
	return nil
}

// AddAudit implements account.Store.
func (a *Accounts) AddAudit(ctx context.Context, e *account.AuditEntry) error {
	err := a.s.pool.QueryRow(ctx, `INSERT INTO audit_log (at, actor, action, target, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING id`, acctTime(e.At), e.Actor, e.Action, e.Target, e.IP, e.Detail).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("insert audit entry %s: %w", e.Action, err)
	}
	return nil
}

// Audit implements account.Store.
func (a *Accounts) Audit(ctx context.Context, f account.AuditFilter) ([]account.AuditEntry, error) {
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
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Actor != "" {
		where = append(where, "actor = "+arg(f.Actor))
	}
	if f.Action != "" {
		where = append(where, "action = "+arg(f.Action))
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= "+arg(acctTime(f.Since)))
	}
	q := `SELECT id, at, actor, action, target, ip, detail FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(f.Limit)
	rows, err := a.s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	out := []account.AuditEntry{}
	for rows.Next() {
		var (
			e  account.AuditEntry
			at string
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.IP, &e.Detail); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		if e.At, err = acctParseTime(at); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}
