package enroll

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/ingest"
	"github.com/kentongan/kentongan/mqtt"
)

// TokenPrefix starts every enrollment token, so that one pasted where an API token belongs
// (or the reverse) is recognised.
const TokenPrefix = "ktge_"

// Limits on enrollment tokens' lifetimes and on what devices report.
const (
	DefaultTokenTTL = 24 * time.Hour
	MinTokenTTL     = time.Minute
	MaxTokenTTL     = 30 * 24 * time.Hour
	maxField        = 128
)

// Profile is the wiring and timing every enrolled kiosk gets.
type Profile struct {
	Buttons             []Button
	LEDs                []LED
	SupervisionInterval time.Duration // default 90s
	HeartbeatInterval   time.Duration // default 30s
}

// DefaultProfile is the reference kiosk of docs/hardware.md: three panic buttons, a tamper
// switch, a green status LED and a red fault LED.
func DefaultProfile() Profile {
	off := "off"
	return Profile{
		Buttons: []Button{
			{Name: "darurat", Pin: 17},
			{Name: "kebakaran", Category: "fire", Pin: 27},
			{Name: "medis", Category: "medical", Pin: 22},
			{Name: "tutup", Kind: "tamper", Pin: 5},
		},
		LEDs: []LED{
			{Name: "status", Pin: 23},
			{Name: "gangguan", Pin: 24, Patterns: map[string]string{"idle": off, "offline": "slow_blink", "pressing": off,
				"pending": off, "received": off, "acknowledged": off, "dispatched": off, "resolved": off, "fault": "fast_blink"}},
		},
		SupervisionInterval: 90 * time.Second,
		HeartbeatInterval:   30 * time.Second,
	}
}

// Options configure a Service.
type Options struct {
	Store  Store
	CA     *CA // nil: enrollment is refused as disabled, the registry still works
	Clock  hub.Clock
	Logger *slog.Logger
	// Registerer, if set, gets kentongan_hub_enrollments_total{result}.
	Registerer prometheus.Registerer
	// BrokerURL is the device listener given to enrolled devices (mqtts://host:port); "" refuses
	// enrollment as disabled.
	BrokerURL func() string
	Profile   Profile
	// Static are the devices of the hub's config file: their IDs are never given out, and the
	// fleet lists them.
	Static []hub.Device
	// OnEnrolled is called after a device was enrolled or re-provisioned, to register it with
	// ingest.
	OnEnrolled func(hub.Device)
	// Disconnect drops a device's broker connections (revocation, superseded certificates).
	Disconnect func(deviceID string) int
}

// Service is the enrollment and registry logic.
type Service struct {
	opts  Options
	log   *slog.Logger
	clock hub.Clock
	// mu serialises enrollments and admin changes: they are rare, and doing them one at a time
	// makes "one token, one device" hold without relying on the store's isolation alone.
	mu      sync.Mutex
	results *prometheus.CounterVec
	static  map[string]hub.Device
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("enroll: no store")
	}
	if opts.Clock == nil {
		opts.Clock = hub.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BrokerURL == nil {
		opts.BrokerURL = func() string { return "" }
	}
	def := DefaultProfile()
	if opts.Profile.Buttons == nil {
		opts.Profile.Buttons = def.Buttons
	}
	if opts.Profile.LEDs == nil {
		opts.Profile.LEDs = def.LEDs
	}
	if opts.Profile.SupervisionInterval <= 0 {
		opts.Profile.SupervisionInterval = def.SupervisionInterval
	}
	if opts.Profile.HeartbeatInterval <= 0 {
		opts.Profile.HeartbeatInterval = def.HeartbeatInterval
	}
	s := &Service{opts: opts, log: opts.Logger, clock: opts.Clock, static: map[string]hub.Device{}}
	for _, d := range opts.Static {
		s.static[d.ID] = d
	}
	s.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kentongan_hub_enrollments_total",
		Help: "Enrollment attempts by result: ok, or the reason of the refusal.",
	}, []string{"result"})
	for _, r := range []string{"ok", ReasonTokenUnknown, ReasonTokenExpired, ReasonTokenUsed, ReasonTokenRevoked, ReasonSiteMismatch,
		ReasonAlreadyProvisioned, ReasonDeviceRevoked, ReasonBadCSR, ReasonBadRequest, ReasonEnrollmentDisabled} {
		s.results.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.results); err != nil {
			return nil, fmt.Errorf("enroll: register metrics: %w", err)
		}
	}
	return s, nil
}

