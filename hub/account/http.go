package account

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/kentongan/kentongan/hub"
)

// Names the browser side uses.
const (
	// SessionCookie holds the session token.
	SessionCookie = "kentongan_session"
	// CSRFField is the form field that carries the CSRF token in a state-changing form post.
	CSRFField = "csrf_token"
	// CSRFHeader carries the CSRF token in a state-changing fetch() from the dashboard.
	CSRFHeader = "X-CSRF-Token"
)

// Ways a request was authenticated.
const (
	MethodSession = "session"
	MethodToken   = "token"
)

type ctxKey struct{}

// identity is what Middleware learnt about a request.
type identity struct {
	user    *User
	method  string
	session *Session
	token   *Token
	csrf    string // the session's CSRF token
	err     error  // why there is no user although credentials were given
}

func identityOf(ctx context.Context) *identity {
	id, _ := ctx.Value(ctxKey{}).(*identity)
	return id
}

// FromContext returns the authenticated user of a request, or nil.
func FromContext(ctx context.Context) *User {
	if id := identityOf(ctx); id != nil {
		return id.user
	}
	return nil
}

// TokenFromContext returns the API token a request was authenticated with, or nil for a session
// or an anonymous request.
func TokenFromContext(ctx context.Context) *Token {
	if id := identityOf(ctx); id != nil && id.user != nil {
		return id.token
	}
	return nil
}

// AuthMethod returns MethodSession, MethodToken, or "" for an anonymous request.
func AuthMethod(ctx context.Context) string {
	if id := identityOf(ctx); id != nil && id.user != nil {
		return id.method
	}
	return ""
}

// AuthError returns why a request that carried credentials has no user: an unauthorized
// *hub.Error for an expired session or a bad token, a forbidden one for a missing or wrong CSRF
// token. It is nil for a request with no credentials at all, or an authenticated one.
func AuthError(ctx context.Context) error {
	if id := identityOf(ctx); id != nil {
		return id.err
	}
	return nil
}

// CSRFToken returns the CSRF token that r's session expects in CSRFField or CSRFHeader; ""
// when r has no session. Pages put it in every form that changes something.
func CSRFToken(r *http.Request) string {
	if id := identityOf(r.Context()); id != nil && id.user != nil {
		return id.csrf
	}
	return ""
}

// NewContext returns ctx carrying u as its authenticated user, as if by a session whose CSRF
// token is csrf. It is for tests of handlers that run behind Middleware.
func NewContext(ctx context.Context, u *User, csrf string) context.Context {
	return context.WithValue(ctx, ctxKey{}, &identity{user: u, method: MethodSession, csrf: csrf})
}

// Require returns the authenticated user of r if it has permission p, or for p "" if there is
// one (with a full API token or a session: "" is for one's own account). Otherwise it returns the
// error to answer with: unauthorized (or AuthError's) when nobody is logged in, and forbidden,
// recorded in the audit log, when the user lacks p. A token of scope open311 has only
// PermFileRequests, whatever its user's role.
func (s *Service) Require(r *http.Request, p Permission) (*User, error) {
	id := identityOf(r.Context())
	if id == nil || id.user == nil {
		if id != nil && id.err != nil {
			return nil, id.err
		}
		return nil, unauthorized("log in, or send an API token as \"Authorization: Bearer <token>\"")
	}
	if id.token != nil && id.token.Scope == ScopeOpen311 && p != PermFileRequests {
		return nil, s.refuse(r.Context(), ActorOf(r), "use a token of scope open311 outside Open311", r.URL.Path)
	}
	if p != "" && !id.user.Can(p) {
		return nil, s.refuse(r.Context(), ActorOf(r), string(p), r.URL.Path)
	}
	return id.user, nil
}

// ActorOf returns the request's user and address as an Actor.
func ActorOf(r *http.Request) Actor {
	return Actor{User: FromContext(r.Context()), From: ClientIP(r)}
}

