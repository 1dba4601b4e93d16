// Package laptop is the technician's side of provisioning, behind `kentonganctl provision`: it
// talks to the kiosk over the serial line and to the hub over HTTPS, prints each step in Bahasa
// Indonesia and English, and ends with a summary table. docs/provisioning.md shows what it
// prints; the two must stay in step.
package laptop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/enroll"
	"github.com/kentongan/kentongan/provisioning"
)

// Options is one provisioning run.
type Options struct {
	// Line is the serial line to the kiosk, open.
	Line io.ReadWriter
	// Port names the line in messages (/dev/ttyACM0).
	Port string
	// Hub is the hub's base URL; Token the enrollment token.
	Hub   string
	Token string
	// Site is what the technician was sent to set up; nil skips the check. Non-zero Lat and
	// Lon, measured on the spot, replace the token's coordinates.
	Site *hub.Site
	// HTTP is the client for the hub (default: a 30 s timeout).
	HTTP *http.Client
	// Out receives the progress and the summary.
	Out io.Writer
	// Client is what kentonganctl calls itself in the handshake.
	Client string
	// PressTimeout bounds the wait for each button in the self-test (0: the kiosk's default).
	PressTimeout time.Duration
	// LineTimeout and Attempts tune the serial protocol (0: the defaults).
	LineTimeout time.Duration
	Attempts    int
	// PollInterval is how often the self-test is asked for progress (default 200ms).
	PollInterval time.Duration
}

// Result is what a run found, row by row as in the summary table.
type Result struct {
	DeviceID string
	Rows     []Row
	// Passed: every step and every check passed.
	Passed bool
}

// Row is one line of the summary.
type Row struct {
	Step, Status, Detail string
}

// ErrChecksFailed: provisioning went through, but a self-test check failed.
var ErrChecksFailed = errors.New("self-test found a problem")

// Run provisions the kiosk on o.Line. Its error, if any, has already been explained to the
// technician on o.Out; it is returned for the exit status.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if o.PollInterval == 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	r := &run{o: o, out: o.Out}
	err := r.run(ctx)
	r.summary()
	if err != nil {
		r.say("\nGAGAL / FAILED: %s\n", explain(err, o.Port))
		return r.res, err
	}
	if !r.res.Passed {
		r.say("\nADA MASALAH / PROBLEMS FOUND: perbaiki yang gagal lalu jalankan perintah yang sama lagi.\n" +
			"Fix what failed and run the same command again: it is safe to repeat.\n")
		return r.res, ErrChecksFailed
	}
	r.say("\nSELESAI / DONE: kios %s siap dipakai. / Kiosk %s is ready.\n", r.res.DeviceID, r.res.DeviceID)
	return r.res, nil
}

type run struct {
	o   Options
	out io.Writer
	res Result
}

