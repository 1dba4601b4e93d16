package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestQuickLatency runs the quick form of measurements a and b and checks that the table has a
// figure in every row: the runner still works end to end (hub, kiosk, broker), whatever the
// figures are on this machine.
func TestQuickLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub and a kiosk")
	}
	rows, err := Run(context.Background(), Config{
		Quick: true,
		Only:  map[string]bool{"a": true, "b": true},
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, Markdown(rows))
	}
	want := []string{"a. MQTT QoS 1 round trip p50", "a. MQTT QoS 1 round trip p99", "b. press→received ack p50", "b. press→received ack p99", "b. press→received ack max"}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d:\n%s", len(rows), len(want), Markdown(rows))
	}
	for i, r := range rows {
		if !strings.HasPrefix(r.Measurement, want[i]) {
			t.Errorf("row %d is %q, want %q", i, r.Measurement, want[i])
		}
		if !strings.HasSuffix(r.Value, " ms") || r.Value == "0.00 ms" {
			t.Errorf("row %q has no figure: %q", r.Measurement, r.Value)
		}
	}
	for _, r := range rows[2:4] {
		if r.Goal == "" || (r.Met != "met" && r.Met != "not met") {
			t.Errorf("row %q is not checked against its goal: %+v", r.Measurement, r)
		}
	}
	table := Markdown(rows)
	if n := strings.Count(table, "\n"); n != len(rows)+2 {
		t.Errorf("table has %d lines for %d rows:\n%s", n, len(rows), table)
	}
}

func TestMarkdownDashesEmptyCells(t *testing.T) {
	got := Markdown([]Row{{Measurement: "x", Value: "1 ms"}})
	if !strings.Contains(got, "| x | 1 ms | — | — |  |") {
		t.Errorf("Markdown = %q", got)
	}
}
