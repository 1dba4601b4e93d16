package browser

import (
	"path/filepath"
	"testing"

	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/test/poll"
)

// BenchmarkPressToQueueRow measures what an operator waits for: from a panic press at a kiosk to
// the new row in an open queue page (kiosk → MQTT → ingest → store → event stream → fetch of the
// rows → DOM). Run it with:
//
//	go test ./test/browser -run '^$' -bench PressToQueueRow -benchtime 20x
func BenchmarkPressToQueueRow(b *testing.B) {
	ctx := newBrowser(b)
	h := startHub(b, ciakar)
	h.addUser("siti", "Siti Rahmawati", account.RoleOperator, "", "kentongan-siti-112")
	k := startKiosk(b, kioskConfig(ciakar.ID, h.m.BrokerURL(), filepath.Join(b.TempDir(), "kiosk")))
	login(b, ctx, h.base, "siti", "kentongan-siti-112")
	waitLive(b, ctx)
	count := `document.querySelectorAll("#queue-rows tr[data-id]").length`
	b.ResetTimer()
	for i := range b.N {
		k.press("darurat")
		poll.True(b, wait, "the new row", func() bool { return eval[int](b, ctx, count) > i })
	}
}
