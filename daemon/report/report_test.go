package report_test

import (
	"testing"

	"github.com/kentongan/kentongan/daemon/report"
)

func TestParse(t *testing.T) {
	type R = report.Report
	tests := []struct {
		text string
		want R
	}{
		// Emergencies, every category and synonym.
		{"DARURAT KEBAKARAN rumah pak Budi RT03", R{Kind: report.Emergency, Category: "fire", Detail: "rumah pak Budi RT03", Keyword: "DARURAT"}},
		{"darurat api di gang 5", R{Kind: report.Emergency, Category: "fire", Detail: "di gang 5", Keyword: "DARURAT"}},
		{"Darurat Medis ibu pingsan", R{Kind: report.Emergency, Category: "medical", Detail: "ibu pingsan", Keyword: "DARURAT"}},
		{"DARURAT SAKIT", R{Kind: report.Emergency, Category: "medical", Keyword: "DARURAT"}},
		{"DARURAT AMBULANS ke RT 2", R{Kind: report.Emergency, Category: "medical", Detail: "ke RT 2", Keyword: "DARURAT"}},
		{"DARURAT ambulan", R{Kind: report.Emergency, Category: "medical", Keyword: "DARURAT"}},
		{"DARURAT KRIMINAL", R{Kind: report.Emergency, Category: "crime", Keyword: "DARURAT"}},
		{"DARURAT maling motor", R{Kind: report.Emergency, Category: "crime", Detail: "motor", Keyword: "DARURAT"}},
		{"DARURAT BEGAL", R{Kind: report.Emergency, Category: "crime", Keyword: "DARURAT"}},
		{"DARURAT RAMPOK", R{Kind: report.Emergency, Category: "crime", Keyword: "DARURAT"}},
		{"DARURAT PENCURIAN", R{Kind: report.Emergency, Category: "crime", Keyword: "DARURAT"}},
		{"DARURAT BANJIR 50cm", R{Kind: report.Emergency, Category: "disaster", Detail: "50cm", Keyword: "DARURAT"}},
		{"DARURAT BENCANA", R{Kind: report.Emergency, Category: "disaster", Keyword: "DARURAT"}},
		{"DARURAT LONGSOR", R{Kind: report.Emergency, Category: "disaster", Keyword: "DARURAT"}},
		{"DARURAT GEMPA", R{Kind: report.Emergency, Category: "disaster", Keyword: "DARURAT"}},
		{"DARURAT KECELAKAAN", R{Kind: report.Emergency, Category: "accident", Keyword: "DARURAT"}},
		{"DARURAT LAKA tol km 30", R{Kind: report.Emergency, Category: "accident", Detail: "tol km 30", Keyword: "DARURAT"}},
		// DARURAT without a known category is still an emergency, for the operator to triage.
		{"DARURAT", R{Kind: report.Emergency, Keyword: "DARURAT"}},
		{"DARURAT pohon tumbang menimpa rumah", R{Kind: report.Emergency, Detail: "pohon tumbang menimpa rumah", Keyword: "DARURAT"}},
		{"DARURAT!!!", R{Kind: report.Emergency, Keyword: "DARURAT"}},
		{"SOS kebakaran", R{Kind: report.Emergency, Category: "fire", Keyword: "SOS"}},
		// Punctuation, spacing and case.
		{"DARURAT: KEBAKARAN - rumah pak RT", R{Kind: report.Emergency, Category: "fire", Detail: "rumah pak RT", Keyword: "DARURAT"}},
		{"Darurat - kebakaran", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
		{"  dArUrAt,,kebakaran!!  gudang  ", R{Kind: report.Emergency, Category: "fire", Detail: "gudang", Keyword: "DARURAT"}},
		{"DARURAT.KEBAKARAN.Jl Melati", R{Kind: report.Emergency, Category: "fire", Detail: "Jl Melati", Keyword: "DARURAT"}},
		{"DARURAT\nKEBAKARAN\nJl Melati 5\nRT 03", R{Kind: report.Emergency, Category: "fire", Detail: "Jl Melati 5\nRT 03", Keyword: "DARURAT"}},
		{"DARURAT \u2013 kebakaran", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
		{"DARURATKEBAKARAN gudang", R{Kind: report.Emergency, Category: "fire", Detail: "gudang", Keyword: "DARURAT"}},
		{"DARURAT DARURAT kebakaran", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
		{"DARURAT ada kebakaran di pasar", R{Kind: report.Emergency, Category: "fire", Detail: "di pasar", Keyword: "DARURAT"}},
		{"DARURAT ada orang pingsan", R{Kind: report.Emergency, Detail: "ada orang pingsan", Keyword: "DARURAT"}},
		// Typos: one edit in words of five letters or more.
		{"DARURT KEBAKARAN", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
		{"DRURAT kebakaran", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
		{"DARUART kebakaran", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
		{"DARURATT kebakaran", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
		{"DARUTAT kebakaran", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
		{"DARURAT KEBAKRAN", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
		{"DARURAT KEBAKARN", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
		{"DARURAT BANJR", R{Kind: report.Emergency, Category: "disaster", Keyword: "DARURAT"}},
		{"DARURAT KECELAKAN motor", R{Kind: report.Emergency, Category: "accident", Detail: "motor", Keyword: "DARURAT"}},
		{"DARURAT MALIGN", R{Kind: report.Emergency, Category: "crime", Keyword: "DARURAT"}},
		// Two typos, or a typo in a short word, are not read.
		{"DRURT KEBAKARAN", R{Kind: report.Unknown, Detail: "DRURT KEBAKARAN"}},
		{"DARURAT KBAKRAN", R{Kind: report.Emergency, Detail: "KBAKRAN", Keyword: "DARURAT"}},
		{"DARURAT APU", R{Kind: report.Emergency, Detail: "APU", Keyword: "DARURAT"}},
		// An emergency named without DARURAT, or through LAPOR, is still an emergency.
		{"KEBAKARAN di RT 03", R{Kind: report.Emergency, Category: "fire", Detail: "di RT 03"}},
		{"Banjir!! air sudah masuk rumah", R{Kind: report.Emergency, Category: "disaster", Detail: "air sudah masuk rumah"}},
		{"Ada maling!! di rumah no 5", R{Kind: report.Emergency, Category: "crime", Detail: "di rumah no 5"}},
		{"Tolong, ada kecelakaan di jalan raya", R{Kind: report.Emergency, Category: "accident", Detail: "di jalan raya"}},
		{"Tolong ada ada ada api", R{Kind: report.Unknown, Detail: "Tolong ada ada ada api"}},
		{"Ada jalan rusak", R{Kind: report.Unknown, Detail: "Ada jalan rusak"}},
		{"LAPOR KEBAKARAN gudang", R{Kind: report.Emergency, Category: "fire", Detail: "gudang", Keyword: "LAPOR"}},
		{"LAPOR DARURAT maling", R{Kind: report.Emergency, Category: "crime", Keyword: "DARURAT"}},
		// DARURAT with a services category keeps the category and its urgency.
		{"DARURAT LISTRIK kabel putus", R{Kind: report.Emergency, Category: "electricity", Detail: "kabel putus", Keyword: "DARURAT"}},
		// Non-emergency reports.
		{"LAPOR LISTRIK padam sejak pagi", R{Kind: report.NonEmergency, Category: "electricity", Detail: "padam sejak pagi", Keyword: "LAPOR"}},
		{"lapor pln", R{Kind: report.NonEmergency, Category: "electricity", Keyword: "LAPOR"}},
		{"LAPOR AIR keruh", R{Kind: report.NonEmergency, Category: "water", Detail: "keruh", Keyword: "LAPOR"}},
		{"LAPOR PDAM mati", R{Kind: report.NonEmergency, Category: "water", Detail: "mati", Keyword: "LAPOR"}},
		{"LAPOR JALAN berlubang", R{Kind: report.NonEmergency, Category: "road", Detail: "berlubang", Keyword: "LAPOR"}},
		{"LAPOR JLN rusak", R{Kind: report.NonEmergency, Category: "road", Detail: "rusak", Keyword: "LAPOR"}},
		{"LAPOR SAMPAH menumpuk", R{Kind: report.NonEmergency, Category: "waste", Detail: "menumpuk", Keyword: "LAPOR"}},
		{"LAPOR ADMINISTRASI", R{Kind: report.NonEmergency, Category: "administration", Keyword: "LAPOR"}},
		{"LAPOR KTP hilang", R{Kind: report.NonEmergency, Category: "administration", Detail: "hilang", Keyword: "LAPOR"}},
		{"LAPOR KK", R{Kind: report.NonEmergency, Category: "administration", Keyword: "LAPOR"}},
		{"LAPOR ADMIN", R{Kind: report.NonEmergency, Category: "administration", Keyword: "LAPOR"}},
		{"LAPOR SOSIAL", R{Kind: report.NonEmergency, Category: "social", Keyword: "LAPOR"}},
		{"LAPOR BANSOS belum cair", R{Kind: report.NonEmergency, Category: "social", Detail: "belum cair", Keyword: "LAPOR"}},
		{"LAPOR LAINNYA", R{Kind: report.NonEmergency, Category: "other", Keyword: "LAPOR"}},
		{"LAPOR LAIN lampu taman", R{Kind: report.NonEmergency, Category: "other", Detail: "lampu taman", Keyword: "LAPOR"}},
		{"LAPOR pohon tumbang", R{Kind: report.NonEmergency, Category: "other", Detail: "pohon tumbang", Keyword: "LAPOR"}},
		{"LAPOR", R{Kind: report.NonEmergency, Category: "other", Keyword: "LAPOR"}},
		{"lapor, jalan rusak", R{Kind: report.NonEmergency, Category: "road", Detail: "rusak", Keyword: "LAPOR"}},
		{"Laporan: sampah belum diangkut", R{Kind: report.NonEmergency, Category: "waste", Detail: "belum diangkut", Keyword: "LAPORAN"}},
		{"LAPORR LISTRIK", R{Kind: report.NonEmergency, Category: "electricity", Keyword: "LAPOR"}},
		{"LAPRO LISTRK", R{Kind: report.NonEmergency, Category: "electricity", Keyword: "LAPOR"}},
		{"LAPOR SAMPH", R{Kind: report.NonEmergency, Category: "waste", Keyword: "LAPOR"}},
		{"LAPORJALAN rusak", R{Kind: report.NonEmergency, Category: "road", Detail: "rusak", Keyword: "LAPOR"}},
		{"LAPOR ada jalan rusak", R{Kind: report.NonEmergency, Category: "road", Detail: "rusak", Keyword: "LAPOR"}},
		// Status, with every way of writing a ticket number.
		{"STATUS 112-000123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"status 112-123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"STATUS 112000123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"STATUS 000123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"STATUS 123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"STATUS #123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"STATUS no 123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"STATUS no.123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"Status nomor tiket: 112-000123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"STATUS: 112 000123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"STATUS 112-1234567", R{Kind: report.Status, TicketNumber: "112-1234567", Keyword: "STATUS"}},
		{"STATUS 112123", R{Kind: report.Status, TicketNumber: "112-112123", Keyword: "STATUS"}},
		{"STATUS123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"CEK 112-000123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "CEK"}},
		{"STATUS", R{Kind: report.Status, Keyword: "STATUS"}},
		{"status?", R{Kind: report.Status, Keyword: "STATUS"}},
		{"STATSU 112-000123", R{Kind: report.Status, TicketNumber: "112-000123", Keyword: "STATUS"}},
		{"STATUS 112-000123 kok belum datang", R{Kind: report.Status, TicketNumber: "112-000123", Detail: "kok belum datang", Keyword: "STATUS"}},
		// Cancel.
		{"BATAL 112-000123", R{Kind: report.Cancel, TicketNumber: "112-000123", Keyword: "BATAL"}},
		{"batal #7 salah kirim", R{Kind: report.Cancel, TicketNumber: "112-000007", Detail: "salah kirim", Keyword: "BATAL"}},
		{"BATALKAN 112-000123", R{Kind: report.Cancel, TicketNumber: "112-000123", Keyword: "BATALKAN"}},
		{"BATAL", R{Kind: report.Cancel, Keyword: "BATAL"}},
		{"BATL 112-000123", R{Kind: report.Cancel, TicketNumber: "112-000123", Keyword: "BATAL"}},
		// A ticket command followed by no ticket number is a report, not a command.
		{"Batal panen karena banjir", R{Kind: report.Unknown, Detail: "Batal panen karena banjir"}},
		{"STATUS jalan di RW 5 rusak parah", R{Kind: report.Unknown, Detail: "STATUS jalan di RW 5 rusak parah"}},
		{"STATUS 0", R{Kind: report.Unknown, Detail: "STATUS 0"}},
		{"STATUS 123abc", R{Kind: report.Unknown, Detail: "STATUS 123abc"}},
		{"STATUS 1234567890123456789", R{Kind: report.Unknown, Detail: "STATUS 1234567890123456789"}},
		// A typo in the keyword needs an unmistakable ticket number.
		{"BATAS 5 meter", R{Kind: report.Unknown, Detail: "BATAS 5 meter"}},
		{"BATAS #5", R{Kind: report.Cancel, TicketNumber: "112-000005", Keyword: "BATAL"}},
		// "BAGAL" is one typo from BATAL and from BEGAL: without a ticket number it is the crime.
		{"BAGAL di jalan raya", R{Kind: report.Emergency, Category: "crime", Detail: "di jalan raya"}},
		// Help.
		{"INFO", R{Kind: report.Help, Keyword: "INFO"}},
		{"bantuan", R{Kind: report.Help, Keyword: "BANTUAN"}},
		{"Help!", R{Kind: report.Help, Keyword: "HELP"}},
		{"?", R{Kind: report.Help, Keyword: "?"}},
		{" ??? ", R{Kind: report.Help, Keyword: "?"}},
		{"BANTUN", R{Kind: report.Help, Keyword: "BANTUAN"}},
		{"INFOO", R{Kind: report.Unknown, Detail: "INFOO"}},
		// A help keyword followed by a report is the report.
		{"Info, ada kebakaran di RT 2", R{Kind: report.Emergency, Category: "fire", Detail: "di RT 2"}},
		{"Info kegiatan kerja bakti", R{Kind: report.Unknown, Detail: "Info kegiatan kerja bakti"}},
		{"INFO kebakaran di RT 2", R{Kind: report.Emergency, Category: "fire", Detail: "di RT 2"}},
		{"INFO: DARURAT banjir", R{Kind: report.Emergency, Category: "disaster", Keyword: "DARURAT"}},
		{"Bantuan sosial belum cair", R{Kind: report.Unknown, Detail: "Bantuan sosial belum cair"}},
		{"HELP HELP", R{Kind: report.Unknown, Detail: "HELP HELP"}},
		// Unknown: the whole text, for operator triage.
		{"Assalamualaikum pak, ada pohon tumbang", R{Kind: report.Unknown, Detail: "Assalamualaikum pak, ada pohon tumbang"}},
		{"  halo  ", R{Kind: report.Unknown, Detail: "halo"}},
		{"112-000123", R{Kind: report.Unknown, Detail: "112-000123"}},
		{"DARURATAN", R{Kind: report.Unknown, Detail: "DARURATAN"}},
		{"LAPORKU", R{Kind: report.Unknown, Detail: "LAPORKU"}},
		{"", R{Kind: report.Unknown}},
		{" \t\r\n ", R{Kind: report.Unknown}},
		{"!!!", R{Kind: report.Unknown, Detail: "!!!"}},
		{"😀 DARURAT", R{Kind: report.Emergency, Keyword: "DARURAT"}},
		{"DARURAT kebakaran 🔥🔥", R{Kind: report.Emergency, Category: "fire", Detail: "🔥🔥", Keyword: "DARURAT"}},
		{"\xff\xfe DARURAT API", R{Kind: report.Emergency, Category: "fire", Keyword: "DARURAT"}},
	}
	for _, tt := range tests {
		if got := report.Parse(tt.text); got != tt.want {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.text, got, tt.want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	texts := []string{
		"DARURAT KEBAKARAN rumah pak Budi RT03",
		"drurat: kebakran gudang",
		"STATUS no. 112-000123",
		"Assalamualaikum pak, ada pohon tumbang di jalan depan masjid",
	}
	for b.Loop() {
		for _, s := range texts {
			report.Parse(s)
		}
	}
}
