package http

import (
	"net/http"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// handlerFunc serves a request from an authenticated user; an error it returns is answered in
// JSON by Server.error.
type handlerFunc func(w http.ResponseWriter, r *http.Request, u *account.User) error

// anyUser is the permission of endpoints about one's own account.
const anyUser account.Permission = ""

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.handleHealth)
	if s.opts.Metrics != nil {
		m.Handle("GET /metrics", s.opts.Metrics)
	}

	// Accounts.
	m.HandleFunc("POST /api/v1/login", s.handleLogin)
	m.HandleFunc("POST /api/v1/logout", s.handleLogout)
	s.handle("GET /api/v1/me", anyUser, s.handleMe)
	s.handle("PUT /api/v1/me/password", anyUser, s.handleMyPassword)
	s.handle("GET /api/v1/users", account.PermManageUsers, s.handleUsers)
	s.handle("POST /api/v1/users", account.PermManageUsers, s.handleCreateUser)
	s.handle("GET /api/v1/users/{name}", account.PermManageUsers, s.handleUser)
	s.handle("PATCH /api/v1/users/{name}", account.PermManageUsers, s.handleUpdateUser)
	s.handle("PUT /api/v1/users/{name}/password", account.PermManageUsers, s.handleSetPassword)
	s.handle("GET /api/v1/tokens", anyUser, s.handleTokens)
	s.handle("POST /api/v1/tokens", anyUser, s.handleCreateToken)
	s.handle("DELETE /api/v1/tokens/{id}", anyUser, s.handleRevokeToken)
	s.handle("GET /api/v1/audit", account.PermViewAudit, s.handleAudit)

	// Tickets: reading is scoped to an agency user's agency, and so is every action.
	s.handle("GET /api/v1/tickets", account.PermViewTickets, s.handleTickets)
	s.handle("GET /api/v1/tickets/{id}", account.PermViewTickets, s.handleTicket)
	for _, a := range ticketActions {
		s.handle("POST /api/v1/tickets/{id}/"+a.name, a.perm, s.ticketAction(a))
	}

	if s.opts.Enroll != nil {
		s.handle("GET /api/v1/devices", account.PermViewDevices, s.handleFleet)
	} else {
		s.handle("GET /api/v1/devices", account.PermViewDevices, s.handleDevices)
	}
	s.enrollRoutes()
	s.handle("POST /api/v1/devices/{id}/ping", account.PermViewDevices, s.handlePing)
	s.handle("GET /api/v1/status", account.PermViewDevices, s.handleStatus)
	s.handle("GET /api/v1/alerts", account.PermViewAlerts, s.handleAlerts)
	s.handle("GET /api/v1/agencies", account.PermViewTickets, s.handleAgencies)
	s.handle("GET /api/v1/routing", account.PermViewAlerts, s.handleRouting)
	s.handle("POST /api/v1/routing/reload", account.PermReloadConfig, s.handleRoutingReload)
	s.handle("GET /api/v1/webhooks/deliveries", account.PermViewAlerts, s.handleDeliveries)
	s.handle("POST /api/v1/webhooks/deliveries/{id}/retry", account.PermManageDeliveries, s.handleRetryDelivery)
	m.HandleFunc("/api/", s.handleNoRoute)

	// Open311 GeoReport v2 answers errors in its own shape.
	m.HandleFunc("GET /open311/v2/services.json", s.handleServices)
	m.HandleFunc("GET /open311/v2/requests.json", s.handleRequests)
	m.HandleFunc("POST /open311/v2/requests.json", s.handleFileRequest)
	m.HandleFunc("GET /open311/v2/requests/{file}", s.handleRequest)
	m.HandleFunc("/open311/", s.handleOpen311NoRoute)

	// The browser's login and logout forms, and the dashboard.
	if s.opts.Accounts != nil {
		m.Handle("POST "+account.LoginPath, s.opts.Accounts.LoginHandler())
		m.Handle("POST "+account.LogoutPath, s.opts.Accounts.LogoutHandler())
	}
	if s.opts.UI != nil {
		m.Handle("/", s.opts.UI)
	}
}

// handle registers an endpoint that needs an authenticated user with permission perm. Every
// endpoint but the few public ones is registered here, so none can forget the check.
func (s *Server) handle(pattern string, perm account.Permission, fn handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		u, err := s.require(r, perm)
		if err == nil {
			err = fn(w, r, u)
		}
		if err != nil {
			s.error(w, r, err)
		}
	})
}

func (s *Server) require(r *http.Request, perm account.Permission) (*account.User, error) {
	if s.opts.Accounts == nil {
		return nil, hub.Errorf(hub.CodeUnauthorized, "this hub has no accounts configured")
	}
	return s.opts.Accounts.Require(r, perm)
}
