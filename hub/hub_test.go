package hub_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/mqtt"
)

func TestCheckTransition(t *testing.T) {
	all := []hub.Status{hub.StatusNew, hub.StatusAcknowledged, hub.StatusDispatched, hub.StatusResolved,
		hub.StatusClosed, hub.StatusCancelled, hub.StatusDuplicate}
	legal := map[[2]hub.Status]bool{
		{hub.StatusNew, hub.StatusAcknowledged}:        true,
		{hub.StatusNew, hub.StatusCancelled}:           true,
		{hub.StatusNew, hub.StatusDuplicate}:           true,
		{hub.StatusAcknowledged, hub.StatusDispatched}: true,
		{hub.StatusAcknowledged, hub.StatusResolved}:   true,
		{hub.StatusAcknowledged, hub.StatusCancelled}:  true,
		{hub.StatusAcknowledged, hub.StatusDuplicate}:  true,
		{hub.StatusDispatched, hub.StatusResolved}:     true,
		{hub.StatusDispatched, hub.StatusCancelled}:    true,
		{hub.StatusResolved, hub.StatusClosed}:         true,
		{hub.StatusCancelled, hub.StatusClosed}:        true,
		{hub.StatusDuplicate, hub.StatusClosed}:        true,
	}
	for _, from := range all {
		for _, to := range all {
			err := hub.CheckTransition(from, to)
			if legal[[2]hub.Status{from, to}] {
				if err != nil {
					t.Errorf("%s → %s: %v, want allowed", from, to, err)
				}
				continue
			}
			if hub.ErrorCode(err) != hub.CodeConflict || hub.ErrorMessage(err) == "" {
				t.Errorf("%s → %s: %v, want a conflict with a message", from, to, err)
			}
		}
	}
	if err := hub.CheckTransition("lost", hub.StatusNew); hub.ErrorCode(err) != hub.CodeInvalid {
		t.Errorf("from unknown status: %v, want invalid", err)
	}
}

func TestErrorCode(t *testing.T) {
	nf := hub.Errorf(hub.CodeNotFound, "ticket %q not found", "x")
	for _, tt := range []struct {
		err      error
		code     string
		message  string
		wrapsCtx bool
	}{
		{nil, "", "", false},
		{nf, hub.CodeNotFound, `ticket "x" not found`, false},
		{fmt.Errorf("get ticket: %w", nf), hub.CodeNotFound, `ticket "x" not found`, false},
		{errors.New("disk I/O error at /var/lib/x"), hub.CodeInternal, "internal error", false},
	} {
		if got := hub.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.code)
		}
		if got := hub.ErrorMessage(tt.err); got != tt.message {
			t.Errorf("ErrorMessage(%v) = %q, want %q", tt.err, got, tt.message)
		}
	}
	cause := errors.New("cause")
	if err := (&hub.Error{Code: hub.CodeInternal, Message: "m", Err: cause}); !errors.Is(err, cause) {
		t.Errorf("*Error does not unwrap to its cause")
	}
}

func TestPriorityFor(t *testing.T) {
	for _, tt := range []struct {
		source, category string
		emergency        bool
		want             hub.Priority
	}{
		{mqtt.SourceButton, "", false, hub.PriorityEmergency},
		{mqtt.SourceButton, "water", false, hub.PriorityEmergency},
		{mqtt.SourceSMS, "fire", false, hub.PriorityEmergency},
		{mqtt.SourceSMS, "", true, hub.PriorityEmergency},            // "DARURAT" with no category
		{mqtt.SourceSMS, "electricity", true, hub.PriorityEmergency}, // "DARURAT LISTRIK …"
		{mqtt.SourceSMS, "", false, hub.PriorityNormal},
		{mqtt.SourceSMS, "streetlight", false, hub.PriorityNormal},
		{mqtt.SourceTamper, "", false, hub.PriorityNormal},
	} {
		if got := hub.PriorityFor(tt.source, tt.category, tt.emergency); got != tt.want {
			t.Errorf("PriorityFor(%q, %q, %v) = %q, want %q", tt.source, tt.category, tt.emergency, got, tt.want)
		}
	}
}

func TestAckStatus(t *testing.T) {
	if hub.StatusNew.AckStatus() != mqtt.AckReceived || hub.StatusAcknowledged.AckStatus() != mqtt.AckAcknowledged {
		t.Errorf("AckStatus: new → %q, acknowledged → %q", hub.StatusNew.AckStatus(), hub.StatusAcknowledged.AckStatus())
	}
}
