package account

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kentongan/kentongan/hub"
)

// Paths of the browser's login and logout forms (POST). The login page itself (GET /login) is
// the dashboard's; it shows the error that LoginHandler redirects back with.
const (
	LoginPath  = "/login"
	LogoutPath = "/logout"
)

// Login form fields and the error values LoginHandler sends back to the login page in its
// "error" query parameter (with "retry", in seconds, for ErrLimited).
const (
	FieldName     = "name"
	FieldPassword = "password"
	FieldNext     = "next"

	LoginErrFailed  = "failed"  // wrong name or password, or a disabled user
	LoginErrLimited = "limited" // too many failures; see "retry"
	LoginErrExpired = "expired" // the session ended; log in again
	LoginErrOrigin  = "origin"  // the form was posted from another site
)

// Browser is what the dashboard (hub/web) asks about the signed-in user of a request that went
// through Middleware, and where its login and logout forms post.
type Browser struct{ s *Service }

// Browser returns the dashboard's view of the service.
func (s *Service) Browser() *Browser { return &Browser{s: s} }

// User returns r's signed-in user, nil when there is none (or the CSRF check failed).
func (b *Browser) User(r *http.Request) *User { return FromContext(r.Context()) }

// CSRF returns the form field and r's session's CSRF token.
func (b *Browser) CSRF(r *http.Request) (field, token string) { return CSRFField, CSRFToken(r) }

// CheckCSRF reports whether r passed Middleware's CSRF check: a state-changing request from a
// session without the right token has no user at all.
func (b *Browser) CheckCSRF(r *http.Request) bool {
	id := identityOf(r.Context())
	return id != nil && id.user != nil
}

// LoginPath is where the login form posts.
func (b *Browser) LoginPath() string { return LoginPath }

// LogoutPath is where the logout button posts.
func (b *Browser) LogoutPath() string { return LogoutPath }

// KeepAlive marks r's session as in use, for a long-lived request such as the dashboard's event
// stream: while the dashboard is open, its session does not idle out between tickets. It
// writes at most once a minute, and does nothing for requests without a session.
func (b *Browser) KeepAlive(r *http.Request) {
	id := identityOf(r.Context())
	if id == nil || id.session == nil {
		return
	}
	now := b.s.clock.Now()
	if now.Sub(id.session.LastSeenAt) < touchEvery || !now.Before(id.session.ExpiresAt) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), touchEvery/2)
	defer cancel()
	if err := b.s.store.TouchSession(ctx, id.session.Hash, now.UTC()); err != nil {
		b.s.log.Debug("session keep-alive failed", "user", id.session.User, "err", err)
		return
	}
	id.session.LastSeenAt = now
}

// LoginHandler handles the login form (fields FieldName, FieldPassword, FieldNext): on success
// it sets the session cookie and redirects to next (a path on this site); otherwise it
// redirects back to LoginPath with "error" set. The form has no session to tie a CSRF token to,
// so it is refused when posted from another origin.
func (s *Service) LoginHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		next := SafeRedirect(r.PostFormValue(FieldNext))
		back := func(code string, extra url.Values) {
			q := url.Values{"error": {code}}
			if next != "/" {
				q.Set(FieldNext, next)
			}
			for k, v := range extra {
				q[k] = v
			}
			http.Redirect(w, r, LoginPath+"?"+q.Encode(), http.StatusSeeOther)
		}
		if err := SameOrigin(r); err != nil {
			s.log.Warn("login form from another origin refused", "ip", ClientIP(r), "origin", r.Header.Get("Origin"))
			back(LoginErrOrigin, nil)
			return
		}
		_, token, sess, err := s.Login(r.Context(), r.PostFormValue(FieldName), r.PostFormValue(FieldPassword), ClientIP(r), r.UserAgent())
		if err != nil {
			switch hub.ErrorCode(err) {
			case hub.CodeTooMany:
				extra := url.Values{}
				if le, ok := errors.AsType[*LimitError](err); ok {
					secs := int(roundUp(le.RetryAfter).Seconds())
					w.Header().Set("Retry-After", strconv.Itoa(secs))
					extra.Set("retry", strconv.Itoa(secs))
				}
				back(LoginErrLimited, extra)
			case hub.CodeInternal:
				s.log.Error("login failed inside the hub", "err", err)
				http.Error(w, "internal error", http.StatusInternalServerError)
			default:
				back(LoginErrFailed, nil)
			}
			return
		}
		s.SetSessionCookie(w, r, token, sess)
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// LogoutHandler handles the logout button: it ends the session, drops the cookie and sends the
// browser to the login page. It runs behind Middleware, so a logout posted without the CSRF
// token (by another site) does nothing but go to the login page.
func (s *Service) LogoutHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if AuthMethod(r.Context()) == MethodSession {
			if err := s.Logout(r.Context(), SessionToken(r), ClientIP(r)); err != nil {
				s.log.Error("logout failed", "err", err)
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			s.ClearSessionCookie(w, r)
		}
		http.Redirect(w, r, LoginPath, http.StatusSeeOther)
	})
}
