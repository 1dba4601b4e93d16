package report

import "strings"

// helpTexts are the answers to a help request, each within one 160-character GSM 7-bit SMS. The
// keywords stay in Indonesian in every language: they are what the kiosk reads.
var helpTexts = map[string]string{
	"id": "Contoh: DARURAT KEBAKARAN RT03 RW05 Jl Melati (atau MEDIS, MALING, BANJIR, LAKA). " +
		"LAPOR JALAN rusak depan masjid. STATUS 112-000123. BATAL 112-000123",
	"en": "Examples: DARURAT KEBAKARAN RT03 RW05 Jl Melati (or MEDIS, MALING, BANJIR, LAKA). " +
		"LAPOR JALAN broken near the mosque. STATUS 112-000123. BATAL 112-000123",
}

// HelpText is the answer to a help request in lang, "id" (the default for any other value) or
// "en": the commands with examples, in one SMS.
func HelpText(lang string) string {
	return helpTexts[Lang(lang)]
}

// Lang reads a language tag as the texts know it: "en" for English ("en", "EN", "en-US"), "id"
// for anything else.
func Lang(lang string) string {
	l := strings.ToLower(strings.TrimSpace(lang))
	if l == "en" || strings.HasPrefix(l, "en-") || strings.HasPrefix(l, "en_") {
		return "en"
	}
	return "id"
}
