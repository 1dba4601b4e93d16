package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/kentongan/kentongan/hub"
)

// Options configure a Service. Zero fields get the defaults documented on each.
type Options struct {
	Store  Store        // required
	Clock  hub.Clock    // default hub.SystemClock
	Logger *slog.Logger // default slog.Default()

	// SessionTTL is a session's absolute lifetime; default 12 hours, a long shift.
	SessionTTL time.Duration
	// IdleTimeout ends a session not used for this long; default 1 hour. An open dashboard keeps
	// its session in use through its event stream (see Browser.KeepAlive).
	IdleTimeout time.Duration
	Limits      Limits
	// BcryptCost for new password hashes; default bcrypt.DefaultCost. Tests lower it.
	BcryptCost int
	// SecureCookies marks the session cookie Secure even on plain-HTTP requests: set it when a
	// TLS proxy is in front of the hub. Requests that arrive over TLS always get Secure.
	SecureCookies bool
	// AgencyExists, when set, is asked whether an agency user's agency is known.
	AgencyExists func(id string) bool
}

func (o *Options) fill() {
	if o.Clock == nil {
		o.Clock = hub.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Hour
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = bcrypt.DefaultCost
	}
	o.Limits.fill()
}

// touchEvery is how stale a session's last-seen time or a token's last use may get before a
// request writes it again: idle expiry and "last used" need minutes, not every request.
const touchEvery = time.Minute

// Service is the account logic: logins, sessions, tokens, users and the audit log.
type Service struct {
	opts  Options
	store Store
	clock hub.Clock
	log   *slog.Logger
	limit *limiter

	dummyOnce sync.Once
	dummyHash []byte
}

// NewService returns a Service over opts.Store.
func NewService(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("account: no store")
	}
	opts.fill()
	if opts.BcryptCost < bcrypt.MinCost || opts.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("account: bcrypt cost %d is outside %d..%d", opts.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	return &Service{
		opts:  opts,
		store: opts.Store,
		clock: opts.Clock,
		log:   opts.Logger,
		limit: newLimiter(opts.Limits, opts.Clock),
	}, nil
}

// ErrBadCredentials is the cause of every failed login, whatever was wrong: telling "no such
// user" from "wrong password" would tell an attacker which names exist.
var ErrBadCredentials = errors.New("wrong user name or password")

func unauthorized(msg string) error {
	return &hub.Error{Code: hub.CodeUnauthorized, Message: msg}
}