func (r *run) say(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

func (r *run) row(step, status, detail string) {
	r.res.Rows = append(r.res.Rows, Row{step, status, detail})
}

const steps = 5

func (r *run) step(n int, id, en string) { r.say("[%d/%d] %s / %s\n", n, steps, id, en) }

func (r *run) run(ctx context.Context) error {
	var opts []provisioning.ClientOption
	if r.o.LineTimeout > 0 {
		opts = append(opts, provisioning.WithTimeout(r.o.LineTimeout))
	}
	if r.o.Attempts > 0 {
		opts = append(opts, provisioning.WithAttempts(r.o.Attempts))
	}
	c := provisioning.NewClient(r.o.Line, opts...)

	r.step(1, "Menghubungi kios di "+r.o.Port, "Contacting the kiosk on "+r.o.Port)
	hello, err := c.Hello(ctx, r.o.Client)
	if err != nil {
		r.row("kiosk", "GAGAL/FAILED", "no session")
		return err
	}
	r.say("      OK: %s, serial %s, %s, protocol v%d\n", hello.Hardware.Board, hello.Hardware.Serial, hello.Firmware, hello.Version)
	if hello.State == provisioning.StateProvisioned {
		r.say("      Kios ini sudah terpasang sebagai %s. Hub harus mengizinkan pemasangan ulang (kentonganctl device allow-reprovision %s),\n"+
			"      kecuali perintah sebelumnya terputus di tengah jalan.\n"+
			"      This kiosk is already provisioned as %s. The hub must allow re-provisioning, unless an earlier run was cut short.\n",
			hello.DeviceID, hello.DeviceID, hello.DeviceID)
	}
	if hello.Reset {
		r.say("      Kios di-reset (tombol ditahan saat menyala). / The kiosk was reset at boot.\n")
	}
	r.row("kiosk", "OK", fmt.Sprintf("%s, serial %s", hello.Hardware.Board, hello.Hardware.Serial))

	r.step(2, "Kios membuat kunci dan permintaan sertifikat", "The kiosk makes its key and certificate request")
	csr, err := c.CSR(ctx)
	if err != nil {
		r.row("key", "GAGAL/FAILED", "")
		return err
	}
	r.say("      OK: kunci privat tetap di kios. / The private key stays on the kiosk.\n")
	r.row("key", "OK", "ECDSA P-256, on the kiosk only")

	r.step(3, "Mendaftarkan kios ke hub "+r.o.Hub, "Registering the kiosk with the hub "+r.o.Hub)
	resp, err := r.enroll(ctx, enroll.Request{Token: r.o.Token, Hardware: enroll.Hardware(hello.Hardware),
		Firmware: hello.Firmware, CSRPEM: csr.CSRPEM, Site: r.o.Site})
	if err != nil {
		r.row("hub", "GAGAL/FAILED", "enrollment refused or hub unreachable")
		return err
	}
	r.res.DeviceID = resp.DeviceID
	site := enroll.FormatSite(resp.Site)
	r.say("      OK: %s %q, %s (%.5f, %.5f)\n", resp.DeviceID, resp.Name, site, resp.Site.Lat, resp.Site.Lon)
	r.row("hub", "OK", fmt.Sprintf("%s at %s", resp.DeviceID, site))

	r.step(4, "Menyimpan konfigurasi dan kredensial di kios", "Storing the configuration and credentials on the kiosk")
	ir, err := c.Install(ctx, installOf(resp))
	if err != nil {
		r.row("install", "GAGAL/FAILED", "")
		return err
	}
	if ir.Unchanged {
		r.say("      OK: sudah tersimpan sebelumnya. / Already stored by an earlier run.\n")
	} else {
		r.say("      OK: tersimpan; kentongand dijalankan ulang. / Stored; kentongand restarted.\n")
	}
	r.row("install", "OK", "config, certificate, CA")

	r.step(5, "Uji mandiri", "Self-test")
	passed, err := r.selfTest(ctx, c)
	if err != nil {
		return err
	}
	r.res.Passed = passed
	if err := c.Bye(ctx); err != nil {
		// Everything is done; a lost goodbye changes nothing on the kiosk.
		r.say("      (kios tidak menjawab salam penutup / the kiosk did not answer the goodbye: %v)\n", err)
	}
	return nil
}

func installOf(resp *enroll.Response) provisioning.Install {
	in := provisioning.Install{DeviceID: resp.DeviceID, Name: resp.Name, Site: provisioning.Site(resp.Site),
		CertPEM: resp.CertPEM, CAPEM: resp.CAPEM, BrokerURL: resp.BrokerURL, SMSAllow: resp.Config.SMSAllow}
	for _, b := range resp.Config.Buttons {
		in.Buttons = append(in.Buttons, provisioning.Button(b))
	}
	for _, l := range resp.Config.LEDs {
		in.LEDs = append(in.LEDs, provisioning.LED(l))
	}
	if hb := time.Duration(resp.Config.HeartbeatInterval); hb > 0 {
		in.HeartbeatInterval = hb.String()
	}
	return in
}

// stepText is what each self-test step is called on screen.
var stepText = map[string][2]string{
	provisioning.StepLEDs:     {"LED menyala bergantian, perhatikan", "LEDs light one by one, watch them"},
	provisioning.StepModem:    {"Memeriksa modem (SIM, jaringan, sinyal)", "Checking the modem (SIM, network, signal)"},
	provisioning.StepHub:      {"Menghubungi hub dengan sertifikat baru", "Connecting to the hub with the new certificate"},
	provisioning.StepIncident: {"Mengirim laporan uji (tidak diteruskan ke instansi)", "Sending a test report (never routed to an agency)"},
}

var statusText = map[string]string{
	provisioning.StepOK:      "OK",
	provisioning.StepFailed:  "GAGAL/FAILED",
	provisioning.StepSkipped: "dilewati/skipped",
}

func (r *run) selfTest(ctx context.Context, c *provisioning.Client) (bool, error) {
	st := provisioning.SelfTest{PressTimeoutMS: int(r.o.PressTimeout / time.Millisecond)}
	if err := c.SelfTest(ctx, st); err != nil {
		r.row("self-test", "GAGAL/FAILED", "")
		return false, err
	}
	seen := 0
	tick := time.NewTicker(r.o.PollInterval)
	defer tick.Stop()
	for {
		p, err := c.Poll(ctx, seen)
		if err != nil {
			r.row("self-test", "GAGAL/FAILED", "interrupted")
			return false, err
		}
		seen += len(p.Events)
		for _, e := range p.Events {
			r.event(e)
		}
		if p.Done {
			return p.Passed, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-tick.C:
		}
	}
}

func (r *run) event(e provisioning.Event) {
	name := e.Step
	if e.Step == provisioning.StepButton {
		name = "button " + e.Button
	}
	switch e.Status {
	case provisioning.StepRunning:
		t := stepText[e.Step]
		r.say("      %s / %s …\n", t[0], t[1])
		return
	case provisioning.StepPrompt:
		r.say("      >>> TEKAN TOMBOL \"%s\" SEKARANG / PRESS THE \"%s\" BUTTON NOW\n", e.Button, e.Button)
		return
	}
	detail := ""
	if e.Detail != "" {
		detail = " (" + e.Detail + ")"
	}
	if e.Step == provisioning.StepButton {
		r.say("      Tombol/button %s: %s%s\n", e.Button, statusText[e.Status], detail)
	} else {
		r.say("      %s: %s%s\n", name, statusText[e.Status], detail)
	}
	r.row(name, statusText[e.Status], e.Detail)
}

func (r *run) summary() {
	if len(r.res.Rows) == 0 {
		return
	}
	r.say("\nRINGKASAN / SUMMARY\n")
	w := tabwriter.NewWriter(r.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LANGKAH/STEP\tHASIL/RESULT\tKETERANGAN/DETAIL")
	for _, row := range r.res.Rows {
		fmt.Fprintf(w, "%s\t%s\t%s\n", row.Step, row.Status, row.Detail)
	}
	w.Flush()
}

// HubError: the hub could not be reached or answered something unexpected.
type HubError struct {
	URL string
	Err error
}

func (e *HubError) Error() string { return "hub " + e.URL + ": " + e.Err.Error() }
func (e *HubError) Unwrap() error { return e.Err }

// enroll registers the device. A network failure is retried a few times: the hub recognises
// a repeated enrollment (same token, hardware and key) and answers it the same.
func (r *run) enroll(ctx context.Context, req enroll.Request) (*enroll.Response, error) {
	u, err := url.JoinPath(r.o.Hub, enroll.EnrollPath)
	if err != nil {
		return nil, &HubError{URL: r.o.Hub, Err: err}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			r.say("      hub tidak menjawab, mencoba lagi / hub did not answer, trying again …\n")
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		resp, err := r.post(ctx, u, body)
		var ne net.Error
		if err != nil && (errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)) {
			lastErr = err
			continue
		}
		return resp, err
	}
	return nil, lastErr
}

func (r *run) post(ctx context.Context, u string, body []byte) (*enroll.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, &HubError{URL: r.o.Hub, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.o.HTTP.Do(req)
	if err != nil {
		return nil, &HubError{URL: r.o.Hub, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &HubError{URL: r.o.Hub, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		var eb enroll.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
			return nil, &enroll.Error{Status: resp.StatusCode, Code: eb.Error.Code, Reason: eb.Error.Reason, Message: eb.Error.Message}
		}
		return nil, &HubError{URL: r.o.Hub, Err: fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(data)))}
	}
	var out enroll.Response
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, &HubError{URL: r.o.Hub, Err: fmt.Errorf("unreadable answer: %w", err)}
	}
	return &out, nil
}

