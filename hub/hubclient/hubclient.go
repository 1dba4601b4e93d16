// Package hubclient is a Go client of the hub's JSON API (docs/api.md), used by kentonganctl and
// the demo fleet.
package hubclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/kentongan/kentongan/hub"
)

// Client talks to one hub.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// New returns a client for the hub at base, e.g. "http://localhost:8080". A nil hc means
// http.DefaultClient.
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
}

// WithToken returns a copy of c that authenticates with an API token ("Authorization: Bearer"),
// as every API call but /healthz must.
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// BaseURL is the hub's address as given to New.
func (c *Client) BaseURL() string { return c.base }

// Error is an error answer from the hub.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("hub answered %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("hub answered %d (%s): %s", e.Status, e.Code, e.Message)
}

// Tickets lists tickets, newest first.
func (c *Client) Tickets(ctx context.Context, f hub.TicketFilter) ([]hub.Ticket, error) {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	if f.DeviceID != "" {
		q.Set("device_id", f.DeviceID)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []hub.Ticket
	if err := c.do(ctx, http.MethodGet, "/api/v1/tickets?"+q.Encode(), nil, &out); err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return out, nil
}

// Ticket fetches one ticket.
func (c *Client) Ticket(ctx context.Context, id string) (hub.Ticket, error) {
	var out hub.Ticket
	if err := c.do(ctx, http.MethodGet, "/api/v1/tickets/"+url.PathEscape(id), nil, &out); err != nil {
		return hub.Ticket{}, fmt.Errorf("get ticket %s: %w", id, err)
	}
	return out, nil
}

// Acknowledge records that the token's user has taken the ticket on; the kiosk's LED follows.
// by may be "" (the hub records the token's user) or that user's name; any other name is
// refused.
func (c *Client) Acknowledge(ctx context.Context, id, by, note string) (hub.Ticket, error) {
	req := map[string]string{"note": note}
	if by != "" {
		req["by"] = by
	}
	body, _ := json.Marshal(req)
	var out hub.Ticket
	if err := c.do(ctx, http.MethodPost, "/api/v1/tickets/"+url.PathEscape(id)+"/ack", body, &out); err != nil {
		return hub.Ticket{}, fmt.Errorf("acknowledge ticket %s: %w", id, err)
	}
	return out, nil
}

// Status returns the hub's counters as the API gives them.
func (c *Client) Status(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	if err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, &out); err != nil {
		return nil, fmt.Errorf("hub status: %w", err)
	}
	return out, nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