// Login checks a name and password from ip and opens a session. It returns the session's
// token for the cookie. Wrong passwords are counted per user and per address; over the limit
// Login refuses with a too_many *hub.Error wrapping a *LimitError, without checking the
// password.
func (s *Service) Login(ctx context.Context, name, password, ip, userAgent string) (*User, string, *Session, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" || password == "" {
		return nil, "", nil, hub.Errorf(hub.CodeInvalid, "user name and password are required")
	}
	if len(name) > MaxNameLen || len(password) > 1024 {
		return nil, "", nil, hub.Errorf(hub.CodeInvalid, "user name or password is too long")
	}
	if err := s.limit.check(name, ip); err != nil {
		le, _ := errors.AsType[*LimitError](err)
		s.log.Warn("login refused: too many failures", "user", name, "ip", ip, "limited", le.Key, "retry_after", le.RetryAfter)
		s.audit(ctx, AuditEntry{Actor: name, Action: ActionLoginLimited, Target: name, IP: ip, Detail: le.Key})
		return nil, "", nil, &hub.Error{Code: hub.CodeTooMany,
			Message: fmt.Sprintf("too many failed logins; try again in %s", roundUp(le.RetryAfter)), Err: le}
	}

	u, err := s.store.User(ctx, name)
	if err != nil && hub.ErrorCode(err) != hub.CodeNotFound {
		return nil, "", nil, fmt.Errorf("login %s: %w", name, err)
	}
	hash := s.dummy()
	if u != nil {
		hash = u.PasswordHash
	}
	// An unknown name costs the same bcrypt comparison, so that timing does not tell it apart.
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil || u == nil {
		s.limit.fail(name, ip)
		s.log.Warn("login failed", "user", name, "ip", ip, "known_user", u != nil)
		s.audit(ctx, AuditEntry{Actor: name, Action: ActionLoginFailed, Target: name, IP: ip})
		return nil, "", nil, &hub.Error{Code: hub.CodeUnauthorized, Message: ErrBadCredentials.Error(), Err: ErrBadCredentials}
	}
	if u.Disabled {
		s.log.Warn("login of a disabled user", "user", name, "ip", ip)
		s.audit(ctx, AuditEntry{Actor: name, Action: ActionLoginDisabled, Target: name, IP: ip})
		return nil, "", nil, hub.Errorf(hub.CodeForbidden, "user %s is disabled; ask an administrator", name)
	}
	s.limit.reset(name)

	token, err := newSecret()
	if err != nil {
		return nil, "", nil, fmt.Errorf("login %s: session token: %w", name, err)
	}
	now := s.clock.Now().UTC()
	sess := &Session{
		Hash:       hashSecret(token),
		User:       u.Name,
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(s.opts.SessionTTL),
		IP:         ip,
		UserAgent:  truncate(userAgent, 256),
	}
	if n, err := s.store.DeleteExpiredSessions(ctx, now); err != nil {
		s.log.Warn("expired sessions not removed", "err", err)
	} else if n > 0 {
		s.log.Debug("expired sessions removed", "count", n)
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return nil, "", nil, fmt.Errorf("login %s: %w", name, err)
	}
	s.log.Info("login", "user", u.Name, "role", u.Role, "ip", ip)
	s.audit(ctx, AuditEntry{Actor: u.Name, Action: ActionLogin, Target: u.Name, IP: ip})
	return u, token, sess, nil
}

// dummy is a hash of nothing anyone knows, for comparing against when the name is unknown.
func (s *Service) dummy() []byte {
	s.dummyOnce.Do(func() {
		secret, err := newSecret()
		if err == nil {
			s.dummyHash, err = bcrypt.GenerateFromPassword([]byte(secret[:MaxPasswordLen/2]), s.opts.BcryptCost)
		}
		if err != nil {
			// Comparing against an invalid hash fails fast: only timing suffers.
			s.dummyHash = []byte("$2a$10$invalid")
		}
	})
	return s.dummyHash
}