// ClientIP is the address a request came from. X-Forwarded-For is not trusted: the hub is
// reached directly on the 112 centre's network, and a forged header would let anyone escape
// the per-address login limit.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Middleware authenticates each request and puts the result in its context, for FromContext,
// Require and CSRFToken. It never answers a request itself: public pages (the login page,
// /healthz) pass through, and protected handlers refuse with Require.
//
// An "Authorization: Bearer" API token wins over a session cookie; such requests need no CSRF
// token, since browsers never add the header by themselves. A session's state-changing
// request (anything but GET, HEAD, OPTIONS) must carry the session's CSRF token in CSRFHeader
// or, for a form post, in CSRFField, and must not come from another origin; without both it is
// treated as unauthenticated, with a forbidden AuthError.
func (s *Service) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := s.identify(w, r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

func (s *Service) identify(w http.ResponseWriter, r *http.Request) *identity {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return &identity{err: unauthorized("the Authorization header must be \"Bearer <token>\"")}
		}
		u, t, err := s.TokenUser(ctx, strings.TrimSpace(tok))
		if err != nil {
			s.log.Info("API token refused", "ip", ClientIP(r), "path", r.URL.Path, "err", err)
			return &identity{err: err}
		}
		return &identity{user: u, method: MethodToken, token: t}
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return &identity{}
	}
	u, sess, err := s.SessionUser(ctx, c.Value)
	if err != nil {
		if hub.ErrorCode(err) == hub.CodeUnauthorized {
			s.ClearSessionCookie(w, r) // stale: stop the browser sending it
		}
		return &identity{err: err}
	}
	id := &identity{user: u, method: MethodSession, session: sess, csrf: csrfFor(c.Value)}
	if !safeMethod(r.Method) {
		if isForm(r) {
			// The token may be in the form, which is read here, before the handler: bound it.
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		}
		if err := checkCSRF(r, id.csrf); err != nil {
			s.log.Warn("CSRF check failed", "user", u.Name, "ip", ClientIP(r), "method", r.Method, "path", r.URL.Path, "err", err)
			return &identity{err: err}
		}
	}
	return id
}

// maxFormBody bounds a form read for its CSRF token; the dashboard's forms are a few hundred
// bytes.
const maxFormBody = 1 << 20

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// errCSRFMessage is the message of a refused state-changing request from a session.
const errCSRFMessage = "missing or wrong CSRF token; reload the page"

func checkCSRF(r *http.Request, want string) error {
	if err := SameOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" && isForm(r) {
		got = r.PostFormValue(CSRFField)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return hub.Errorf(hub.CodeForbidden, errCSRFMessage)
	}
	return nil
}

func isForm(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data")
}

// SameOrigin refuses a request whose Origin (or, lacking it, Referer) names another host than
// the one it was sent to. Browsers send Origin with every cross-site POST; tools such as curl
// send neither, and are let through (they have no victim's cookies to abuse). The login form
// uses it, having no session to tie a CSRF token to yet.
func SameOrigin(r *http.Request) error {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return nil
	}
	if src == "null" {
		return hub.Errorf(hub.CodeForbidden, "cross-origin request refused (Origin null)")
	}
	u, err := url.Parse(src)
	if err != nil || !strings.EqualFold(u.Host, r.Host) {
		return hub.Errorf(hub.CodeForbidden, "cross-origin request refused: %s is not %s", src, r.Host)
	}
	return nil
}

// SetSessionCookie gives the browser a session's cookie: HttpOnly so that scripts (an injected
// one included) cannot read it, SameSite=Lax so that other sites' requests do not carry it
// except top-level navigation, Secure over TLS, and expiring with the session.
func (s *Service) SetSessionCookie(w http.ResponseWriter, r *http.Request, token string, sess *Session) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    token,
		Path:     "/",
		Expires:  sess.ExpiresAt,
		MaxAge:   max(1, int(sess.ExpiresAt.Sub(s.clock.Now()).Seconds())),
		HttpOnly: true,
		Secure:   r.TLS != nil || s.opts.SecureCookies,
		SameSite: http.SameSiteLaxMode,
	})
}

// ClearSessionCookie tells the browser to drop its session cookie.
func (s *Service) ClearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil || s.opts.SecureCookies,
		SameSite: http.SameSiteLaxMode,
	})
}

// SessionToken returns r's session cookie token, for logout.
func SessionToken(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// CSRFFor returns the CSRF token that goes with a session token, for the answer to a login
// (the page that logged in needs it before its next request).
func CSRFFor(sessionToken string) string { return csrfFor(sessionToken) }

// SafeRedirect returns next if it is a path on this site, and "/" otherwise, so that a login
// form's "next" cannot send the browser to another site.
func SafeRedirect(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}