// explain turns an error into what the technician should do, in both languages.
func explain(err error, port string) string {
	var (
		ve *provisioning.VersionError
		re *provisioning.RemoteError
		ee *enroll.Error
		he *HubError
	)
	switch {
	case errors.Is(err, provisioning.ErrGarbage):
		return fmt.Sprintf("data acak di kabel %s: baud rate salah (--baud), atau ini bukan port provisioning kios.\n"+
			"Garbage on %s: a wrong baud rate (--baud), or this is not the kiosk's provisioning port. (%v)", port, port, err)
	case errors.Is(err, provisioning.ErrNoAnswer):
		return fmt.Sprintf("kios tidak menjawab di %s: apakah kios menyala, kabelnya kabel data, dan kentongand --provision berjalan?\n"+
			"The kiosk does not answer on %s: is it powered, is the cable a data cable, is kentongand --provision running? (%v)", port, port, err)
	case errors.Is(err, provisioning.ErrClosed):
		return fmt.Sprintf("kabel terlepas atau port ditutup. Pasang lagi dan jalankan perintah yang sama: aman diulang.\n"+
			"The cable was pulled or the port closed. Plug it in and run the same command again: it is safe to repeat. (%v)", err)
	case errors.As(err, &ve):
		return fmt.Sprintf("versi protokol tidak cocok. / Protocol version mismatch: %v", ve)
	case errors.As(err, &re):
		switch re.Code {
		case provisioning.CodeDiskFull:
			return fmt.Sprintf("penyimpanan kios penuh; tidak ada yang diubah. Kosongkan ruang lalu ulangi.\n"+
				"The kiosk's storage is full; nothing was changed. Free some space and run again. (%s)", re.Message)
		case provisioning.CodeProvisioned:
			return fmt.Sprintf("kios sudah terpasang untuk hub lain. Tahan tombol darurat saat kios menyala (reset), lalu ulangi.\n"+
				"The kiosk is provisioned for another hub. Hold the panic button while it boots (reset), then run again. (%s)", re.Message)
		case provisioning.CodeCredentials:
			return fmt.Sprintf("sertifikat dari hub tidak cocok dengan kios ini; tidak ada yang diubah.\n"+
				"The hub's certificate does not fit this kiosk; nothing was changed. (%s)", re.Message)
		}
		return fmt.Sprintf("kios menolak. / The kiosk refused: %s", re.Message)
	case errors.As(err, &ee):
		return explainEnroll(ee)
	case errors.As(err, &he):
		return fmt.Sprintf("hub tidak dapat dihubungi; kios tidak diubah. Periksa jaringan lalu ulangi.\n"+
			"The hub cannot be reached; the kiosk was not changed. Check the network and run again. (%v)", he)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("dibatalkan; aman diulang. / Cancelled; safe to run again. (%v)", err)
	}
	return err.Error()
}