func roundUp(d time.Duration) time.Duration {
	if r := d.Truncate(time.Second); r < d {
		return r + time.Second
	}
	return d
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// Session errors. They are the causes inside unauthorized *hub.Errors.
var (
	ErrNoSession      = errors.New("no such session")
	ErrSessionExpired = errors.New("session expired")
	ErrBadToken       = errors.New("API token unknown, revoked or expired")
)

// SessionUser returns the user of the session whose cookie token is given, and keeps the
// session alive. An unknown, expired or idle session, or one whose user is disabled, is an
// unauthorized *hub.Error.
func (s *Service) SessionUser(ctx context.Context, token string) (*User, *Session, error) {
	if !wellFormed(token) {
		return nil, nil, &hub.Error{Code: hub.CodeUnauthorized, Message: "not logged in", Err: ErrNoSession}
	}
	hash := hashSecret(token)
	sess, err := s.store.Session(ctx, hash)
	if hub.ErrorCode(err) == hub.CodeNotFound {
		return nil, nil, &hub.Error{Code: hub.CodeUnauthorized, Message: "session expired or ended; log in again", Err: ErrNoSession}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up session: %w", err)
	}
	now := s.clock.Now()
	if !now.Before(sess.ExpiresAt) || !now.Before(sess.LastSeenAt.Add(s.opts.IdleTimeout)) {
		if err := s.store.DeleteSession(ctx, hash); err != nil && hub.ErrorCode(err) != hub.CodeNotFound {
			s.log.Warn("expired session not removed", "user", sess.User, "err", err)
		}
		s.log.Info("session expired", "user", sess.User, "idle", now.Before(sess.ExpiresAt))
		return nil, nil, &hub.Error{Code: hub.CodeUnauthorized, Message: "session expired; log in again", Err: ErrSessionExpired}
	}
	u, err := s.store.User(ctx, sess.User)
	if err != nil {
		if hub.ErrorCode(err) == hub.CodeNotFound {
			return nil, nil, &hub.Error{Code: hub.CodeUnauthorized, Message: "session expired or ended; log in again", Err: ErrNoSession}
		}
		return nil, nil, fmt.Errorf("session of %s: %w", sess.User, err)
	}
	if u.Disabled {
		return nil, nil, hub.Errorf(hub.CodeUnauthorized, "user %s is disabled", u.Name)
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		if err := s.store.TouchSession(ctx, hash, now.UTC()); err != nil {
			s.log.Warn("session not touched", "user", u.Name, "err", err)
		} else {
			sess.LastSeenAt = now.UTC()
		}
	}
	return u, sess, nil
}

// Logout ends the session whose cookie token is given. Ending a session that does not exist is
// not an error: the browser's cookie is stale either way.
func (s *Service) Logout(ctx context.Context, token, ip string) error {
	if !wellFormed(token) {
		return nil
	}
	hash := hashSecret(token)
	sess, err := s.store.Session(ctx, hash)
	if hub.ErrorCode(err) == hub.CodeNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if err := s.store.DeleteSession(ctx, hash); err != nil && hub.ErrorCode(err) != hub.CodeNotFound {
		return fmt.Errorf("logout %s: %w", sess.User, err)
	}
	s.log.Info("logout", "user", sess.User, "ip", ip)
	s.audit(ctx, AuditEntry{Actor: sess.User, Action: ActionLogout, Target: sess.User, IP: ip})
	return nil
}

// TokenUser returns the user an API token acts for, and records the use.
func (s *Service) TokenUser(ctx context.Context, token string) (*User, *Token, error) {
	bad := &hub.Error{Code: hub.CodeUnauthorized, Message: "API token unknown, revoked or expired", Err: ErrBadToken}
	if _, ok := splitAPIToken(token); !ok {
		return nil, nil, bad
	}
	t, err := s.store.TokenByHash(ctx, hashSecret(token))
	if hub.ErrorCode(err) == hub.CodeNotFound {
		return nil, nil, bad
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up API token: %w", err)
	}
	now := s.clock.Now()
	if !t.Active(now) {
		return nil, nil, bad
	}
	u, err := s.store.User(ctx, t.User)
	if err != nil {
		if hub.ErrorCode(err) == hub.CodeNotFound {
			return nil, nil, bad
		}
		return nil, nil, fmt.Errorf("API token %s: %w", t.ID, err)
	}
	if u.Disabled {
		return nil, nil, hub.Errorf(hub.CodeUnauthorized, "user %s is disabled", u.Name)
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= touchEvery {
		if err := s.store.TouchToken(ctx, t.ID, now.UTC()); err != nil {
			s.log.Warn("API token use not recorded", "token", t.ID, "err", err)
		}
	}
	return u, t, nil
}

// NewUser is what creating a user takes.
type NewUser struct {
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	Role     string `json:"role"`
	Agency   string `json:"agency"`
	Password string `json:"password"`
}

// CreateUser adds a user. Only admins (and the command line) may.
func (s *Service) CreateUser(ctx context.Context, by Actor, nu NewUser) (*User, error) {
	if !by.can(PermManageUsers) {
		return nil, s.refuse(ctx, by, "create users", nu.Name)
	}
	now := s.clock.Now().UTC()
	u := &User{Name: nu.Name, FullName: strings.TrimSpace(nu.FullName), Role: nu.Role, Agency: nu.Agency, CreatedAt: now, UpdatedAt: now}
	if err := s.checkUser(u); err != nil {
		return nil, err
	}
	if err := ValidatePassword(nu.Name, nu.Password); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(nu.Password), s.opts.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("create user %s: hash password: %w", nu.Name, err)
	}
	u.PasswordHash = hash
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("create user %s: %w", nu.Name, err)
	}
	detail := "role " + u.Role
	if u.Agency != "" {
		detail += ", agency " + u.Agency
	}
	s.log.Info("user created", "user", u.Name, "role", u.Role, "agency", u.Agency, "by", by.Name(), "ip", by.From)
	s.audit(ctx, AuditEntry{Actor: by.Name(), Action: ActionUserCreate, Target: u.Name, IP: by.From, Detail: detail})
	return u, nil
}