// CA is the hub's CA, nil if it has none.
func (s *Service) CA() *CA { return s.opts.CA }

// NewToken is what an administrator asks for.
type NewToken struct {
	Site     hub.Site      `json:"site"`
	Name     string        `json:"name,omitempty"`
	SMSAllow []string      `json:"sms_allow,omitempty"`
	TTL      time.Duration `json:"-"`
}

// CreateToken makes an enrollment token for nt.Site, valid for nt.TTL (default 24h). The
// secret is returned once and stored only as a hash.
func (s *Service) CreateToken(ctx context.Context, actor string, nt NewToken) (*Token, string, error) {
	if err := checkSite(nt.Site, true); err != nil {
		return nil, "", err
	}
	if nt.TTL == 0 {
		nt.TTL = DefaultTokenTTL
	}
	if nt.TTL < MinTokenTTL || nt.TTL > MaxTokenTTL {
		return nil, "", hub.Errorf(hub.CodeInvalid, "expiry %v is outside %v..%v", nt.TTL, MinTokenTTL, MaxTokenTTL)
	}
	if err := checkText("name", nt.Name, false); err != nil {
		return nil, "", err
	}
	allow := make([]string, 0, len(nt.SMSAllow))
	for _, n := range nt.SMSAllow {
		norm, err := ingest.NormalizeNumber(n)
		if err != nil {
			return nil, "", hub.Errorf(hub.CodeInvalid, "sms_allow: %v", err)
		}
		allow = append(allow, norm)
	}
	secret := TokenPrefix + rand.Text()
	now := s.clock.Now().UTC()
	t := &Token{
		ID:        "et-" + strings.ToLower(rand.Text()[:12]),
		Prefix:    secret[:len(TokenPrefix)+6],
		Hash:      hashToken(secret),
		Site:      nt.Site,
		Name:      nt.Name,
		SMSAllow:  allow,
		CreatedBy: actor,
		CreatedAt: now,
		ExpiresAt: now.Add(nt.TTL),
	}
	if err := s.opts.Store.CreateToken(ctx, t); err != nil {
		return nil, "", fmt.Errorf("create enrollment token: %w", err)
	}
	s.log.Info("enrollment token created", "token", t.ID, "site", FormatSite(t.Site), "by", actor, "expires", t.ExpiresAt)
	return t, secret, nil
}

// Tokens lists enrollment tokens, newest first.
func (s *Service) Tokens(ctx context.Context) ([]*Token, error) {
	ts, err := s.opts.Store.Tokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("list enrollment tokens: %w", err)
	}
	return ts, nil
}

// RevokeToken withdraws an unused token.
func (s *Service) RevokeToken(ctx context.Context, actor, id string) (*Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.opts.Store.Token(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.UsedAt != nil {
		return nil, hub.Errorf(hub.CodeConflict, "enrollment token %s was used by device %s: revoke the device instead", id, t.DeviceID)
	}
	if t.RevokedAt == nil {
		now := s.clock.Now().UTC()
		if err := s.opts.Store.RevokeToken(ctx, id, now); err != nil {
			return nil, fmt.Errorf("revoke enrollment token %s: %w", id, err)
		}
		t.RevokedAt = &now
		s.log.Info("enrollment token revoked", "token", id, "by", actor)
	}
	return t, nil
}

func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Enroll registers the device of req and issues its certificate. ip is logged with refusals.
// A refusal is an *Error.
func (s *Service) Enroll(ctx context.Context, req Request, ip string) (*Response, error) {
	resp, dev, err := s.enroll(ctx, req)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			s.results.WithLabelValues(e.Reason).Inc()
			s.log.Warn("enrollment refused", "reason", e.Reason, "msg", e.Message, "hardware", req.Hardware.String(), "ip", ip)
		} else {
			s.log.Error("enrollment failed", "err", err, "hardware", req.Hardware.String(), "ip", ip)
		}
		return nil, err
	}
	s.results.WithLabelValues("ok").Inc()
	if s.opts.OnEnrolled != nil {
		s.opts.OnEnrolled(dev.HubDevice())
	}
	return resp, nil
}

