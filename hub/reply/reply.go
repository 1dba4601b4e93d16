// Package reply writes the SMS texts the hub sends back to the people who report: the receipt of
// a report, the ticket's progress, and the answers to STATUS and BATAL.
//
// Every text is in Bahasa Indonesia by default and in English on request, and fits one 160-septet
// GSM 7-bit SMS for inputs of normal length: the templates use only the GSM alphabet, values are
// cleaned into it, and an operator's long note is shortened rather than split over several SMS.
// The package takes plain values, not the hub's types, so the hub can use it without a cycle.
package reply

import (
	"fmt"
	"strings"
)

// Languages.
const (
	Indonesian = "id"
	English    = "en"
)

// lang reads a language tag: English for "en", "EN", "en-US", Indonesian for anything else.
func lang(l string) string {
	l = strings.ToLower(strings.TrimSpace(l))
	if l == English || strings.HasPrefix(l, "en-") || strings.HasPrefix(l, "en_") {
		return English
	}
	return Indonesian
}

// pick returns the text for lang l.
func pick(l, id, en string) string {
	if lang(l) == English {
		return en
	}
	return id
}

// Ticket statuses, as the hub names them. "received" is what a device is told for a new ticket.
const (
	statusNew          = "new"
	statusReceived     = "received"
	statusAcknowledged = "acknowledged"
	statusDispatched   = "dispatched"
	statusResolved     = "resolved"
	statusClosed       = "closed"
	statusCancelled    = "cancelled"
	statusDuplicate    = "duplicate"
)

// categoryNames are the names residents read for the hub's categories.
var categoryNames = map[string][2]string{ // [id, en]
	"panic":          {"tombol darurat", "panic button"},
	"fire":           {"kebakaran", "fire"},
	"medical":        {"medis", "medical"},
	"crime":          {"kriminal", "crime"},
	"disaster":       {"bencana", "disaster"},
	"accident":       {"kecelakaan", "accident"},
	"electricity":    {"listrik", "electricity"},
	"water":          {"air", "water"},
	"road":           {"jalan", "road"},
	"waste":          {"sampah", "waste"},
	"administration": {"administrasi", "administration"},
	"social":         {"sosial", "social"},
	"other":          {"lainnya", "other"},
}

// CategoryName is a category as residents read it: "fire" is "kebakaran" in Indonesian. An
// unknown category is returned cleaned, as it is; "" stays "".
func CategoryName(lang, category string) string {
	names, ok := categoryNames[category]
	if !ok {
		return clean(category)
	}
	return pick(lang, names[0], names[1])
}

// Receipt confirms a report: its ticket number, its category and urgency, and how to follow it.
func Receipt(lang, ticketNumber, category string, emergency bool) string {
	t := clean(ticketNumber)
	var tags []string
	if c := CategoryName(lang, category); c != "" {
		tags = append(tags, c)
	}
	if emergency {
		tags = append(tags, pick(lang, "DARURAT", "EMERGENCY"))
	}
	tag := ""
	if len(tags) > 0 {
		tag = " (" + strings.Join(tags, ", ") + ")"
	}
	if emergency {
		return pick(lang,
			fmt.Sprintf("Laporan diterima. No tiket %s%s. Petugas 112 segera menindaklanjuti. Cek: STATUS %s", t, tag, t),
			fmt.Sprintf("Report received. Ticket no %s%s. 112 officers are responding now. Check: STATUS %s", t, tag, t))
	}
	return pick(lang,
		fmt.Sprintf("Terima kasih, laporan diterima. No tiket %s%s. Petugas akan menindaklanjuti. Cek: STATUS %s", t, tag, t),
		fmt.Sprintf("Thank you, report received. Ticket no %s%s. Officers will follow it up. Check: STATUS %s", t, tag, t))
}