func (s *Service) checkUser(u *User) error {
	if err := validateUser(u); err != nil {
		return err
	}
	if u.Agency != "" && s.opts.AgencyExists != nil && !s.opts.AgencyExists(u.Agency) {
		return hub.Errorf(hub.CodeInvalid, "agency %q is not in the routing configuration", u.Agency)
	}
	return nil
}

// UserChange is an update to a user; nil fields stay as they are.
type UserChange struct {
	FullName *string `json:"full_name"`
	Role     *string `json:"role"`
	Agency   *string `json:"agency"`
	Disabled *bool   `json:"disabled"`
}

// UpdateUser changes a user's role, agency, name or disabled flag. Only admins may; an admin
// may not disable or demote themselves, so that the hub is never left without one by mistake.
// Disabling a user, or changing their role or agency, ends their sessions.
func (s *Service) UpdateUser(ctx context.Context, by Actor, name string, ch UserChange) (*User, error) {
	if !by.can(PermManageUsers) {
		return nil, s.refuse(ctx, by, "change users", name)
	}
	u, err := s.store.User(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("update user %s: %w", name, err)
	}
	before := *u
	if ch.FullName != nil {
		u.FullName = strings.TrimSpace(*ch.FullName)
	}
	if ch.Role != nil {
		u.Role = *ch.Role
		if u.Role != RoleAgency && ch.Agency == nil {
			u.Agency = ""
		}
	}
	if ch.Agency != nil {
		u.Agency = *ch.Agency
	}
	if ch.Disabled != nil {
		u.Disabled = *ch.Disabled
	}
	if by.User != nil && by.User.Name == u.Name && (u.Disabled || u.Role != RoleAdmin) {
		return nil, hub.Errorf(hub.CodeConflict, "an administrator cannot disable or demote themselves; ask another administrator")
	}
	if err := s.checkUser(u); err != nil {
		return nil, err
	}
	u.UpdatedAt = s.clock.Now().UTC()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("update user %s: %w", name, err)
	}
	var changes []string
	if before.FullName != u.FullName {
		changes = append(changes, fmt.Sprintf("full name %q", u.FullName))
	}
	if before.Role != u.Role {
		changes = append(changes, fmt.Sprintf("role %s -> %s", before.Role, u.Role))
	}
	if before.Agency != u.Agency {
		changes = append(changes, fmt.Sprintf("agency %q -> %q", before.Agency, u.Agency))
	}
	if before.Disabled != u.Disabled {
		changes = append(changes, fmt.Sprintf("disabled %t", u.Disabled))
	}
	if u.Disabled || before.Role != u.Role || before.Agency != u.Agency {
		if n, err := s.store.DeleteSessions(ctx, u.Name); err != nil {
			return nil, fmt.Errorf("update user %s: end sessions: %w", name, err)
		} else if n > 0 {
			changes = append(changes, fmt.Sprintf("%d sessions ended", n))
		}
	}
	s.log.Info("user changed", "user", u.Name, "changes", strings.Join(changes, "; "), "by", by.Name(), "ip", by.From)
	s.audit(ctx, AuditEntry{Actor: by.Name(), Action: ActionUserUpdate, Target: u.Name, IP: by.From, Detail: strings.Join(changes, "; ")})
	return u, nil
}

