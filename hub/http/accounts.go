package http

import (
	"net/http"
	"strconv"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// session is the answer to a login and to GET /api/v1/me.
type session struct {
	User *account.User `json:"user"`
	// Auth is how the request was authenticated: "session" or "token".
	Auth string `json:"auth"`
	// CSRFToken is what a session's state-changing requests send in X-CSRF-Token.
	CSRFToken string     `json:"csrf_token,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Token is the API token the request came with.
	Token *account.Token `json:"token,omitempty"`
}

// handleLogin logs in with a JSON body and sets the session cookie. It is refused from another
// origin: a login has no session yet to tie a CSRF token to.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if s.opts.Accounts == nil {
		s.error(w, r, hub.Errorf(hub.CodeUnauthorized, "this hub has no accounts configured"))
		return
	}
	if err := account.SameOrigin(r); err != nil {
		s.error(w, r, err)
		return
	}
	var req loginRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.error(w, r, err)
		return
	}
	u, token, sess, err := s.opts.Accounts.Login(r.Context(), req.Name, req.Password, account.ClientIP(r), r.UserAgent())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.opts.Accounts.SetSessionCookie(w, r, token, sess)
	s.json(w, http.StatusOK, session{User: u, Auth: account.MethodSession, CSRFToken: account.CSRFFor(token), ExpiresAt: &sess.ExpiresAt})
}

// handleLogout ends the request's session. A session's logout needs its CSRF token like any
// change; without credentials it does nothing, since there is nothing to end.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if s.opts.Accounts == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := account.AuthError(r.Context()); err != nil && hub.ErrorCode(err) == hub.CodeForbidden {
		s.error(w, r, err)
		return
	}
	if account.AuthMethod(r.Context()) == account.MethodSession {
		if err := s.opts.Accounts.Logout(r.Context(), account.SessionToken(r), account.ClientIP(r)); err != nil {
			s.error(w, r, err)
			return
		}
	}
	if _, err := r.Cookie(account.SessionCookie); err == nil {
		s.opts.Accounts.ClearSessionCookie(w, r)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, u *account.User) error {
	out := session{User: u, Auth: account.AuthMethod(r.Context()), CSRFToken: account.CSRFToken(r), Token: account.TokenFromContext(r.Context())}
	s.json(w, http.StatusOK, out)
	return nil
}

type passwordRequest struct {
	Current  string `json:"current"`
	Password string `json:"password"`
}

func (s *Server) handleMyPassword(w http.ResponseWriter, r *http.Request, u *account.User) error {
	var req passwordRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if err := s.opts.Accounts.SetPassword(r.Context(), account.ActorOf(r), u.Name, req.Current, req.Password); err != nil {
		return err
	}
	// The password change ended every session, this one too.
	if account.AuthMethod(r.Context()) == account.MethodSession {
		s.opts.Accounts.ClearSessionCookie(w, r)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	users, err := s.opts.Accounts.Users(r.Context())
	if err != nil {
		return err
	}
	s.json(w, http.StatusOK, users)
	return nil
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	u, err := s.opts.Accounts.User(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	s.json(w, http.StatusOK, u)
	return nil
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	var req account.NewUser
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	u, err := s.opts.Accounts.CreateUser(r.Context(), account.ActorOf(r), req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/users/"+u.Name)
	s.json(w, http.StatusCreated, u)
	return nil
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	var req account.UserChange
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	u, err := s.opts.Accounts.UpdateUser(r.Context(), account.ActorOf(r), r.PathValue("name"), req)
	if err != nil {
		return err
	}
	s.json(w, http.StatusOK, u)
	return nil
}

func (s *Server) handleSetPassword(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	var req struct {
		Password string `json:"password"`
	}
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if err := s.opts.Accounts.SetPassword(r.Context(), account.ActorOf(r), r.PathValue("name"), "", req.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleTokens lists the user's own tokens, or with ?user= another user's (admins), with
// ?user=* everybody's.
func (s *Server) handleTokens(w http.ResponseWriter, r *http.Request, u *account.User) error {
	user := u.Name
	if q := r.URL.Query().Get("user"); q == "*" {
		user = ""
	} else if q != "" {
		user = q
	}
	ts, err := s.opts.Accounts.Tokens(r.Context(), account.ActorOf(r), user)
	if err != nil {
		return err
	}
	s.json(w, http.StatusOK, ts)
	return nil
}

type tokenRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
	// User is whose token it is; default the caller. Only admins name another user.
	User string `json:"user"`
	// ExpiresInDays is its lifetime; 0 means it does not expire.
	ExpiresInDays int `json:"expires_in_days"`
}

// createdToken is the answer to POST /api/v1/tokens: the only time the token is shown.
type createdToken struct {
	*account.Token
	Secret string `json:"token"`
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	var req tokenRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.ExpiresInDays < 0 || req.ExpiresInDays > int(account.MaxTokenTTL/(24*time.Hour)) {
		return hub.Errorf(hub.CodeInvalid, "expires_in_days must be from 0 (no expiry) to %d", account.MaxTokenTTL/(24*time.Hour))
	}
	t, raw, err := s.opts.Accounts.CreateToken(r.Context(), account.ActorOf(r), req.User, req.Name, req.Scope,
		time.Duration(req.ExpiresInDays)*24*time.Hour)
	if err != nil {
		return err
	}
	s.json(w, http.StatusCreated, createdToken{Token: t, Secret: raw})
	return nil
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	t, err := s.opts.Accounts.RevokeToken(r.Context(), account.ActorOf(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.json(w, http.StatusOK, t)
	return nil
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	q := r.URL.Query()
	f := account.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action")}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return hub.Errorf(hub.CodeInvalid, "since must be an RFC 3339 time, e.g. 2026-11-27T00:00:00+07:00")
		}
		f.Since = t
	}
	n, err := limitParam(q.Get("limit"))
	if err != nil {
		return err
	}
	f.Limit = n
	es, err := s.opts.Accounts.AuditLog(r.Context(), account.ActorOf(r), f)
	if err != nil {
		return err
	}
	s.json(w, http.StatusOK, es)
	return nil
}

// limitParam reads a "limit" query value: 0 when absent.
func limitParam(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > hub.MaxLimit {
		return 0, hub.Errorf(hub.CodeInvalid, "limit must be a number from 1 to %d", hub.MaxLimit)
	}
	return n, nil
}