// StatusUpdate tells the reporter that their ticket moved to status (one of "acknowledged",
// "dispatched", "resolved", "closed", "cancelled", "duplicate"; "new" and "received" are also
// understood). agency is who was dispatched ("Damkar"), note the operator's word to the
// reporter; either may be "".
func StatusUpdate(lang, ticketNumber, status, agency, note string) string {
	t, a := clean(ticketNumber), clean(agency)
	// Most updates are a sentence, then the note if any.
	sentence := func(id, en string) string {
		s := pick(lang, id, en)
		return withNote(s, s, pick(lang, " Catatan: ", " Note: "), note, "")
	}
	switch status {
	case statusNew, statusReceived:
		return sentence(
			fmt.Sprintf("Tiket %s telah diterima dan menunggu petugas 112.", t),
			fmt.Sprintf("Ticket %s has been received and is waiting for a 112 officer.", t))
	case statusAcknowledged:
		return sentence(
			fmt.Sprintf("Tiket %s sedang ditangani petugas 112.", t),
			fmt.Sprintf("Ticket %s is being handled by a 112 officer.", t))
	case statusDispatched:
		if a == "" {
			return sentence(
				fmt.Sprintf("Tiket %s: petugas sedang menuju lokasi.", t),
				fmt.Sprintf("Ticket %s: officers are on their way.", t))
		}
		return sentence(
			fmt.Sprintf("Tiket %s telah diteruskan ke %s. Petugas sedang menuju lokasi.", t, a),
			fmt.Sprintf("Ticket %s has been passed to %s. Officers are on their way.", t, a))
	case statusResolved:
		return withNote(
			pick(lang,
				fmt.Sprintf("Tiket %s selesai ditangani. Terima kasih atas laporan Anda.", t),
				fmt.Sprintf("Ticket %s has been resolved. Thank you for your report.", t)),
			pick(lang, "Tiket "+t+" selesai", "Ticket "+t+" resolved"), ": ", note,
			pick(lang, " Terima kasih.", " Thank you."))
	case statusClosed:
		return sentence(
			fmt.Sprintf("Tiket %s telah ditutup. Terima kasih atas laporan Anda.", t),
			fmt.Sprintf("Ticket %s has been closed. Thank you for your report.", t))
	case statusCancelled:
		head := pick(lang, fmt.Sprintf("Tiket %s dibatalkan.", t), fmt.Sprintf("Ticket %s has been cancelled.", t))
		tail := pick(lang, " Bila masih perlu bantuan, telepon 112.", " If you still need help, call 112.")
		return withNote(head+tail, head, pick(lang, " Alasan: ", " Reason: "), note, tail)
	case statusDuplicate:
		return sentence(
			fmt.Sprintf("Tiket %s digabung dengan laporan lain atas kejadian yang sama dan tetap ditangani petugas 112.", t),
			fmt.Sprintf("Ticket %s was merged with another report of the same incident and is still being handled.", t))
	}
	return sentence(
		fmt.Sprintf("Status tiket %s: %s.", t, clean(status)),
		fmt.Sprintf("Ticket %s status: %s.", t, clean(status)))
}

// statusPhrases say where a ticket is, in answer to STATUS.
var statusPhrases = map[string][2]string{ // [id, en]
	statusNew:          {"diterima, menunggu petugas 112", "received, waiting for a 112 officer"},
	statusReceived:     {"diterima, menunggu petugas 112", "received, waiting for a 112 officer"},
	statusAcknowledged: {"sedang ditangani petugas 112", "being handled by a 112 officer"},
	statusDispatched:   {"petugas sedang menuju lokasi", "officers are on their way"},
	statusResolved:     {"selesai ditangani", "resolved"},
	statusClosed:       {"selesai dan ditutup", "resolved and closed"},
	statusCancelled:    {"dibatalkan", "cancelled"},
	statusDuplicate:    {"digabung dengan laporan lain atas kejadian yang sama", "merged with another report of the same incident"},
}