// SetPassword sets a user's password: their own, checking the current one (admins too: a
// session left open must not be enough to lock its owner out), or anyone else's for an admin or
// the command line. It ends the user's sessions, so that a stolen session dies with the old
// password.
func (s *Service) SetPassword(ctx context.Context, by Actor, name, current, password string) error {
	self := by.User != nil && by.User.Name == name
	if !self && !by.can(PermManageUsers) {
		return s.refuse(ctx, by, "change other users' passwords", name)
	}
	u, err := s.store.User(ctx, name)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	if self {
		if err := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(current)); err != nil {
			s.limit.fail(name, by.From)
			s.audit(ctx, AuditEntry{Actor: by.Name(), Action: ActionLoginFailed, Target: name, IP: by.From, Detail: "current password wrong at password change"})
			return hub.Errorf(hub.CodeForbidden, "the current password is wrong")
		}
	}
	if err := ValidatePassword(name, password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.opts.BcryptCost)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	u.PasswordHash = hash
	u.UpdatedAt = s.clock.Now().UTC()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	n, err := s.store.DeleteSessions(ctx, name)
	if err != nil {
		return fmt.Errorf("set password of %s: end sessions: %w", name, err)
	}
	s.log.Info("password changed", "user", name, "sessions_ended", n, "by", by.Name(), "ip", by.From)
	s.audit(ctx, AuditEntry{Actor: by.Name(), Action: ActionUserPassword, Target: name, IP: by.From, Detail: fmt.Sprintf("%d sessions ended", n)})
	return nil
}

// User returns one user.
func (s *Service) User(ctx context.Context, name string) (*User, error) {
	return s.store.User(ctx, name)
}

// Users lists every user, by name.
func (s *Service) Users(ctx context.Context) ([]*User, error) { return s.store.Users(ctx) }

// Limits on tokens.
const (
	MaxTokenNameLen = 128
	MaxTokenTTL     = 5 * 365 * 24 * time.Hour
)

// CreateToken makes an API token for user (by's own when user is ""), with the given scope
// (ScopeAPI when "") and lifetime (none when 0). Users make their own; admins and the command
// line make anyone's. The token itself is returned only here, once.
func (s *Service) CreateToken(ctx context.Context, by Actor, user, name, scope string, ttl time.Duration) (*Token, string, error) {
	if user == "" && by.User != nil {
		user = by.User.Name
	}
	if by.User != nil && by.User.Name != user && !by.can(PermManageUsers) {
		return nil, "", s.refuse(ctx, by, "create tokens for other users", user)
	}
	if scope == "" {
		scope = ScopeAPI
	}
	switch {
	case user == "":
		return nil, "", hub.Errorf(hub.CodeInvalid, "whose token it is must be given")
	case !ValidScope(scope):
		return nil, "", hub.Errorf(hub.CodeInvalid, "token scope %q: must be api or open311", scope)
	case strings.TrimSpace(name) == "":
		return nil, "", hub.Errorf(hub.CodeInvalid, "a token needs a name saying what it is for")
	case len(name) > MaxTokenNameLen:
		return nil, "", hub.Errorf(hub.CodeInvalid, "token name is longer than %d bytes", MaxTokenNameLen)
	case ttl < 0 || ttl > MaxTokenTTL:
		return nil, "", hub.Errorf(hub.CodeInvalid, "token lifetime must be from 0 (no expiry) to %d days", MaxTokenTTL/(24*time.Hour))
	}
	u, err := s.store.User(ctx, user)
	if err != nil {
		return nil, "", fmt.Errorf("create token for %s: %w", user, err)
	}
	if u.Disabled {
		return nil, "", hub.Errorf(hub.CodeConflict, "user %s is disabled", user)
	}
	secret, err := newSecret()
	if err != nil {
		return nil, "", fmt.Errorf("create token for %s: %w", user, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, "", fmt.Errorf("create token for %s: id: %w", user, err)
	}
	raw := TokenPrefix + secret
	now := s.clock.Now().UTC()
	t := &Token{
		ID:        id.String(),
		User:      u.Name,
		Name:      strings.TrimSpace(name),
		Scope:     scope,
		Prefix:    tokenDisplayPrefix(raw),
		Hash:      hashSecret(raw),
		CreatedAt: now,
		CreatedBy: by.Name(),
	}
	if ttl > 0 {
		exp := now.Add(ttl)
		t.ExpiresAt = &exp
	}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return nil, "", fmt.Errorf("create token for %s: %w", user, err)
	}
	s.log.Info("API token created", "token", t.ID, "user", t.User, "scope", t.Scope, "name", t.Name, "by", by.Name(), "ip", by.From)
	s.audit(ctx, AuditEntry{Actor: by.Name(), Action: ActionTokenCreate, Target: t.User, IP: by.From,
		Detail: fmt.Sprintf("token %s (%s, scope %s)", t.ID, t.Name, t.Scope)})
	return t, raw, nil
}

