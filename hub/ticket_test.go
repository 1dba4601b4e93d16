package hub_test

import (
	"testing"

	"github.com/kentongan/kentongan/hub"
)

func TestParseNumber(t *testing.T) {
	for _, seq := range []int64{1, 123, 999999, 1000000, 123456789} {
		n, ok := hub.ParseNumber(hub.FormatNumber(seq))
		if !ok || n != seq {
			t.Errorf("ParseNumber(FormatNumber(%d)) = %d, %v", seq, n, ok)
		}
	}
	for _, bad := range []string{"", "112-", "112-123", "112-0000001", "112-000000", "113-000001", "112-00000a", "112--00001", "112-+00001", "0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"} {
		if n, ok := hub.ParseNumber(bad); ok {
			t.Errorf("ParseNumber(%q) = %d, true; want refused", bad, n)
		}
	}
}
