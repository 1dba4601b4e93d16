package http

import (
	"net/http"
	"strconv"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	s.json(w, http.StatusOK, s.opts.Devices.Devices(r.Context()))
	return nil
}

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	id, err := s.opts.Devices.Ping(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.json(w, http.StatusAccepted, map[string]string{"device_id": r.PathValue("id"), "command_id": id})
	return nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	s.json(w, http.StatusOK, s.opts.Stats.Stats(r.Context()))
	return nil
}

func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	q := r.URL.Query()
	f := hub.AlertFilter{Kind: hub.AlertKind(q.Get("kind")), DeviceID: q.Get("device_id"), Agency: q.Get("agency")}
	switch f.Kind {
	case "", hub.AlertDeadlineBreach, hub.AlertKioskOffline, hub.AlertFalseAlarmRate, hub.AlertRoutingConfig:
	default:
		return hub.Errorf(hub.CodeInvalid, "kind %q: must be deadline_breach, kiosk_offline, false_alarm_rate or routing_config", f.Kind)
	}
	var err error
	if f.IncludeCleared, err = boolParam(q, "include_cleared"); err != nil {
		return err
	}
	alerts := []hub.Alert{}
	if s.opts.Alerts != nil {
		if as := s.opts.Alerts.Alerts(r.Context(), f); as != nil {
			alerts = as
		}
	}
	s.json(w, http.StatusOK, alerts)
	return nil
}

func (s *Server) handleAgencies(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	agencies := []hub.Agency{}
	if s.opts.Routing != nil {
		if as := s.opts.Routing.Agencies(r.Context()); as != nil {
			agencies = as
		}
	}
	s.json(w, http.StatusOK, agencies)
	return nil
}

func (s *Server) handleRouting(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	if s.opts.Routing == nil {
		return hub.Errorf(hub.CodeUnavailable, "this hub has no routing configuration")
	}
	s.json(w, http.StatusOK, s.opts.Routing.RoutingStatus(r.Context()))
	return nil
}

// handleRoutingReload reloads the routing file. Whether it was taken or refused, the attempt
// is in the audit log.
func (s *Server) handleRoutingReload(w http.ResponseWriter, r *http.Request, u *account.User) error {
	if s.opts.Routing == nil {
		return hub.Errorf(hub.CodeUnavailable, "this hub has no routing configuration")
	}
	if err := decodeJSON(w, r, &struct{}{}, true); err != nil {
		return err
	}
	err := s.opts.Routing.ReloadRouting(r.Context())
	st := s.opts.Routing.RoutingStatus(r.Context())
	entry := account.AuditEntry{Actor: u.Name, Action: account.ActionConfigReload, Target: "routing " + st.Path, IP: account.ClientIP(r)}
	if err != nil {
		entry.Detail = "refused: " + hub.ErrorMessage(err)
	} else {
		entry.Detail = "loaded, checksum " + st.Checksum
	}
	s.opts.Accounts.Record(r.Context(), entry)
	s.log.Info("routing reload requested", "user", u.Name, "ok", err == nil, "err", err)
	if err != nil {
		return err
	}
	s.json(w, http.StatusOK, st)
	return nil
}

func (s *Server) handleDeliveries(w http.ResponseWriter, r *http.Request, _ *account.User) error {
	q := r.URL.Query()
	f := hub.DeliveryFilter{Agency: q.Get("agency"), State: hub.DeliveryState(q.Get("state"))}
	switch f.State {
	case "", hub.DeliveryPending, hub.DeliveryDelivered, hub.DeliveryFailed:
	default:
		return hub.Errorf(hub.CodeInvalid, "state %q: must be pending, delivered or failed", f.State)
	}
	var err error
	if f.Failing, err = boolParam(q, "failing"); err != nil {
		return err
	}
	if f.Limit, err = limitParam(q.Get("limit")); err != nil {
		return err
	}
	ds := []hub.Delivery{}
	if s.opts.Webhooks != nil {
		got, err := s.opts.Webhooks.Deliveries(r.Context(), f)
		if err != nil {
			return err
		}
		if got != nil {
			ds = got
		}
	}
	s.json(w, http.StatusOK, ds)
	return nil
}

func (s *Server) handleRetryDelivery(w http.ResponseWriter, r *http.Request, u *account.User) error {
	if s.opts.Webhooks == nil {
		return hub.Errorf(hub.CodeUnavailable, "this hub has no webhooks")
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return hub.Errorf(hub.CodeInvalid, "delivery id %q is not a positive number", r.PathValue("id"))
	}
	d, err := s.opts.Webhooks.RetryDelivery(r.Context(), id)
	if err != nil {
		return err
	}
	s.log.Info("webhook delivery retry requested", "delivery", id, "agency", d.Agency, "user", u.Name)
	s.json(w, http.StatusOK, d)
	return nil
}
