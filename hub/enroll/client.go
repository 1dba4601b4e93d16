package enroll

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/kentongan/kentongan/hub"
)

// TokenRequest is the body of POST /api/v1/enrollment-tokens. The site is given as an object
// (Site) or as SitePath ("kecamatan/kelurahan/RW/RT") with Lat and Lon beside it.
type TokenRequest struct {
	Site     *hub.Site `json:"site,omitempty"`
	SitePath string    `json:"site_path,omitempty"`
	Lat      *float64  `json:"lat,omitempty"`
	Lon      *float64  `json:"lon,omitempty"`
	Name     string    `json:"name,omitempty"`
	SMSAllow []string  `json:"sms_allow,omitempty"`
	// Expires is a Go duration ("24h", "90m"); default 24h.
	Expires string `json:"expires,omitempty"`
}

// CreatedToken is the answer to POST /api/v1/enrollment-tokens: the token's record and, this
// once, its secret.
type CreatedToken struct {
	*Token
	Secret string `json:"token"`
}

// ErrHubUnreachable means no answer came from the hub: a network or TLS failure, or the
// request's deadline. Retrying an enrollment after it is safe.
var ErrHubUnreachable = errors.New("hub unreachable")

// APIError is an error answer of the hub's API other than an enrollment refusal.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("hub answered %d (%s): %s", e.Status, e.Code, e.Message)
}

// Client calls the hub's provisioning endpoints: Enroll needs no API token, the others an
// administrator's.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// NewClient returns a client of the hub at base (http://hub:8080). A nil hc means
// http.DefaultClient.
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
}

// WithToken returns a copy of c that sends an API token.
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// Enroll enrolls a device. A refusal is an *Error (errors.Is matches its sentinel); no answer
// at all wraps ErrHubUnreachable.
func (c *Client) Enroll(ctx context.Context, req Request) (*Response, error) {
	var resp Response
	if err := c.do(ctx, http.MethodPost, EnrollPath, req, &resp, true); err != nil {
		return nil, err
	}
	return &resp, nil
}

// CreateToken makes an enrollment token.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (*CreatedToken, error) {
	var out CreatedToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/enrollment-tokens", req, &out, false); err != nil {
		return nil, fmt.Errorf("create enrollment token: %w", err)
	}
	return &out, nil
}

// Tokens lists enrollment tokens, newest first.
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	var out []Token
	if err := c.do(ctx, http.MethodGet, "/api/v1/enrollment-tokens", nil, &out, false); err != nil {
		return nil, fmt.Errorf("list enrollment tokens: %w", err)
	}
	return out, nil
}

// RevokeToken withdraws an unused enrollment token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	if err := c.do(ctx, http.MethodDelete, "/api/v1/enrollment-tokens/"+url.PathEscape(id), nil, nil, false); err != nil {
		return fmt.Errorf("revoke enrollment token %s: %w", id, err)
	}
	return nil
}

// Fleet lists the devices with their provisioning records.
func (c *Client) Fleet(ctx context.Context) ([]FleetDevice, error) {
	var out []FleetDevice
	if err := c.do(ctx, http.MethodGet, "/api/v1/devices", nil, &out, false); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// Revoke revokes a device's credentials.
func (c *Client) Revoke(ctx context.Context, id, reason string) (*Device, error) {
	var out Device
	body := map[string]string{"reason": reason}
	if err := c.do(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(id)+"/revoke", body, &out, false); err != nil {
		return nil, fmt.Errorf("revoke device %s: %w", id, err)
	}
	return &out, nil
}

// AllowReprovision lets the device's board enroll once more.
func (c *Client) AllowReprovision(ctx context.Context, id string) (*Device, error) {
	var out Device
	if err := c.do(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(id)+"/allow-reprovision", nil, &out, false); err != nil {
		return nil, fmt.Errorf("allow re-provisioning of %s: %w", id, err)
	}
	return &out, nil
}

// maxAnswer bounds an answer read; a fleet of thousands of kiosks is a few megabytes.
const maxAnswer = 64 << 20

func (c *Client) do(ctx context.Context, method, path string, body, out any, enrolling bool) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("hub URL %q: %w", c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" && !enrolling {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrHubUnreachable, c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%w at %s: reading the answer: %w", ErrHubUnreachable, c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
			return &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
		}
		if enrolling && eb.Error.Reason != "" {
			return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Reason: eb.Error.Reason, Message: eb.Error.Message}
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode the hub's answer: %w", err)
		}
	}
	return nil
}
