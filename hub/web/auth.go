package web

import (
	"net/http"

	"github.com/kentongan/kentongan/hub/account"
)

// Auth is how the dashboard learns who is signed in and protects its forms. The hub's account
// package provides it; tests may fake it.
type Auth interface {
	// User returns the signed-in user of r, or nil when r has no valid session.
	User(r *http.Request) *account.User
	// CSRF returns the form field that carries the CSRF token, and r's session's token.
	CSRF(r *http.Request) (field, token string)
	// CheckCSRF reports whether a state-changing request carries its session's token.
	CheckCSRF(r *http.Request) bool
	// LoginPath is where the login form posts; LogoutPath where the logout button posts.
	// Their handlers belong to the account package, and send the browser back here.
	LoginPath() string
	LogoutPath() string
}
