package enroll

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kentongan/kentongan/hub"
)

// Device reads one registry entry with its history; a device of the config file has no entry.
func (s *Service) Device(ctx context.Context, id string) (*Device, error) {
	return s.opts.Store.Device(ctx, id)
}

// Revoke withdraws a device's credentials: the broker drops its connections at once and
// refuses it from then on. Revoking a revoked device only disconnects it again.
func (s *Service) Revoke(ctx context.Context, actor, id, reason string) (*Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.enrolled(ctx, id, "revoke")
	if err != nil {
		return nil, err
	}
	if d.State != StateRevoked {
		now := s.clock.Now().UTC()
		d.State, d.UpdatedAt = StateRevoked, now
		ev := Event{At: now, Kind: EventRevoked, Actor: actor, Detail: reason}
		if err := s.opts.Store.UpdateDevice(ctx, d, ev); err != nil {
			return nil, fmt.Errorf("revoke device %s: %w", id, err)
		}
		d.History = append(d.History, ev)
		s.log.Warn("device revoked", "device", id, "by", actor, "reason", reason)
	}
	s.disconnect(id)
	return d, nil
}

// AllowReprovision lets the device's board enroll once more, with a new token: after a
// repair, a move to another post, or a revocation that is being undone.
func (s *Service) AllowReprovision(ctx context.Context, actor, id string) (*Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.enrolled(ctx, id, "allow re-provisioning of")
	if err != nil {
		return nil, err
	}
	if !d.ReprovisionAllowed {
		now := s.clock.Now().UTC()
		d.ReprovisionAllowed, d.UpdatedAt = true, now
		ev := Event{At: now, Kind: EventReprovisionAllowed, Actor: actor}
		if err := s.opts.Store.UpdateDevice(ctx, d, ev); err != nil {
			return nil, fmt.Errorf("allow re-provisioning of %s: %w", id, err)
		}
		d.History = append(d.History, ev)
		s.log.Info("device re-provisioning allowed", "device", id, "by", actor)
	}
	return d, nil
}

func (s *Service) enrolled(ctx context.Context, id, what string) (*Device, error) {
	d, err := s.opts.Store.Device(ctx, id)
	if hub.ErrorCode(err) == hub.CodeNotFound {
		if _, ok := s.static[id]; ok {
			return nil, hub.Errorf(hub.CodeConflict, "cannot %s device %s: it is listed in the hub's config file and holds no credentials; remove it there", what, id)
		}
		return nil, hub.Errorf(hub.CodeNotFound, "device %q is not registered at this hub", id)
	}
	if err != nil {
		return nil, fmt.Errorf("%s device %s: %w", what, id, err)
	}
	return d, nil
}

// Broker refusal reasons of CheckDevice.
const (
	RefuseUnknownDevice = "unknown_device"
	RefuseRevoked       = "revoked"
	RefuseSuperseded    = "superseded_certificate"
	RefuseStoreError    = "store_error"
)

// CheckDevice says whether a client presenting a CA-verified certificate for deviceID with
// this fingerprint may connect: "" if so, else a refusal reason. It is the broker's
// authentication (hub/mochi.DeviceAuth).
func (s *Service) CheckDevice(ctx context.Context, deviceID, certFingerprint string) string {
	d, err := s.opts.Store.Device(ctx, deviceID)
	switch {
	case hub.ErrorCode(err) == hub.CodeNotFound:
		return RefuseUnknownDevice
	case err != nil:
		s.log.Error("device check failed", "device", deviceID, "err", err)
		return RefuseStoreError
	case d.State == StateRevoked:
		return RefuseRevoked
	case d.CertFingerprint != certFingerprint:
		return RefuseSuperseded
	}
	return ""
}