// Tokens lists user's tokens ("" for everybody's): one's own, or anyone's for an admin.
func (s *Service) Tokens(ctx context.Context, by Actor, user string) ([]*Token, error) {
	if by.User != nil && by.User.Name != user && !by.can(PermManageUsers) {
		return nil, s.refuse(ctx, by, "list other users' tokens", user)
	}
	return s.store.Tokens(ctx, user)
}

// RevokeToken revokes a token for good: one's own, or anyone's for an admin.
func (s *Service) RevokeToken(ctx context.Context, by Actor, id string) (*Token, error) {
	t, err := s.store.TokenByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("revoke token %s: %w", id, err)
	}
	if by.User != nil && by.User.Name != t.User && !by.can(PermManageUsers) {
		// As if it did not exist: token IDs of others are none of this user's business.
		_ = s.refuse(ctx, by, "revoke other users' tokens", id)
		return nil, hub.Errorf(hub.CodeNotFound, "token %q not found", id)
	}
	if t.RevokedAt != nil {
		return nil, hub.Errorf(hub.CodeConflict, "token %s is already revoked", id)
	}
	now := s.clock.Now().UTC()
	if err := s.store.RevokeToken(ctx, id, by.Name(), now); err != nil {
		return nil, fmt.Errorf("revoke token %s: %w", id, err)
	}
	t.RevokedAt, t.RevokedBy = &now, by.Name()
	s.log.Info("API token revoked", "token", id, "user", t.User, "by", by.Name(), "ip", by.From)
	s.audit(ctx, AuditEntry{Actor: by.Name(), Action: ActionTokenRevoke, Target: t.User, IP: by.From, Detail: "token " + id})
	return t, nil
}

// Record adds an entry to the audit log, e.g. a configuration reload; At is set here.
func (s *Service) Record(ctx context.Context, e AuditEntry) { s.audit(ctx, e) }

// Forbidden records that an authenticated user was refused what is described, and returns the
// forbidden *hub.Error to answer with. The agency scoping rule calls it for another agency's
// ticket.
func (s *Service) Forbidden(ctx context.Context, by Actor, what, target string) error {
	return s.refuse(ctx, by, what, target)
}

func (s *Service) refuse(ctx context.Context, by Actor, what, target string) error {
	s.log.Warn("request forbidden", "user", by.Name(), "role", roleOf(by.User), "wanted", what, "target", target, "ip", by.From)
	s.audit(ctx, AuditEntry{Actor: by.Name(), Action: ActionForbidden, Target: target, IP: by.From, Detail: what})
	return by.forbidden(what)
}

func roleOf(u *User) string {
	if u == nil {
		return ""
	}
	return u.Role
}

// AuditLog returns audit entries, newest first. Supervisors and admins may read it.
func (s *Service) AuditLog(ctx context.Context, by Actor, f AuditFilter) ([]AuditEntry, error) {
	if !by.can(PermViewAudit) {
		return nil, s.refuse(ctx, by, "read the audit log", "")
	}
	return s.store.Audit(ctx, f)
}

// audit stores an entry. A failure is logged, not returned: the action it records has happened,
// and the log line above it is the fallback record.
func (s *Service) audit(ctx context.Context, e AuditEntry) {
	e.At = s.clock.Now().UTC()
	e.Actor = truncate(e.Actor, MaxNameLen*2)
	// The request may be cancelled by now; the record must still be written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.store.AddAudit(ctx, &e); err != nil {
		s.log.Error("audit entry not stored", "action", e.Action, "actor", e.Actor, "target", e.Target, "err", err)
	}
}
