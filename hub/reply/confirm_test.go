package reply_test

import (
	"strings"
	"testing"

	"github.com/kentongan/kentongan/hub/reply"
)

func TestConfirmTextsFitOneSMS(t *testing.T) {
	places := []string{"", "Pos Ronda RW 03 Ciakar", "Pos Kamling Perumahan Griya Asri Blok C RT 001 RW 012 Kelurahan Sukamulya 🚨"}
	for _, l := range langs {
		for _, tk := range tickets {
			for _, p := range places {
				text := reply.ConfirmRequest(l, tk, p)
				checkSMS(t, "ConfirmRequest("+l+", "+tk+", "+p+")", text)
				if !strings.Contains(text, "YA "+tk) || !strings.Contains(text, "TIDAK "+tk) {
					t.Errorf("ConfirmRequest(%s, %s) = %q: the answers must be spelled out with the ticket", l, tk, text)
				}
			}
			for _, yes := range []bool{true, false} {
				for _, o := range []string{reply.ConfirmRecorded, reply.ConfirmNotFound, reply.ConfirmNotHead} {
					checkSMS(t, "ConfirmReply("+l+", "+tk+", "+o+")", reply.ConfirmReply(l, tk, yes, o))
				}
			}
			checkSMS(t, "ConfirmReply without ticket", reply.ConfirmReply(l, "", true, reply.ConfirmNotFound))
		}
	}
	if got := reply.ConfirmRequest("id", "112-000123", "Pos Ronda RW 03 Ciakar"); got !=
		"Tombol darurat di Pos Ronda RW 03 Ciakar ditekan, tiket 112-000123. Balas YA 112-000123 jika benar darurat, TIDAK 112-000123 jika bukan." {
		t.Errorf("Indonesian request: %q", got)
	}
	if yes, no := reply.ConfirmReply("id", "112-000123", true, reply.ConfirmRecorded), reply.ConfirmReply("id", "112-000123", false, reply.ConfirmRecorded); yes == no ||
		!strings.Contains(yes, "YA") || !strings.Contains(no, "TIDAK") {
		t.Errorf("replies do not say which answer was recorded: %q / %q", yes, no)
	}
}
