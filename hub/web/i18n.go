package web

import (
	"fmt"
	"net/http"
	"strings"
)

// Lang is a dashboard language. Operators at the 112 centre read Bahasa Indonesia; English is
// there for visitors, auditors and developers.
type Lang string

// Languages of the dashboard.
const (
	Indonesian Lang = "id"
	English    Lang = "en"
)

// DefaultLang is what a browser without a choice gets, whatever it asks for in Accept-Language:
// the centre's working language, so that a workstation set up in English shows the same words as
// the one beside it.
const DefaultLang = Indonesian

// langCookie remembers the language a browser chose.
const langCookie = "kentongan_lang"

// ParseLang reads a language tag; ok is false for anything but "id" and "en".
func ParseLang(s string) (l Lang, ok bool) {
	switch Lang(strings.ToLower(strings.TrimSpace(s))) {
	case Indonesian:
		return Indonesian, true
	case English:
		return English, true
	}
	return DefaultLang, false
}

// requestLang is the language a request is answered in: its cookie, else the default.
func requestLang(r *http.Request) Lang {
	if c, err := r.Cookie(langCookie); err == nil {
		if l, ok := ParseLang(c.Value); ok {
			return l
		}
	}
	return DefaultLang
}

// T returns the text for key in l, formatted with args. A key missing from the catalogue shows
// as itself, so a slip is visible on the page rather than blank; a test keeps the catalogue
// complete for every key the templates and the code use.
func (l Lang) T(key string, args ...any) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	s := m[0]
	if l == English {
		s = m[1]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Has reports whether the catalogue knows key.
func Has(key string) bool {
	_, ok := messages[key]
	return ok
}

// messages is the dashboard's catalogue: key → {Bahasa Indonesia, English}. Keys for statuses,
// priorities, categories, alert kinds and presence are the hub's own values with a prefix, so
// that a value new to the hub shows as its raw name until it is added here.
var messages = map[string][2]string{
	"app.title":   {"Kentongan 112", "Kentongan 112"},
	"app.centre":  {"Call center 112 Kabupaten Tangerang", "Kabupaten Tangerang 112 centre"},
	"nav.queue":   {"Antrean", "Queue"},
	"nav.map":     {"Peta", "Map"},
	"nav.kiosks":  {"Kios", "Kiosks"},
	"nav.alerts":  {"Peringatan", "Alerts"},
	"nav.logout":  {"Keluar", "Log out"},
	"nav.lang":    {"Bahasa", "Language"},
	"nav.live":    {"Langsung", "Live"},
	"nav.offline": {"Terputus, menyambung ulang…", "Disconnected, reconnecting…"},

	"role.operator":   {"operator", "operator"},
	"role.supervisor": {"supervisor", "supervisor"},
	"role.agency":     {"instansi", "agency"},
	"role.admin":      {"admin", "admin"},
	"agency.view":     {"Tampilan instansi: %s", "Agency view: %s"},
	"agency.triage":   {"Triase 112", "112 triage"},

	"login.title":    {"Masuk", "Log in"},
	"login.name":     {"Nama pengguna", "User name"},
	"login.password": {"Kata sandi", "Password"},
	"login.submit":   {"Masuk", "Log in"},
	"login.failed":   {"Nama pengguna atau kata sandi salah.", "Wrong user name or password."},
	"login.limited":  {"Terlalu banyak percobaan. Coba lagi nanti.", "Too many attempts. Try again later."},
	"login.origin":   {"Formulir dikirim dari situs lain; buka halaman ini langsung.", "The form came from another site; open this page directly."},
	"login.expired":  {"Sesi berakhir. Silakan masuk lagi.", "Your session has ended. Please log in again."},

	"queue.title":      {"Antrean tiket", "Ticket queue"},
	"queue.open":       {"Terbuka", "Open"},
	"queue.all":        {"Semua", "All"},
	"queue.empty":      {"Tidak ada tiket.", "No tickets."},
	"queue.count":      {"%d tiket", "%d tickets"},
	"queue.emergency":  {"%d darurat", "%d emergencies"},
	"queue.new":        {"Tiket baru: %s", "New ticket: %s"},
	"filter.status":    {"Status", "Status"},
	"filter.priority":  {"Prioritas", "Priority"},
	"filter.agency":    {"Instansi", "Agency"},
	"filter.any":       {"(semua)", "(any)"},
	"filter.apply":     {"Saring", "Filter"},
	"col.number":       {"Nomor", "Number"},
	"col.priority":     {"Prioritas", "Priority"},
	"col.category":     {"Kategori", "Category"},
	"col.kiosk":        {"Kios", "Kiosk"},
	"col.place":        {"Lokasi", "Place"},
	"col.status":       {"Status", "Status"},
	"col.agency":       {"Instansi", "Agency"},
	"col.age":          {"Masuk", "In"},
	"col.deadline":     {"Tenggat", "Deadline"},
	"col.flags":        {"Tanda", "Flags"},
	"col.action":       {"Aksi", "Action"},
	"col.at":           {"Waktu", "When"},
	"col.actor":        {"Oleh", "By"},
	"col.change":       {"Perubahan", "Change"},
	"col.note":         {"Catatan", "Note"},
	"col.presence":     {"Koneksi", "Connection"},
	"col.heartbeat":    {"Detak terakhir", "Last heartbeat"},
	"col.signal":       {"Sinyal", "Signal"},
	"col.queue":        {"Antrean kios", "Kiosk queue"},
	"col.modem":        {"Modem", "Modem"},
	"col.led":          {"LED", "LED"},
	"col.fault":        {"Gangguan", "Fault"},
	"col.falsealarm":   {"Alarm palsu", "False alarms"},
	"col.firmware":     {"Firmware", "Firmware"},
	"col.kind":         {"Jenis", "Kind"},
	"col.subject":      {"Tentang", "About"},
	"col.since":        {"Sejak", "Since"},
	"col.message":      {"Keterangan", "Details"},
	"deadline.ack":     {"tanggap", "ack"},
	"deadline.resolve": {"selesai", "resolve"},
	"deadline.none":    {"—", "—"},
	"deadline.late":    {"terlambat", "overdue"},
	"deadline.left":    {"lagi", "left"},
	"deadline.breach":  {"Tenggat terlewati", "Deadline breached"},
	"flag.test":        {"uji", "test"},
	"flag.unverified":  {"nomor tak dikenal", "unknown number"},
	"flag.falsealarm":  {"alarm palsu", "false alarm"},
	"flag.duplicate":   {"duplikat dari %s", "duplicate of %s"},
	"flag.confirmed":   {"dikonfirmasi RT/RW", "confirmed by RT/RW"},
	"flag.denied":      {"dibantah RT/RW", "denied by RT/RW"},
	"flag.pending":     {"menunggu RT/RW", "awaiting RT/RW"},
	"flag.disputed":    {"RT/RW berbeda jawaban", "RT/RW disagree"},
	"flag.kioskflag":   {"kios sering alarm palsu", "kiosk with many false alarms"},

	"status.new":          {"baru", "new"},
	"status.acknowledged": {"ditanggapi", "acknowledged"},
	"status.dispatched":   {"diteruskan", "dispatched"},
	"status.resolved":     {"selesai", "resolved"},
	"status.closed":       {"ditutup", "closed"},
	"status.cancelled":    {"dibatalkan", "cancelled"},
	"status.duplicate":    {"duplikat", "duplicate"},

	"priority.emergency": {"DARURAT", "EMERGENCY"},
	"priority.normal":    {"biasa", "normal"},

	"category.":               {"(tanpa kategori)", "(no category)"},
	"category.panic":          {"tombol darurat", "panic button"},
	"category.fire":           {"kebakaran", "fire"},
	"category.medical":        {"medis", "medical"},
	"category.crime":          {"kriminal", "crime"},
	"category.security":       {"keamanan", "security"},
	"category.disaster":       {"bencana", "disaster"},
	"category.flood":          {"banjir", "flood"},
	"category.accident":       {"kecelakaan", "accident"},
	"category.electricity":    {"listrik", "electricity"},
	"category.water":          {"air PDAM", "piped water"},
	"category.road":           {"jalan", "road"},
	"category.traffic":        {"lalu lintas", "traffic"},
	"category.waste":          {"sampah", "waste"},
	"category.environment":    {"lingkungan", "environment"},
	"category.civil":          {"kependudukan", "civil registry"},
	"category.social":         {"sosial", "social affairs"},
	"category.order":          {"ketertiban umum", "public order"},
	"category.violence":       {"kekerasan perempuan/anak", "violence against women/children"},
	"category.other":          {"lainnya", "other"},
	"category.administration": {"administrasi kependudukan", "civil administration"},
	"category.public_order":   {"ketertiban umum", "public order"},

	"source.button": {"tombol", "button"},
	"source.sms":    {"SMS", "SMS"},
	"source.tamper": {"sabotase", "tamper"},

	"ticket.title":         {"Tiket %s", "Ticket %s"},
	"ticket.details":       {"Rincian", "Details"},
	"ticket.history":       {"Riwayat", "History"},
	"ticket.actions":       {"Tindakan", "Actions"},
	"ticket.kiosk":         {"Kios", "Kiosk"},
	"ticket.place":         {"Lokasi", "Place"},
	"ticket.source":        {"Sumber", "Source"},
	"ticket.button":        {"Tombol", "Button"},
	"ticket.reporter":      {"Pelapor", "Reporter"},
	"ticket.message":       {"Pesan", "Message"},
	"ticket.occurred":      {"Terjadi (jam kios)", "Occurred (kiosk clock)"},
	"ticket.created":       {"Diterima hub", "Received by hub"},
	"ticket.agency":        {"Instansi", "Agency"},
	"ticket.unit":          {"Unit", "Unit"},
	"ticket.ackdue":        {"Batas tanggap", "Acknowledge by"},
	"ticket.resolvedue":    {"Batas selesai", "Resolve by"},
	"ticket.confirmation":  {"Konfirmasi RT/RW", "RT/RW confirmation"},
	"ticket.conf.none":     {"tidak diminta", "not asked"},
	"ticket.conf.pending":  {"ditanyakan ke %d pengurus, belum dijawab", "%d heads asked, no answer yet"},
	"ticket.conf.disputed": {"jawaban berbeda: %d YA, %d TIDAK", "answers differ: %d YES, %d NO"},
	"ticket.conf.yes":      {"YA — kejadian benar (%s, %s)", "YES — it is real (%s, %s)"},
	"ticket.conf.no":       {"TIDAK — bukan kejadian (%s, %s)", "NO — not real (%s, %s)"},
	"ticket.falsealarm":    {"Alarm palsu", "False alarm"},
	"ticket.fa.by":         {"ditandai %s: %s", "marked by %s: %s"},
	"ticket.duplicateof":   {"Duplikat dari", "Duplicate of"},
	"ticket.onmap":         {"lihat di peta", "show on map"},
	"ticket.updated":       {"Tiket ini baru saja berubah.", "This ticket has just changed."},
	"ticket.none":          {"—", "—"},
	"ticket.nokiosk":       {"kios tidak terdaftar", "kiosk not registered"},
	"ticket.notfound":      {"Tiket tidak ditemukan.", "No such ticket."},
	"ticket.back":          {"← Antrean", "← Queue"},
	"ticket.noactions":     {"Tidak ada tindakan untuk status ini.", "No actions for this status."},

	"action.note":             {"Catatan (opsional)", "Note (optional)"},
	"action.reason":           {"Alasan", "Reason"},
	"action.ack":              {"Tanggapi", "Acknowledge"},
	"action.dispatch":         {"Teruskan ke instansi", "Dispatch to agency"},
	"action.dispatch.to":      {"Instansi", "Agency"},
	"action.resolve":          {"Selesaikan", "Resolve"},
	"action.close":            {"Tutup", "Close"},
	"action.cancel":           {"Batalkan", "Cancel"},
	"action.merge":            {"Gabungkan sebagai duplikat", "Merge as duplicate"},
	"action.merge.into":       {"ke tiket nomor", "into ticket number"},
	"action.falsealarm":       {"Tandai alarm palsu", "Mark false alarm"},
	"action.done.ack":         {"Tiket ditanggapi; kios dan pelapor diberi tahu.", "Ticket acknowledged; the kiosk and the reporter are told."},
	"action.done.dispatch":    {"Tiket diteruskan ke instansi.", "Ticket dispatched to the agency."},
	"action.done.resolve":     {"Tiket diselesaikan.", "Ticket resolved."},
	"action.done.close":       {"Tiket ditutup.", "Ticket closed."},
	"action.done.cancel":      {"Tiket dibatalkan.", "Ticket cancelled."},
	"action.done.merge":       {"Tiket digabungkan sebagai duplikat.", "Ticket merged as a duplicate."},
	"action.done.ping":        {"Ping dikirim; kios menjawab dengan detak.", "Ping sent; the kiosk answers with a heartbeat."},
	"action.done.false-alarm": {"Tiket ditandai alarm palsu.", "Ticket marked as a false alarm."},
	"action.failed":           {"Tindakan gagal: %s", "Action failed: %s"},
	"action.forbidden":        {"Anda tidak berwenang atas tiket ini.", "You may not act on this ticket."},
	"action.csrf":             {"Formulir kedaluwarsa; muat ulang halaman dan coba lagi.", "The form has expired; reload the page and try again."},
	"action.unknown":          {"Tindakan tidak dikenal.", "Unknown action."},
	"action.needagency":       {"Pilih instansi.", "Choose an agency."},
	"action.needreason":       {"Tulis alasannya.", "Give a reason."},
	"action.needtarget":       {"Tulis nomor tiket tujuan.", "Give the target ticket's number."},

	"map.title":    {"Peta kios dan tiket terbuka", "Kiosks and open tickets"},
	"map.kiosk":    {"Kios", "Kiosk"},
	"map.ticket":   {"Tiket terbuka", "Open ticket"},
	"map.notiles":  {"Peta dasar tidak dapat dimuat; penanda tetap ditampilkan.", "Base map could not be loaded; markers are still shown."},
	"map.legend":   {"Keterangan", "Legend"},
	"map.online":   {"kios daring", "kiosk online"},
	"map.offline":  {"kios luring", "kiosk offline"},
	"map.emerg":    {"tiket darurat", "emergency ticket"},
	"map.normal":   {"tiket biasa", "normal ticket"},
	"map.nolocate": {"%d kios tanpa koordinat", "%d kiosks without coordinates"},

	"kiosks.title":   {"Kios", "Kiosks"},
	"kiosks.summary": {"%d kios: %d daring, %d luring", "%d kiosks: %d online, %d offline"},
	"kiosks.empty":   {"Belum ada kios terdaftar.", "No kiosks registered."},
	"kiosks.ping":    {"Ping", "Ping"},
	"kiosks.pinged":  {"Ping dikirim ke %s.", "Ping sent to %s."},
	"kiosks.flagged": {"%.0f%% alarm palsu", "%.0f%% false alarms"},

	"presence.online":  {"daring", "online"},
	"presence.offline": {"luring", "offline"},
	"presence.unknown": {"belum terdengar", "not heard yet"},

	"alerts.title":  {"Peringatan", "Alerts"},
	"alerts.empty":  {"Tidak ada peringatan aktif.", "No active alerts."},
	"alerts.active": {"%d peringatan aktif", "%d active alerts"},

	"alert.deadline_breach":  {"tenggat terlewati", "deadline breached"},
	"alert.kiosk_offline":    {"kios luring", "kiosk offline"},
	"alert.false_alarm_rate": {"banyak alarm palsu", "many false alarms"},
	"alert.routing_config":   {"konfigurasi rute ditolak", "routing config refused"},

	"alertmsg.deadline_breach.ack":     {"Tiket %s belum ditanggapi melewati tenggat.", "Ticket %s was not acknowledged in time."},
	"alertmsg.deadline_breach.resolve": {"Tiket %s belum selesai melewati tenggat.", "Ticket %s was not resolved in time."},
	"alertmsg.kiosk_offline":           {"Kios %s tidak terdengar melewati batas pengawasan.", "Kiosk %s has been silent past its supervision interval."},
	"alertmsg.false_alarm_rate":        {"Kios %s melewati batas rasio alarm palsu.", "Kiosk %s is over the false-alarm limit."},
	"alertmsg.routing_config":          {"Berkas rute ditolak; rute lama tetap berlaku.", "The routing file was refused; the previous routing stays in force."},

	"event.reassigned":        {"dialihkan ke instansi lain", "sent to another agency"},
	"event.merged":            {"tiket lain digabungkan ke sini", "another ticket merged into this one"},
	"event.false_alarm":       {"ditandai alarm palsu", "marked a false alarm"},
	"event.confirm_requested": {"konfirmasi diminta ke RT/RW", "RT/RW asked to confirm"},
	"event.confirmation":      {"jawaban RT/RW", "RT/RW answer"},
	"event.deadline_breached": {"tenggat terlewati", "deadline missed"},
	"detail.yes":              {"YA", "YES"},
	"detail.no":               {"TIDAK", "NO"},
	"detail.ack":              {"tanggap", "acknowledge"},
	"detail.resolve":          {"selesai", "resolve"},

	"time.ago":     {"%s lalu", "%s ago"},
	"time.justnow": {"baru saja", "just now"},

	"error.title":     {"Terjadi kesalahan", "Something went wrong"},
	"error.forbidden": {"Anda tidak berwenang melihat halaman ini.", "You may not see this page."},
	"error.notfound":  {"Halaman tidak ditemukan.", "Page not found."},
	"error.internal":  {"Kesalahan di server; sudah dicatat.", "Server error; it has been logged."},
}
