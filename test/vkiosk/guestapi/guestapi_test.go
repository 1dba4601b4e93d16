package guestapi

import (
	"strings"
	"testing"
)

func TestSequenceValidateRefusesBadSteps(t *testing.T) {
	ok := Sequence{Line: 17, Steps: []Step{{Pull: PullDown, MS: 50}, {Pull: PullUp}}}
	if err := ok.Validate(32); err != nil {
		t.Fatalf("valid sequence refused: %v", err)
	}
	for _, c := range []struct {
		seq  Sequence
		want string
	}{
		{Sequence{Line: 32, Steps: ok.Steps}, "lines 0..31"},
		{Sequence{Line: -1, Steps: ok.Steps}, "lines 0..31"},
		{Sequence{Line: 3}, "no steps"},
		{Sequence{Line: 3, Steps: []Step{{Pull: "down", MS: 5}}}, `pull "down"`},
		{Sequence{Line: 3, Steps: []Step{{Pull: PullUp, MS: -1}}}, "out of range"},
		{Sequence{Line: 3, Steps: []Step{{Pull: PullUp, MS: 600_001}}}, "out of range"},
	} {
		err := c.seq.Validate(32)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one saying %q", c.seq, err, c.want)
		}
	}
}