func (s *Service) enroll(ctx context.Context, req Request) (*Response, *Device, error) {
	if s.opts.CA == nil || s.opts.BrokerURL() == "" {
		return nil, nil, refuse(ReasonEnrollmentDisabled, "this hub issues no device credentials (no device listener configured)")
	}
	if !strings.HasPrefix(req.Token, TokenPrefix) {
		return nil, nil, refuse(ReasonTokenUnknown, "that is not an enrollment token (they start with %s); ask the administrator for one", TokenPrefix)
	}
	for _, f := range []struct{ name, v string }{{"hardware.board", req.Hardware.Board}, {"hardware.serial", req.Hardware.Serial}, {"firmware", req.Firmware}} {
		if err := checkText(f.name, f.v, true); err != nil {
			return nil, nil, refuse(ReasonBadRequest, "%s", hub.ErrorMessage(err))
		}
	}
	if req.Site != nil {
		if err := checkSite(*req.Site, false); err != nil {
			return nil, nil, refuse(ReasonBadRequest, "%s", hub.ErrorMessage(err))
		}
	}
	csr, keyFP, err := ParseCSR(req.CSRPEM)
	if err != nil {
		return nil, nil, refuse(ReasonBadCSR, "%v", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now().UTC()
	tok, err := s.opts.Store.TokenByHash(ctx, hashToken(req.Token))
	if hub.ErrorCode(err) == hub.CodeNotFound {
		return nil, nil, refuse(ReasonTokenUnknown, "enrollment token %s… is not known to this hub; check it was copied whole", prefixOf(req.Token))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: look up token: %w", err)
	}
	if tok.RevokedAt != nil {
		return nil, nil, refuse(ReasonTokenRevoked, "enrollment token %s was withdrawn by the administrator; ask for a new one", tok.ID)
	}
	existing, err := s.opts.Store.DeviceByHardware(ctx, req.Hardware)
	if err != nil && hub.ErrorCode(err) != hub.CodeNotFound {
		return nil, nil, fmt.Errorf("enroll: look up hardware: %w", err)
	}

	if tok.UsedAt != nil {
		// The answer to the enrollment may have been lost (cable pulled): the same board
		// asking again with the same token gets the same device.
		if existing == nil || existing.ID != tok.DeviceID || existing.TokenID != tok.ID || existing.State != StateActive {
			return nil, nil, refuse(ReasonTokenUsed, "enrollment token %s was already used for device %s; each token enrolls one kiosk", tok.ID, tok.DeviceID)
		}
		if existing.KeyFingerprint == keyFP {
			return s.response(existing), existing, nil
		}
		// Same board, new key: it lost its key before storing the certificate. While the
		// token is valid it gets a new certificate, which supersedes the old one.
		if !now.Before(tok.ExpiresAt) {
			return nil, nil, refuse(ReasonTokenExpired, "enrollment token %s expired at %s", tok.ID, tok.ExpiresAt.Format(time.RFC3339))
		}
		d := *existing
		if err := s.issue(&d, csr, keyFP, req, now); err != nil {
			return nil, nil, err
		}
		ev := Event{At: now, Kind: EventReissued, Actor: "token " + tok.ID, Firmware: req.Firmware, Detail: "retried with a new key"}
		if err := s.opts.Store.SaveEnrollment(ctx, tok.ID, *tok.UsedAt, &d, ev); err != nil {
			return nil, nil, fmt.Errorf("enroll: %w", err)
		}
		s.disconnect(d.ID)
		s.log.Info("device certificate reissued", "device", d.ID, "token", tok.ID, "serial", d.CertSerial)
		return s.response(&d), &d, nil
	}
	if !now.Before(tok.ExpiresAt) {
		return nil, nil, refuse(ReasonTokenExpired, "enrollment token %s expired at %s; ask the administrator for a new one", tok.ID, tok.ExpiresAt.In(wib).Format("2006-01-02 15:04 WIB"))
	}
	site := tok.Site
	if req.Site != nil {
		if !sameSite(site, *req.Site) {
			return nil, nil, refuse(ReasonSiteMismatch, "enrollment token %s is for %s, not %s", tok.ID, FormatSite(site), FormatSite(*req.Site))
		}
		if req.Site.Lat != 0 || req.Site.Lon != 0 {
			site.Lat, site.Lon = req.Site.Lat, req.Site.Lon
		}
	}

	var d Device
	kind := EventEnrolled
	if existing != nil {
		if !existing.ReprovisionAllowed {
			if existing.State == StateRevoked {
				return nil, nil, refuse(ReasonDeviceRevoked, "this board (%s) was device %s, which is revoked; an administrator must allow re-provisioning (kentonganctl device allow-reprovision %s)",
					req.Hardware, existing.ID, existing.ID)
			}
			return nil, nil, refuse(ReasonAlreadyProvisioned, "this board (%s) is already device %s; an administrator must allow re-provisioning (kentonganctl device allow-reprovision %s)",
				req.Hardware, existing.ID, existing.ID)
		}
		d = *existing
		kind = EventReprovisioned
	} else {
		id, err := s.newDeviceID(ctx, site)
		if err != nil {
			return nil, nil, err
		}
		d = Device{ID: id, Source: SourceEnrolled, Hardware: req.Hardware, EnrolledAt: now}
	}
	d.Site = site
	d.Name = cmp.Or(tok.Name, defaultName(site))
	d.SMSAllow = slices.Clone(tok.SMSAllow)
	d.State = StateActive
	d.ReprovisionAllowed = false
	d.TokenID = tok.ID
	if err := s.issue(&d, csr, keyFP, req, now); err != nil {
		return nil, nil, err
	}
	ev := Event{At: now, Kind: kind, Actor: "token " + tok.ID, Firmware: req.Firmware,
		Detail: fmt.Sprintf("at %s, token by %s", FormatSite(site), tok.CreatedBy)}
	if err := s.opts.Store.SaveEnrollment(ctx, tok.ID, now, &d, ev); err != nil {
		if hub.ErrorCode(err) == hub.CodeConflict {
			return nil, nil, refuse(ReasonTokenUsed, "enrollment token %s was already used", tok.ID)
		}
		return nil, nil, fmt.Errorf("enroll: %w", err)
	}
	if kind == EventReprovisioned {
		s.disconnect(d.ID)
	}
	s.log.Info("device "+kind, "device", d.ID, "site", FormatSite(site), "hardware", d.Hardware.String(), "firmware", d.Firmware,
		"token", tok.ID, "serial", d.CertSerial)
	return s.response(&d), &d, nil
}

func (s *Service) issue(d *Device, csr *x509.CertificateRequest, keyFP string, req Request, now time.Time) error {
	is, err := s.opts.CA.SignDevice(csr, d.ID, now)
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	d.CertPEM, d.CertSerial, d.CertFingerprint, d.CertNotAfter = is.PEM, is.Serial, is.Fingerprint, is.NotAfter
	d.KeyFingerprint = keyFP
	d.Firmware = req.Firmware
	d.UpdatedAt = now
	return nil
}

func (s *Service) disconnect(id string) {
	if s.opts.Disconnect != nil {
		if n := s.opts.Disconnect(id); n > 0 {
			s.log.Info("device disconnected from the broker", "device", id, "connections", n)
		}
	}
}

func (s *Service) response(d *Device) *Response {
	p := s.opts.Profile
	allow := d.SMSAllow
	if allow == nil {
		allow = []string{}
	}
	return &Response{
		DeviceID: d.ID, Name: d.Name, Site: d.Site, CertPEM: d.CertPEM, CAPEM: s.opts.CA.PEM(), BrokerURL: s.opts.BrokerURL(),
		Config: DeviceConfig{Buttons: slices.Clone(p.Buttons), LEDs: slices.Clone(p.LEDs), SMSAllow: allow,
			SupervisionInterval: Duration(p.SupervisionInterval), HeartbeatInterval: Duration(p.HeartbeatInterval)},
	}
}

// HubDevice is d as ingest's registry entry.
func (d *Device) HubDevice() hub.Device {
	return hub.Device{ID: d.ID, Name: d.Name, Site: d.Site, RTRWHeads: slices.Clone(d.SMSAllow)}
}

// newDeviceID names a device after its post: "ciakar-rw03-rt02", then "-2", "-3" … if taken.
func (s *Service) newDeviceID(ctx context.Context, site hub.Site) (string, error) {
	base := slug(site.Kelurahan) + "-rw" + slug(site.RW) + "-rt" + slug(site.RT)
	if len(base) > 56 {
		base = strings.TrimRight(base[:56], "-")
	}
	for n := 1; n < 1000; n++ {
		id := base
		if n > 1 {
			id = fmt.Sprintf("%s-%d", base, n)
		}
		if mqtt.ValidateDeviceID(id) != nil {
			return "", fmt.Errorf("enroll: device ID %q from site is invalid", id)
		}
		if _, ok := s.static[id]; ok {
			continue
		}
		_, err := s.opts.Store.Device(ctx, id)
		if hub.ErrorCode(err) == hub.CodeNotFound {
			return id, nil
		}
		if err != nil {
			return "", fmt.Errorf("enroll: %w", err)
		}
	}
	return "", fmt.Errorf("enroll: no free device ID for %s", base)
}

func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if out == "" {
		return "x"
	}
	return out
}

func defaultName(s hub.Site) string {
	return fmt.Sprintf("Pos RT %s/RW %s %s", s.RT, s.RW, s.Kelurahan)
}

// sameSite compares the administrative units, ignoring case, blanks and leading zeros of RW
// and RT ("03" is "3").
func sameSite(a, b hub.Site) bool {
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	num := func(s string) string { return cmp.Or(strings.TrimLeft(norm(s), "0"), "0") }
	return norm(a.Kecamatan) == norm(b.Kecamatan) && norm(a.Kelurahan) == norm(b.Kelurahan) &&
		num(a.RW) == num(b.RW) && num(a.RT) == num(b.RT)
}

func checkSite(s hub.Site, required bool) error {
	for _, f := range []struct{ name, v string }{{"site.kecamatan", s.Kecamatan}, {"site.kelurahan", s.Kelurahan}, {"site.rw", s.RW}, {"site.rt", s.RT}} {
		if err := checkText(f.name, f.v, required); err != nil {
			return err
		}
	}
	if math.IsNaN(s.Lat) || s.Lat < -90 || s.Lat > 90 {
		return hub.Errorf(hub.CodeInvalid, "site.lat: %v is outside -90..90", s.Lat)
	}
	if math.IsNaN(s.Lon) || s.Lon < -180 || s.Lon > 180 {
		return hub.Errorf(hub.CodeInvalid, "site.lon: %v is outside -180..180", s.Lon)
	}
	return nil
}

func checkText(name, v string, required bool) error {
	if strings.TrimSpace(v) == "" {
		if required {
			return hub.Errorf(hub.CodeInvalid, "%s is missing", name)
		}
		return nil
	}
	if len(v) > maxField {
		return hub.Errorf(hub.CodeInvalid, "%s is longer than %d bytes", name, maxField)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return hub.Errorf(hub.CodeInvalid, "%s holds a control or invalid character", name)
		}
	}
	return nil
}

func prefixOf(token string) string {
	if len(token) > len(TokenPrefix)+6 {
		return token[:len(TokenPrefix)+6]
	}
	return token
}

// wib is Western Indonesia Time, which administrators read.
var wib = time.FixedZone("WIB", 7*3600)
