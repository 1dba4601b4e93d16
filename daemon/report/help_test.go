package report_test

import (
	"strings"
	"testing"

	"github.com/kentongan/kentongan/daemon/report"
	"github.com/kentongan/kentongan/drivers/modem/pdu"
)

// gsm7Len counts the septets of s in the GSM 03.38 default alphabet, extension characters
// counting two; ok is false when s has a character outside it.
func gsm7Len(s string) (n int, ok bool) { return pdu.GSM7Len(s) }

func TestHelpText(t *testing.T) {
	for _, lang := range []string{"id", "en"} {
		text := report.HelpText(lang)
		n, ok := gsm7Len(text)
		if !ok || n > 160 {
			t.Errorf("HelpText(%q) is %d septets (GSM-7: %v), want one SMS: %s", lang, n, ok, text)
		}
		// Every command it shows must be one the parser reads.
		for _, example := range []string{"DARURAT KEBAKARAN RT03", "LAPOR JALAN rusak", "STATUS 112-000123", "BATAL 112-000123"} {
			if !strings.Contains(text, strings.Fields(example)[0]) {
				t.Errorf("HelpText(%q) does not mention %s", lang, strings.Fields(example)[0])
			}
		}
		for _, word := range []string{"MEDIS", "MALING", "BANJIR", "LAKA"} {
			if r := report.Parse("DARURAT " + word); r.Category == "" {
				t.Errorf("HelpText lists %s, which Parse does not read", word)
			}
		}
	}
	if report.HelpText("") != report.HelpText("id") || report.HelpText("fr") != report.HelpText("id") {
		t.Error("the default language is not Indonesian")
	}
	if report.HelpText("EN-us") != report.HelpText("en") {
		t.Error("en-US is not English")
	}
	if report.HelpText("id") == report.HelpText("en") {
		t.Error("the texts are not translated")
	}
}
