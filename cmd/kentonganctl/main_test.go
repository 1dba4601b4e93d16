package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/hubd"
	"github.com/kentongan/kentongan/mqtt"
)

func startHub(t *testing.T) *hubd.Main {
	t.Helper()
	m := hubd.NewMain()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.ParseFlags(context.Background(), []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	m.Config.Devices = append(m.Config.Devices, hubd.DeviceConfig{ID: "ciakar-rw03", Name: "Pos Ronda RW 03 Ciakar"})
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestTicketsAndAck(t *testing.T) {
	m := startHub(t)
	id, _ := mqtt.NewIncidentID()
	res, err := m.Store.Ingest(context.Background(), []hub.NewTicket{{
		IncidentID: id, DeviceID: "ciakar-rw03", Source: mqtt.SourceButton, Button: "kebakaran",
		Category: "fire", Priority: hub.PriorityEmergency, OccurredAt: time.Now(),
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("ingest: %v %+v", err, res)
	}
	number := res[0].Ticket.Number
	url := "http://" + m.HTTPAddr()
	ctx := context.Background()
	token, err := m.IssueToken(ctx, "operator-1", account.RoleOperator, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KENTONGAN_TOKEN", token)

	var out, errb bytes.Buffer
	if code := run(ctx, []string{"tickets", "--hub", url}, &out, &errb); code != 0 {
		t.Fatalf("tickets exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), number) || !strings.Contains(out.String(), "new") || !strings.Contains(out.String(), "fire") {
		t.Fatalf("tickets output lacks %s new fire:\n%s", number, out.String())
	}

	out.Reset()
	errb.Reset()
	if code := run(ctx, []string{"ack", "--hub", url, "--note", "tim menuju", number}, &out, &errb); code != 0 {
		t.Fatalf("ack exit %d: %s", code, errb.String())
	}
	got, err := m.Store.Ticket(ctx, res[0].Ticket.ID)
	if err != nil || got.Status != hub.StatusAcknowledged || got.AcknowledgedBy != "operator-1" {
		t.Fatalf("after ack: %+v, %v", got, err)
	}

	if !strings.Contains(out.String(), "acknowledged by operator-1") {
		t.Errorf("ack output: %q", out.String())
	}

	// A second ack is refused by the hub, and the CLI says so with a failing exit code.
	errb.Reset()
	if code := run(ctx, []string{"ack", "--hub", url, "--by", "operator-1", number}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "conflict") {
		t.Fatalf("second ack: exit %d, stderr %q; want 1 and a conflict", code, errb.String())
	}

	// Without a token, or with a wrong one, nothing is listed.
	errb.Reset()
	if code := run(ctx, []string{"tickets", "--hub", url, "--token", ""}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "token is required") {
		t.Errorf("no token: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run(ctx, []string{"tickets", "--hub", url, "--token", "ktg_wrong"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "401") {
		t.Errorf("wrong token: exit %d, stderr %q", code, errb.String())
	}
}

func TestUsageErrors(t *testing.T) {
	ctx := context.Background()
	var out, errb bytes.Buffer
	for _, args := range [][]string{nil, {"frobnicate"}, {"ack"}, {"tickets", "extra"}, {"tickets", "--nope"}} {
		errb.Reset()
		if code := run(ctx, args, &out, &errb); code != 2 {
			t.Errorf("run(%q) exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
	if code := run(ctx, []string{"ack", "--hub", "http://127.0.0.1:1", "--token", "ktg_x", "112-000001"}, &out, &errb); code != 1 {
		t.Errorf("ack against an unreachable hub exit %d, want 1", code)
	}
}