// Enrolled reports whether deviceID holds credentials, and so may connect only with them. A
// store error is returned, and the broker refuses the client for it: refusing a kiosk, which
// retries, is safer than letting anyone speak for it.
func (s *Service) Enrolled(ctx context.Context, deviceID string) (bool, error) {
	_, err := s.opts.Store.Device(ctx, deviceID)
	switch {
	case err == nil:
		return true, nil
	case hub.ErrorCode(err) == hub.CodeNotFound:
		return false, nil
	}
	return false, fmt.Errorf("look up device %s: %w", deviceID, err)
}

// Seen records that a device connected.
func (s *Service) Seen(ctx context.Context, deviceID string) {
	if err := s.opts.Store.TouchDevice(ctx, deviceID, s.clock.Now().UTC()); err != nil {
		s.log.Warn("device last-seen not recorded", "device", deviceID, "err", err)
	}
}

// FleetDevice is one kiosk in the fleet view: the live state ingest has (as GET
// /api/v1/devices always answered) with the registry's provisioning record.
type FleetDevice struct {
	hub.DeviceStatus
	Source string `json:"source"` // SourceEnrolled or SourceConfig
	// Registration is StateActive or StateRevoked for an enrolled device, "" for one of the
	// config file.
	Registration       string     `json:"registration,omitempty"`
	Hardware           *Hardware  `json:"hardware,omitempty"`
	Firmware           string     `json:"firmware,omitempty"` // the last heartbeat's, else the enrollment's
	LastSeen           *time.Time `json:"last_seen,omitempty"`
	ReprovisionAllowed bool       `json:"reprovision_allowed,omitempty"`
	CertSerial         string     `json:"cert_serial,omitempty"`
	CertNotAfter       *time.Time `json:"cert_not_after,omitempty"`
	EnrolledAt         *time.Time `json:"enrolled_at,omitempty"`
	History            []Event    `json:"history"`
}

// Fleet merges the registry with ingest's live view (live), sorted by device ID.
func (s *Service) Fleet(ctx context.Context, live []hub.DeviceStatus) ([]FleetDevice, error) {
	reg, err := s.opts.Store.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	byID := map[string]*FleetDevice{}
	for _, l := range live {
		fd := &FleetDevice{DeviceStatus: l, Source: SourceConfig, Firmware: l.State.Firmware, LastSeen: l.State.LastHeard, History: []Event{}}
		byID[l.ID] = fd
	}
	for _, d := range reg {
		fd, ok := byID[d.ID]
		if !ok {
			fd = &FleetDevice{DeviceStatus: hub.DeviceStatus{Device: d.HubDevice(), State: hub.DeviceState{Presence: hub.PresenceUnknown}}}
			byID[d.ID] = fd
		}
		if fd.History == nil {
			fd.History = []Event{}
		}
		hw := d.Hardware
		fd.Source, fd.Registration, fd.Hardware = SourceEnrolled, d.State, &hw
		fd.Firmware = cmp.Or(fd.Firmware, d.Firmware)
		fd.ReprovisionAllowed, fd.CertSerial = d.ReprovisionAllowed, d.CertSerial
		if !d.CertNotAfter.IsZero() {
			t := d.CertNotAfter
			fd.CertNotAfter = &t
		}
		if !d.EnrolledAt.IsZero() {
			t := d.EnrolledAt
			fd.EnrolledAt = &t
		}
		if d.LastSeen != nil && (fd.LastSeen == nil || d.LastSeen.After(*fd.LastSeen)) {
			fd.LastSeen = d.LastSeen
		}
		if d.History != nil {
			fd.History = d.History
		}
	}
	for id, d := range s.static {
		if _, ok := byID[id]; !ok {
			byID[id] = &FleetDevice{DeviceStatus: hub.DeviceStatus{Device: d, State: hub.DeviceState{Presence: hub.PresenceUnknown}},
				Source: SourceConfig, History: []Event{}}
		}
	}
	out := make([]FleetDevice, 0, len(byID))
	for _, fd := range byID {
		out = append(out, *fd)
	}
	slices.SortFunc(out, func(a, b FleetDevice) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}
