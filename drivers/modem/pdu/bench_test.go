package pdu_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kentongan/kentongan/drivers/modem/pdu"
)

func BenchmarkDecodeDeliver(b *testing.B) {
	hexes, err := pdu.EncodeDeliver("+62811000000", "+6281298765432", strings.Repeat("Kebakaran di RT 03 🔥 ", 20), time.Now(), 1, false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, h := range hexes {
			if _, err := pdu.DecodeDeliver(h); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkEncodeSubmit(b *testing.B) {
	text := strings.Repeat("Laporan diterima, petugas 112 menuju lokasi. ", 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pdu.EncodeSubmit("+6281234567890", text, pdu.SubmitOptions{Ref: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