func explainEnroll(e *enroll.Error) string {
	var id string
	switch {
	case errors.Is(e, enroll.ErrTokenUnknown):
		id = "token pendaftaran tidak dikenal (salah ketik?)"
	case errors.Is(e, enroll.ErrTokenExpired):
		id = "token pendaftaran sudah kedaluwarsa: minta token baru ke admin"
	case errors.Is(e, enroll.ErrTokenUsed):
		id = "token pendaftaran sudah dipakai untuk kios lain: minta token baru ke admin"
	case errors.Is(e, enroll.ErrTokenRevoked):
		id = "token pendaftaran sudah dicabut admin"
	case errors.Is(e, enroll.ErrSiteMismatch):
		id = "token ini untuk lokasi lain: periksa --site"
	case errors.Is(e, enroll.ErrAlreadyProvisioned):
		id = "kios ini sudah terdaftar; admin harus mengizinkan pemasangan ulang (kentonganctl device allow-reprovision)"
	case errors.Is(e, enroll.ErrDeviceRevoked):
		id = "kios ini sudah dicabut; admin harus mengizinkan pemasangan ulang"
	default:
		id = "hub menolak pendaftaran"
	}
	return fmt.Sprintf("%s; kios tidak diubah.\nThe hub refused the enrollment; the kiosk was not changed: %s", id, e.Message)
}
