package gpio_test

import (
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/gpio"
)

func TestResolveIn(t *testing.T) {
	c := gpio.ResolveIn()
	if c.Pull != gpio.Float || c.Edge != gpio.BothEdges || c.Debounce != 0 {
		t.Fatalf("defaults %+v", c)
	}
	c = gpio.ResolveIn(gpio.WithPullUp, gpio.WithDebounce(30*time.Millisecond), gpio.WithFallingEdge)
	if c.Pull != gpio.PullUp || c.Edge != gpio.FallingEdge || c.Debounce != 30*time.Millisecond {
		t.Fatalf("options not applied: %+v", c)
	}
	if o := gpio.ResolveOut(gpio.WithInitial(gpio.High)); o.Initial != gpio.High {
		t.Fatalf("initial %s", o.Initial)
	}
}

func TestEdgeMatches(t *testing.T) {
	for _, tc := range []struct {
		e          gpio.Edge
		rise, fall bool
	}{
		{gpio.BothEdges, true, true},
		{gpio.RisingEdge, true, false},
		{gpio.FallingEdge, false, true},
		{gpio.NoEdge, false, false},
	} {
		if tc.e.Matches(gpio.High) != tc.rise || tc.e.Matches(gpio.Low) != tc.fall {
			t.Errorf("%s: rise %v fall %v", tc.e, tc.e.Matches(gpio.High), tc.e.Matches(gpio.Low))
		}
	}
}
