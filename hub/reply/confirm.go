package reply

import "fmt"

// maxPlace bounds the name of a post in a confirmation request, so that the request stays one
// SMS; a longer name is cut at a word.
const maxPlace = 30

// ConfirmRequest asks an RT/RW head whether a press of the post's panic button is a real
// emergency, and how to answer: "YA <ticket>" or "TIDAK <ticket>". place names the post
// ("Pos Ronda RW 03 Ciakar"), or is "". The ticket is not held back while the heads decide.
func ConfirmRequest(lang, ticketNumber, place string) string {
	t, p := clean(ticketNumber), shorten(clean(place), maxPlace)
	where := ""
	if p != "" {
		where = pick(lang, " di "+p, " at "+p)
	}
	return pick(lang,
		fmt.Sprintf("Tombol darurat%s ditekan, tiket %s. Balas YA %s jika benar darurat, TIDAK %s jika bukan.", where, t, t, t),
		fmt.Sprintf("Panic button%s pressed, ticket %s. Reply YA %s if it is a real emergency, TIDAK %s if not.", where, t, t, t))
}

// Outcomes of a confirmation answer, as the hub's ingest labels them.
const (
	// ConfirmRecorded: the answer is on the ticket.
	ConfirmRecorded = "recorded"
	// ConfirmNotFound: no ticket of this post was named, or none is waiting for an answer.
	ConfirmNotFound = "not_found"
	// ConfirmNotHead: the sender is not one of the post's RT/RW heads.
	ConfirmNotHead = "not_head"
)

// ConfirmReply answers an RT/RW head's YA or TIDAK: thanks when it was recorded (yes says which
// answer), or why not.
func ConfirmReply(lang, ticketNumber string, yes bool, outcome string) string {
	t := clean(ticketNumber)
	switch outcome {
	case ConfirmRecorded:
		if yes {
			return pick(lang,
				fmt.Sprintf("Terima kasih. Konfirmasi YA untuk tiket %s dicatat; petugas 112 menanganinya sebagai darurat.", t),
				fmt.Sprintf("Thank you. Your YES for ticket %s is recorded; 112 officers treat it as an emergency.", t))
		}
		return pick(lang,
			fmt.Sprintf("Terima kasih. Jawaban TIDAK untuk tiket %s dicatat dan diteruskan ke petugas 112.", t),
			fmt.Sprintf("Thank you. Your NO for ticket %s is recorded and passed to 112 officers.", t))
	case ConfirmNotHead:
		return pick(lang,
			"Mohon maaf, konfirmasi hanya diterima dari Ketua RT/RW yang terdaftar di pos ini. Untuk keadaan darurat, telepon 112.",
			"Sorry, confirmations are taken only from the RT/RW heads registered at this post. In an emergency, call 112.")
	}
	if t == "" {
		return pick(lang,
			"Tidak ada tiket yang menunggu konfirmasi. Mohon sertakan nomor tiket, contoh: YA 112-000123",
			"No ticket is waiting for your answer. Please include the ticket number, e.g. YA 112-000123")
	}
	return pick(lang,
		fmt.Sprintf("Tiket %s tidak ditemukan di pos ini. Mohon periksa nomor tiket, contoh: YA 112-000123", t),
		fmt.Sprintf("Ticket %s was not found at this post. Please check the number, e.g. YA 112-000123", t))
}

// shorten cuts s to at most n characters, at a word boundary when one is near.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	cut := string(r[:n])
	for i := len(cut) - 1; i >= len(cut)/2; i-- {
		if cut[i] == ' ' {
			return cut[:i]
		}
	}
	return cut
}
