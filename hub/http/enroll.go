package http

import (
	"errors"
	"net/http"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/enroll"
)

// Audit actions of device provisioning.
const (
	actionEnrollTokenCreate = "enroll_token_create"
	actionEnrollTokenRevoke = "enroll_token_revoke"
	actionDeviceRevoke      = "device_revoke"
	actionDeviceReprovision = "device_allow_reprovision"
)

// permManageDevices is what enrollment tokens, revocation and re-provisioning need: only
// administrators have it, as they manage the hub's configuration.
const permManageDevices = account.PermReloadConfig

func (s *Server) enrollRoutes() {
	if s.opts.Enroll == nil {
		return
	}
	s.mux.HandleFunc("POST "+enroll.EnrollPath, s.handleEnroll)
	s.handle("GET /api/v1/enrollment-tokens", permManageDevices, s.handleEnrollTokens)
	s.handle("POST /api/v1/enrollment-tokens", permManageDevices, s.handleCreateEnrollToken)
	s.handle("DELETE /api/v1/enrollment-tokens/{id}", permManageDevices, s.handleRevokeEnrollToken)
	s.handle("GET /api/v1/devices/{id}", account.PermViewDevices, s.handleFleetDevice)
	s.handle("POST /api/v1/devices/{id}/revoke", permManageDevices, s.handleRevokeDevice)
	s.handle("POST /api/v1/devices/{id}/allow-reprovision", permManageDevices, s.handleAllowReprovision)
}

// handleEnroll is the kiosk's enrollment, authenticated by the enrollment token in the body.
// Refusals carry a reason besides the usual code (enroll.ErrorBody).
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	var req enroll.Request
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.enrollError(w, r, &enroll.Error{Code: hub.CodeInvalid, Reason: enroll.ReasonBadRequest, Message: hub.ErrorMessage(err)})
		return
	}
	resp, err := s.opts.Enroll.Enroll(r.Context(), req, account.ClientIP(r))
	if err != nil {
		s.enrollError(w, r, err)
		return
	}
	s.json(w, http.StatusOK, resp)
}

func (s *Server) enrollError(w http.ResponseWriter, r *http.Request, err error) {
	var e *enroll.Error
	if !errors.As(err, &e) {
		s.error(w, r, err)
		return
	}
	var body enroll.ErrorBody
	body.Error.Code, body.Error.Reason, body.Error.Message = e.Code, e.Reason, e.Message
	s.json(w, ErrorStatus(e.Code), body)
}

func (s *Server) handleCreateEnrollToken(w http.ResponseWriter, r *http.Request, u *account.User) error {
	var req enroll.TokenRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	nt := enroll.NewToken{Name: req.Name, SMSAllow: req.SMSAllow}
	switch {
	case req.Site != nil && req.SitePath != "":
		return hub.Errorf(hub.CodeInvalid, "give site or site_path, not both")
	case req.Site != nil:
		nt.Site = *req.Site
	case req.SitePath != "":
		site, err := enroll.ParseSite(req.SitePath)
		if err != nil {
			return hub.Errorf(hub.CodeInvalid, "site_path: %v", err)
		}
		nt.Site = site
	default:
		return hub.Errorf(hub.CodeInvalid, "site is missing: the post the kiosk will stand at")
	}
	if req.Lat != nil {
		nt.Site.Lat = *req.Lat
	}
	if req.Lon != nil {
		nt.Site.Lon = *req.Lon
	}
	if req.Expires != "" {
		d, err := time.ParseDuration(req.Expires)
		if err != nil {
			return hub.Errorf(hub.CodeInvalid, "expires %q: write a duration such as 24h or 90m", req.Expires)
		}
		nt.TTL = d
	}
	t, secret, err := s.opts.Enroll.CreateToken(r.Context(), u.Name, nt)
	if err != nil {
		return err
	}
	s.opts.Accounts.Record(r.Context(), account.AuditEntry{Actor: u.Name, Action: actionEnrollTokenCreate, Target: t.ID,
		IP: account.ClientIP(r), Detail: "site " + enroll.FormatSite(t.Site) + ", expires " + t.ExpiresAt.Format(time.RFC3339)})
	s.json(w, http.StatusCreated, enroll.CreatedToken{Token: t, Secret: secret})
	return nil
}

func (s *Server) handleEnrollTokens(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	ts, err := s.opts.Enroll.Tokens(r.Context())
	if err != nil {
		return err
	}
	s.json(w, http.StatusOK, ts)
	return nil
}

func (s *Server) handleRevokeEnrollToken(w http.ResponseWriter, r *http.Request, u *account.User) error {
	t, err := s.opts.Enroll.RevokeToken(r.Context(), u.Name, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.opts.Accounts.Record(r.Context(), account.AuditEntry{Actor: u.Name, Action: actionEnrollTokenRevoke, Target: t.ID, IP: account.ClientIP(r)})
	s.json(w, http.StatusOK, t)
	return nil
}

// handleFleet is GET /api/v1/devices with an enrollment service: the live view merged with the
// registry (site, firmware, last seen, provisioning history).
func (s *Server) handleFleet(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	fleet, err := s.opts.Enroll.Fleet(r.Context(), s.opts.Devices.Devices(r.Context()))
	if err != nil {
		return err
	}
	s.json(w, http.StatusOK, fleet)
	return nil
}

func (s *Server) handleFleetDevice(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	fleet, err := s.opts.Enroll.Fleet(r.Context(), s.opts.Devices.Devices(r.Context()))
	if err != nil {
		return err
	}
	for _, d := range fleet {
		if d.ID == r.PathValue("id") {
			s.json(w, http.StatusOK, d)
			return nil
		}
	}
	return hub.Errorf(hub.CodeNotFound, "device %q is not registered at this hub", r.PathValue("id"))
}

type revokeDeviceRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) handleRevokeDevice(w http.ResponseWriter, r *http.Request, u *account.User) error {
	var req revokeDeviceRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	d, err := s.opts.Enroll.Revoke(r.Context(), u.Name, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	s.opts.Accounts.Record(r.Context(), account.AuditEntry{Actor: u.Name, Action: actionDeviceRevoke, Target: d.ID, IP: account.ClientIP(r), Detail: req.Reason})
	s.json(w, http.StatusOK, d)
	return nil
}

func (s *Server) handleAllowReprovision(w http.ResponseWriter, r *http.Request, u *account.User) error {
	if err := decodeJSON(w, r, &struct{}{}, true); err != nil {
		return err
	}
	d, err := s.opts.Enroll.AllowReprovision(r.Context(), u.Name, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.opts.Accounts.Record(r.Context(), account.AuditEntry{Actor: u.Name, Action: actionDeviceReprovision, Target: d.ID, IP: account.ClientIP(r)})
	s.json(w, http.StatusOK, d)
	return nil
}
