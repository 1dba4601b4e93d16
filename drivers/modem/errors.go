package modem

import (
	"errors"
	"strconv"
	"strings"
)

// Errors returned by the command engine and the supervised modem.
var (
	// ErrTimeout: the modem gave no final result within the command's timeout. The modem may
	// still answer later; the engine drops a late answer rather than give it to the next command.
	ErrTimeout = errors.New("modem: no answer in time")
	// ErrClosed: the port was closed, reached end-of-file or failed (a USB modem unplugged).
	ErrClosed = errors.New("modem: port closed")
	// ErrError: the modem answered a plain ERROR, which says nothing about why.
	ErrError = errors.New("modem: ERROR")
	// ErrNotReady: the modem is being opened or (re)initialised, or has no usable SIM. The
	// daemon tries again after the next Events.Ready.
	ErrNotReady = errors.New("modem: not ready")
	// ErrEmptySlot: the message index read holds no message.
	ErrEmptySlot = errors.New("modem: empty message slot")
	// ErrWrongPIN: the SIM rejected the configured PIN (+CME ERROR: 16). A *CMEError with code
	// 16 matches it with errors.Is.
	ErrWrongPIN = errors.New("modem: SIM PIN rejected")
	// ErrInvalid: a caller passed something the driver refuses to send to the modem (a
	// command with a line break, a negative index, a PDU that is not hex).
	ErrInvalid = errors.New("modem: invalid argument")
	// ErrBadResponse: the modem answered OK, but not with what the command asks for.
	ErrBadResponse = errors.New("modem: unexpected answer")
)

// cmeWrongPIN is the +CME ERROR code for "incorrect password".
const cmeWrongPIN = 16

// CMEError is a "+CME ERROR: <n>" final result: an equipment error (3GPP TS 27.007 §9.2).
// Code is -1 when the modem gave a text that is not in the table.
type CMEError struct {
	Code int
	Text string // the meaning, e.g. "SIM not inserted"
}

func (e *CMEError) Error() string { return "+CME ERROR: " + codeText(e.Code, e.Text) }

// Is makes a wrong PIN recognisable without knowing the code.
func (e *CMEError) Is(target error) bool { return target == ErrWrongPIN && e.Code == cmeWrongPIN }

// CMSError is a "+CMS ERROR: <n>" final result: a message-service error (3GPP TS 27.005
// §3.2.5). Codes below 256 are network or TP-FCS causes. Code is -1 for an unknown text.
type CMSError struct {
	Code int
	Text string
}

func (e *CMSError) Error() string { return "+CMS ERROR: " + codeText(e.Code, e.Text) }

// ResultError is a call-related final result (NO CARRIER, BUSY, NO ANSWER, NO DIALTONE): not
// expected from the SMS commands, but a final result all the same.
type ResultError struct {
	Result string
}

func (e *ResultError) Error() string { return "modem: " + e.Result }

func codeText(code int, text string) string {
	if code < 0 {
		return text
	}
	return strconv.Itoa(code) + " (" + text + ")"
}

// cmeTexts are the meanings of the +CME ERROR codes modems actually send (27.007 §9.2.1).
var cmeTexts = map[int]string{
	0:   "phone failure",
	1:   "no connection to phone",
	2:   "phone-adaptor link reserved",
	3:   "operation not allowed",
	4:   "operation not supported",
	5:   "PH-SIM PIN required",
	6:   "PH-FSIM PIN required",
	7:   "PH-FSIM PUK required",
	10:  "SIM not inserted",
	11:  "SIM PIN required",
	12:  "SIM PUK required",
	13:  "SIM failure",
	14:  "SIM busy",
	15:  "SIM wrong",
	16:  "incorrect password",
	17:  "SIM PIN2 required",
	18:  "SIM PUK2 required",
	20:  "memory full",
	21:  "invalid index",
	22:  "not found",
	23:  "memory failure",
	24:  "text string too long",
	25:  "invalid characters in text string",
	26:  "dial string too long",
	27:  "invalid characters in dial string",
	30:  "no network service",
	31:  "network timeout",
	32:  "network not allowed - emergency calls only",
	40:  "network personalization PIN required",
	41:  "network personalization PUK required",
	100: "unknown",
}

// cmsTexts are the meanings of the +CMS ERROR codes (27.005 §3.2.5), with the network causes
// (24.011 / 23.040) seen most when sending.
var cmsTexts = map[int]string{
	1:   "unassigned (unallocated) number",
	8:   "operator determined barring",
	10:  "call barred",
	21:  "short message transfer rejected",
	27:  "destination out of service",
	28:  "unidentified subscriber",
	29:  "facility rejected",
	30:  "unknown subscriber",
	38:  "network out of order",
	41:  "temporary failure",
	42:  "congestion",
	47:  "resources unavailable, unspecified",
	50:  "requested facility not subscribed",
	69:  "requested facility not implemented",
	96:  "invalid mandatory information",
	111: "protocol error, unspecified",
	127: "interworking, unspecified",
	300: "ME failure",
	301: "SMS service of ME reserved",
	302: "operation not allowed",
	303: "operation not supported",
	304: "invalid PDU mode parameter",
	305: "invalid text mode parameter",
	310: "SIM not inserted",
	311: "SIM PIN required",
	312: "PH-SIM PIN required",
	313: "SIM failure",
	314: "SIM busy",
	315: "SIM wrong",
	316: "SIM PUK required",
	317: "SIM PIN2 required",
	318: "SIM PUK2 required",
	320: "memory failure",
	321: "invalid memory index",
	322: "memory full",
	330: "SMSC address unknown",
	331: "no network service",
	332: "network timeout",
	340: "no +CNMA acknowledgement expected",
	500: "unknown error",
}

// parseCode reads the part after "+CME ERROR:" in either form: AT+CMEE=1 gives a number,
// AT+CMEE=2 (the SIM800's habit after some firmware updates) a text.
func parseCode(s string, table map[int]string, numeric string) (int, string) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		if t, ok := table[n]; ok {
			return n, t
		}
		return n, numeric
	}
	for code, t := range table {
		if strings.EqualFold(t, s) {
			return code, t
		}
	}
	return -1, s
}

func parseCME(rest string) *CMEError {
	code, text := parseCode(rest, cmeTexts, "unknown equipment error")
	return &CMEError{Code: code, Text: text}
}

func parseCMS(rest string) *CMSError {
	code, text := parseCode(rest, cmsTexts, "unknown message service error")
	return &CMSError{Code: code, Text: text}
}

// cmeCode returns the code of a *CMEError or *CMSError in err's chain, or -1.
func cmeCode(err error) int {
	var cme *CMEError
	if errors.As(err, &cme) {
		return cme.Code
	}
	return -1
}

func cmsCode(err error) int {
	var cms *CMSError
	if errors.As(err, &cms) {
		return cms.Code
	}
	return -1
}
