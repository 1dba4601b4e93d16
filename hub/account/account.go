// Package account is who may use the hub and what they may do: users with roles, passwords
// hashed with bcrypt, browser sessions with CSRF protection, API tokens, the login rate limit,
// and the audit log of account actions (logins, tokens, user changes, configuration reloads).
// Ticket actions are audited in the tickets' own events.
//
// The types and the Store interface are here; hub/sqlite stores them in the hub's database.
// Service is the logic; Middleware puts the authenticated user in the request's context, where
// handlers find it with FromContext.
package account

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/kentongan/kentongan/hub"
)

// Roles. They are strings so that templates and JSON compare them plainly.
const (
	RoleOperator   = "operator"   // works the 112 queue: every ticket, every action
	RoleSupervisor = "supervisor" // an operator who also reads the audit log and gets escalations
	RoleAgency     = "agency"     // an agency's staff: only tickets dispatched to their agency
	RoleAdmin      = "admin"      // manages users and configuration, and can do what operators do
)

// Roles lists every role, for validation and help texts.
var Roles = []string{RoleOperator, RoleSupervisor, RoleAgency, RoleAdmin}

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { return slices.Contains(Roles, r) }

// User is a person (or an integration) who logs in or holds API tokens.
type User struct {
	Name     string `json:"name"`                // login name, lower case; never changes
	FullName string `json:"full_name,omitempty"` // for people: shown in the dashboard
	Role     string `json:"role"`
	Agency   string `json:"agency,omitempty"` // the agency's ID; set exactly when Role is agency
	Disabled bool   `json:"disabled"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// PasswordHash is bcrypt's output. It never leaves the hub.
	PasswordHash []byte `json:"-"`
}

// Permission is something a role may do.
type Permission string

// Permissions, checked by the HTTP API and the dashboard. Agency users are also confined to
// their agency's tickets (CanAccessAgency), whatever the permission.
const (
	PermViewTickets    Permission = "view_tickets"    // list and read tickets
	PermHandleTickets  Permission = "handle_tickets"  // acknowledge, dispatch, close, cancel, merge, mark false alarm
	PermResolveTickets Permission = "resolve_tickets" // resolve: the operator, or the agency that acted
	PermViewDevices    Permission = "view_devices"    // kiosks, their health, pings
	PermViewAlerts     Permission = "view_alerts"
	PermViewAudit      Permission = "view_audit"
	PermManageUsers    Permission = "manage_users" // users, and tokens of other users
	PermReloadConfig   Permission = "reload_config"
	PermFileRequests   Permission = "file_requests" // Open311: file non-emergency requests and read them
	// PermManageDeliveries: retry agencies' failed webhook deliveries.
	PermManageDeliveries Permission = "manage_deliveries"
)

var permissions = map[string][]Permission{
	RoleOperator: {PermViewTickets, PermHandleTickets, PermResolveTickets, PermViewDevices, PermViewAlerts,
		PermFileRequests},
	RoleSupervisor: {PermViewTickets, PermHandleTickets, PermResolveTickets, PermViewDevices, PermViewAlerts,
		PermFileRequests, PermViewAudit, PermManageDeliveries},
	RoleAgency: {PermViewTickets, PermResolveTickets},
	RoleAdmin: {PermViewTickets, PermHandleTickets, PermResolveTickets, PermViewDevices, PermViewAlerts,
		PermFileRequests, PermViewAudit, PermManageDeliveries, PermManageUsers, PermReloadConfig},
}

// Can reports whether u's role has permission p. A nil or disabled user can do nothing.
func (u *User) Can(p Permission) bool {
	if u == nil || u.Disabled {
		return false
	}
	return slices.Contains(permissions[u.Role], p)
}

// CanAccessAgency is the agency scoping rule: agency staff see and update only tickets whose
// agency is theirs (a ticket not yet dispatched, agency "", belongs to no agency); every other
// role sees every ticket.
func (u *User) CanAccessAgency(agency string) bool {
	if u == nil || u.Disabled {
		return false
	}
	if u.Role != RoleAgency {
		return true
	}
	return u.Agency != "" && agency == u.Agency
}

// Limits on what users type.
const (
	MaxNameLen     = 64
	MaxFullNameLen = 128
	MinPasswordLen = 10 // characters
	// MaxPasswordLen is bcrypt's limit: it ignores (x/crypto: refuses) anything past 72 bytes.
	MaxPasswordLen = 72 // bytes
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	agencyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

// ValidateName checks a login name: lower-case letters, digits, '.', '_' and '-', starting with a
// letter or digit, at most MaxNameLen bytes.
func ValidateName(name string) error {
	switch {
	case name == "":
		return hub.Errorf(hub.CodeInvalid, "user name is missing")
	case len(name) > MaxNameLen:
		return hub.Errorf(hub.CodeInvalid, "user name is longer than %d bytes", MaxNameLen)
	case !nameRE.MatchString(name):
		return hub.Errorf(hub.CodeInvalid, "user name %q: use lower-case letters, digits, '.', '_' and '-'", name)
	}
	return nil
}

// ValidatePassword checks a new password. Length is what makes a password strong; composition
// rules only make people write it down.
func ValidatePassword(name, password string) error {
	switch {
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return hub.Errorf(hub.CodeInvalid, "password must have at least %d characters", MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return hub.Errorf(hub.CodeInvalid, "password must be at most %d bytes", MaxPasswordLen)
	case !utf8.ValidString(password):
		return hub.Errorf(hub.CodeInvalid, "password is not valid UTF-8")
	case password == name:
		return hub.Errorf(hub.CodeInvalid, "password must not be the user name")
	}
	return nil
}

// validateUser checks the fields of a user other than the password.
func validateUser(u *User) error {
	if err := ValidateName(u.Name); err != nil {
		return err
	}
	if !ValidRole(u.Role) {
		return hub.Errorf(hub.CodeInvalid, "role %q: must be one of operator, supervisor, agency, admin", u.Role)
	}
	if len(u.FullName) > MaxFullNameLen || !utf8.ValidString(u.FullName) {
		return hub.Errorf(hub.CodeInvalid, "full name must be valid UTF-8 of at most %d bytes", MaxFullNameLen)
	}
	switch {
	case u.Role == RoleAgency && u.Agency == "":
		return hub.Errorf(hub.CodeInvalid, "a user with role agency must be bound to an agency")
	case u.Role != RoleAgency && u.Agency != "":
		return hub.Errorf(hub.CodeInvalid, "only a user with role agency is bound to an agency (role is %s)", u.Role)
	case u.Agency != "" && (len(u.Agency) > MaxNameLen || !agencyRE.MatchString(u.Agency)):
		return hub.Errorf(hub.CodeInvalid, "agency %q is not a valid agency ID", u.Agency)
	}
	return nil
}

// Session is a browser's login. The cookie holds a random token; only its hash is stored, so a
// copy of the database does not let anyone in.
type Session struct {
	Hash       string // hex SHA-256 of the cookie's token
	User       string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute expiry; idle expiry is LastSeenAt + the idle timeout
	IP         string
	UserAgent  string
}

// Token scopes.
const (
	ScopeAPI     = "api"     // the whole JSON API, with the rights of the token's user
	ScopeOpen311 = "open311" // only the Open311 endpoints: for civic-report tools
)

// ValidScope reports whether s is a known token scope.
func ValidScope(s string) bool { return s == ScopeAPI || s == ScopeOpen311 }

// Token is an API token: "Authorization: Bearer <token>", or Open311's api_key. Like sessions,
// only its hash is stored; Prefix lets people tell their tokens apart.
type Token struct {
	ID         string     `json:"id"`
	User       string     `json:"user"`
	Name       string     `json:"name"` // what it is for, e.g. "kentonganctl on the night desk"
	Scope      string     `json:"scope"`
	Prefix     string     `json:"prefix"`
	Hash       string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
}

// Active reports whether t may be used at now.
func (t *Token) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// Audit actions. Like error codes they are part of the API, so they never change meaning.
const (
	ActionLogin         = "login"
	ActionLoginFailed   = "login_failed"  // wrong name or password
	ActionLoginLimited  = "login_limited" // refused by the rate limit before the password was checked
	ActionLoginDisabled = "login_disabled"
	ActionLogout        = "logout"
	ActionTokenCreate   = "token_create"
	ActionTokenRevoke   = "token_revoke"
	ActionUserCreate    = "user_create"
	ActionUserUpdate    = "user_update"
	ActionUserPassword  = "user_password"
	ActionConfigReload  = "config_reload"
	ActionForbidden     = "forbidden" // an authenticated request for something not allowed
)

// AuditEntry is one account action: who did what to what, when, and from where.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"` // a user name, "cli:<os user>", or the name tried at a failed login
	Action string    `json:"action"`
	Target string    `json:"target,omitempty"` // the user, token or file acted on
	IP     string    `json:"ip,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// AuditFilter selects audit entries. Zero fields do not filter.
type AuditFilter struct {
	Actor  string
	Action string
	Since  time.Time
	Limit  int // newest first; 0 means hub.DefaultLimit, at most hub.MaxLimit
}

// Store keeps accounts. Every method returns a not_found *hub.Error for a missing user, session
// or token, and a conflict *hub.Error for a user name or token that already exists.
type Store interface {
	CreateUser(ctx context.Context, u *User) error
	User(ctx context.Context, name string) (*User, error)
	Users(ctx context.Context) ([]*User, error)
	// UpdateUser writes every field of u but Name and CreatedAt.
	UpdateUser(ctx context.Context, u *User) error

	CreateSession(ctx context.Context, s *Session) error
	Session(ctx context.Context, hash string) (*Session, error)
	TouchSession(ctx context.Context, hash string, at time.Time) error
	DeleteSession(ctx context.Context, hash string) error
	// DeleteSessions ends every session of a user, e.g. after a password change.
	DeleteSessions(ctx context.Context, user string) (int, error)
	// DeleteExpiredSessions removes sessions whose absolute expiry is before t.
	DeleteExpiredSessions(ctx context.Context, t time.Time) (int, error)

	CreateToken(ctx context.Context, t *Token) error
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	TokenByID(ctx context.Context, id string) (*Token, error)
	// Tokens lists a user's tokens, or everybody's for user "", newest first.
	Tokens(ctx context.Context, user string) ([]*Token, error)
	RevokeToken(ctx context.Context, id, by string, at time.Time) error
	// TouchToken records a use of the token; stores may skip the write if the last one is recent.
	TouchToken(ctx context.Context, id string, at time.Time) error

	AddAudit(ctx context.Context, e *AuditEntry) error
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// Actor is who does an account action and from where, for permission checks and the audit
// log. A nil User is the hub's own command line, which is trusted: whoever runs it can read
// the database file anyway.
type Actor struct {
	User *User
	CLI  string // for the command line: the operating-system user, for the audit log
	From string // the client's IP address
}

// Name is how the audit log names the actor.
func (a Actor) Name() string {
	if a.User != nil {
		return a.User.Name
	}
	if a.CLI != "" {
		return "cli:" + a.CLI
	}
	return "cli"
}

func (a Actor) can(p Permission) bool { return a.User == nil || a.User.Can(p) }

func (a Actor) forbidden(what string) error {
	return hub.Errorf(hub.CodeForbidden, "%s may not %s", a.describe(), what)
}

func (a Actor) describe() string {
	if a.User == nil {
		return "the command line"
	}
	return fmt.Sprintf("user %s (role %s)", a.User.Name, a.User.Role)
}