// StatusReply answers STATUS <ticketNumber>: where the ticket is, or, when it was not found (or
// no number was given), how to ask.
func StatusReply(lang, ticketNumber, status string, found bool) string {
	t := clean(ticketNumber)
	switch {
	case t == "":
		return pick(lang,
			"Mohon sertakan nomor tiket dari SMS tanda terima. Contoh: STATUS 112-000123",
			"Please include the ticket number from your receipt SMS. Example: STATUS 112-000123")
	case !found:
		return pick(lang,
			fmt.Sprintf("Tiket %s tidak ditemukan. Mohon periksa nomor tiket pada SMS tanda terima. Contoh: STATUS 112-000123", t),
			fmt.Sprintf("Ticket %s was not found. Please check the number on your receipt SMS. Example: STATUS 112-000123", t))
	}
	phrase, ok := statusPhrases[status]
	if !ok {
		phrase = [2]string{clean(status), clean(status)}
	}
	return pick(lang,
		fmt.Sprintf("Status tiket %s: %s. Terima kasih.", t, phrase[0]),
		fmt.Sprintf("Ticket %s: %s. Thank you.", t, phrase[1]))
}

// Reasons a cancellation is refused, as the hub's ingest labels them; CancelReply words them for
// the reporter. Any other reason that is a sentence is sent as it is, so it should be written for
// residents; a single word is taken for an unknown label and not shown.
const (
	// ReasonNotFound: there is no such ticket.
	ReasonNotFound = "not_found"
	// ReasonNotReporter: the ticket was reported by someone else.
	ReasonNotReporter = "not_reporter"
	// ReasonTooLate: officers are already on it, or it is over, so only 112 can change it.
	ReasonTooLate = "too_late"
)

// CancelReply answers BATAL <ticketNumber>: that the ticket was cancelled, or why not.
func CancelReply(lang, ticketNumber string, ok bool, reason string) string {
	t := clean(ticketNumber)
	switch {
	case t == "":
		return pick(lang,
			"Mohon sertakan nomor tiket dari SMS tanda terima. Contoh: BATAL 112-000123",
			"Please include the ticket number from your receipt SMS. Example: BATAL 112-000123")
	case ok:
		return pick(lang,
			fmt.Sprintf("Tiket %s telah dibatalkan sesuai permintaan Anda. Terima kasih.", t),
			fmt.Sprintf("Ticket %s has been cancelled as you asked. Thank you.", t))
	}
	switch reason {
	case ReasonNotFound:
		return pick(lang,
			fmt.Sprintf("Tiket %s tidak ditemukan. Mohon periksa nomor tiket pada SMS tanda terima. Contoh: BATAL 112-000123", t),
			fmt.Sprintf("Ticket %s was not found. Please check the number on your receipt SMS. Example: BATAL 112-000123", t))
	case ReasonNotReporter:
		return pick(lang,
			fmt.Sprintf("Tiket %s tidak dapat dibatalkan karena bukan laporan dari nomor ini.", t),
			fmt.Sprintf("Ticket %s cannot be cancelled because it was not reported from this number.", t))
	case ReasonTooLate:
		return pick(lang,
			fmt.Sprintf("Tiket %s tidak dapat dibatalkan lagi karena sudah ditangani petugas. Mohon telepon 112.", t),
			fmt.Sprintf("Ticket %s can no longer be cancelled because officers have taken it on. Please call 112.", t))
	}
	if !strings.Contains(strings.TrimSpace(reason), " ") {
		reason = ""
	}
	head := pick(lang, fmt.Sprintf("Tiket %s tidak dapat dibatalkan", t), fmt.Sprintf("Ticket %s cannot be cancelled", t))
	tail := pick(lang, " Informasi: telepon 112.", " For help, call 112.")
	return withNote(head+"."+tail, head, ": ", reason, tail)
}

// Unknown answers a sender who is not on the kiosk's list of RT/RW heads: the kiosk is not
// theirs to report through, and 112 is.
func Unknown(lang string) string {
	return pick(lang,
		"Mohon maaf, nomor ini hanya menerima laporan dari Ketua RT/RW yang terdaftar. Untuk keadaan darurat, segera telepon 112.",
		"Sorry, this number only takes reports from registered RT/RW heads. In an emergency, call 112 now.")
}

// RateLimited answers a sender who sent too many texts too quickly.
func RateLimited(lang string) string {
	return pick(lang,
		"Mohon maaf, SMS dari nomor Anda terlalu sering. Mohon tunggu beberapa menit sebelum mengirim lagi. Untuk keadaan darurat, telepon 112.",
		"Sorry, too many SMS from your number. Please wait a few minutes before sending again. In an emergency, call 112.")
}
