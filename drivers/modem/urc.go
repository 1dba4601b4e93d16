package modem

import (
	"strconv"
	"strings"
)

// URCKind says what an unsolicited result code announces.
type URCKind int

const (
	// URCOther is a recognised "+XXX:" or "^XXX:" line that no command in flight claims, and
	// the modems' other boot chatter ("PB DONE", "+CFUN: 1", Huawei's "^RSSI:").
	URCOther URCKind = iota
	// URCNewMessage is "+CMTI: <mem>,<index>": a message was stored. Storage and Index are set.
	URCNewMessage
	// URCMessage is "+CMT: [<alpha>],<length>" followed by the PDU line: a message delivered
	// directly, not stored. PDU is set.
	URCMessage
	// URCRing is an incoming call ("RING").
	URCRing
	// URCRegistration is "+CREG: <stat>", "+CGREG: <stat>" or "+CEREG: <stat>". Stat is set.
	URCRegistration
	// URCReady is "RDY": the modem has (re)started.
	URCReady
	// URCSMSReady is "SMS Ready" (SIMCom 2G), "SMS DONE" (SIM7600) or "+QIND: SMS DONE".
	URCSMSReady
	// URCCallReady is "Call Ready".
	URCCallReady
	// URCSIM is "+CPIN: <code>" outside AT+CPIN?: the SIM became ready, locked or was removed.
	URCSIM
	// URCPowerDown is "NORMAL POWER DOWN", "UNDER-VOLTAGE POWER DOWN", "POWERED DOWN", or one of
	// the SIM800's voltage warnings ("UNDER-VOLTAGE WARNNING", sic).
	URCPowerDown
)

func (k URCKind) String() string {
	switch k {
	case URCOther:
		return "other"
	case URCNewMessage:
		return "new_message"
	case URCMessage:
		return "message"
	case URCRing:
		return "ring"
	case URCRegistration:
		return "registration"
	case URCReady:
		return "ready"
	case URCSMSReady:
		return "sms_ready"
	case URCCallReady:
		return "call_ready"
	case URCSIM:
		return "sim"
	case URCPowerDown:
		return "power_down"
	}
	return "URCKind(" + strconv.Itoa(int(k)) + ")"
}

// URC is an unsolicited result code, separated from command responses even when it arrives in
// the middle of one.
type URC struct {
	Kind    URCKind
	Line    string // the line as received (for URCMessage, the +CMT header)
	Index   int    // URCNewMessage: the storage index
	Storage string // URCNewMessage: the storage name, e.g. "SM"
	PDU     string // URCMessage: the hex PDU
	Stat    int    // URCRegistration: the <stat> field
}

// plainURCs are the unsolicited lines without a "+XXX:" prefix.
var plainURCs = map[string]URCKind{
	"RING":                     URCRing,
	"RDY":                      URCReady,
	"SMS READY":                URCSMSReady,
	"SMS DONE":                 URCSMSReady,
	"CALL READY":               URCCallReady,
	"PB DONE":                  URCOther,
	"NORMAL POWER DOWN":        URCPowerDown,
	"POWERED DOWN":             URCPowerDown,
	"UNDER-VOLTAGE POWER DOWN": URCPowerDown,
	"OVER-VOLTAGE POWER DOWN":  URCPowerDown,
	"UNDER-VOLTAGE WARNNING":   URCPowerDown,
	"UNDER-VOLTAGE WARNING":    URCPowerDown,
	"OVER-VOLTAGE WARNNING":    URCPowerDown,
	"OVER-VOLTAGE WARNING":     URCPowerDown,
}

// plainURC reports whether line is one of the unsolicited lines without a prefix.
func plainURC(line string) (URC, bool) {
	k, ok := plainURCs[strings.ToUpper(line)]
	if !ok {
		return URC{}, false
	}
	return URC{Kind: k, Line: line}, true
}

// prefixOf returns the "+XXX" or "^XXX" name of an information line, or "" if it has none.
func prefixOf(line string) string {
	if len(line) < 2 || (line[0] != '+' && line[0] != '^') {
		return ""
	}
	i := strings.IndexByte(line, ':')
	if i < 2 {
		return ""
	}
	name := line[:i]
	for j := 1; j < len(name); j++ {
		c := name[j]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return strings.ToUpper(name)
}

// commandName returns the name under which a command's answers come: "+CMGL" for "AT+CMGL=4",
// "^CPIN" for "AT^CPIN?", "" for "AT" or "ATE0".
func commandName(cmd string) string {
	if len(cmd) < 3 || !strings.EqualFold(cmd[:2], "AT") || (cmd[2] != '+' && cmd[2] != '^') {
		return ""
	}
	rest := cmd[2:]
	end := len(rest)
	for j := 1; j < len(rest); j++ {
		c := rest[j]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			end = j
			break
		}
	}
	return strings.ToUpper(rest[:end])
}

// isRegistration reports whether name is one of the registration reports.
func isRegistration(name string) bool {
	return name == "+CREG" || name == "+CGREG" || name == "+CEREG"
}

// claims reports whether an information line named name belongs to the command cmdName in
// flight. The registration reports need their fields looked at: AT+CREG=1 makes the modem send
// "+CREG: <stat>[,<lac>,<ci>]" on its own, while AT+CREG? answers "+CREG: <n>,<stat>[,…]", so a
// "+CREG:" line during AT+CREG? is the answer only if its second field is a bare number.
func claims(cmdName, name, line string) bool {
	if cmdName == "" || cmdName != name {
		return false
	}
	if isRegistration(name) {
		f := fields(line)
		return len(f) >= 2 && !f[1].quoted && isNumber(f[1].v)
	}
	return true
}

// classify turns a line that no command claims into a URC. ok is false for a line that is not
// a known URC; a "+XXX:" line is always known (URCOther at worst).
func classify(line string) (URC, bool) {
	if u, ok := plainURC(line); ok {
		return u, true
	}
	name := prefixOf(line)
	if name == "" {
		return URC{}, false
	}
	u := URC{Kind: URCOther, Line: line}
	f := fields(line)
	switch name {
	case "+CMTI":
		if len(f) >= 2 && f[0].v != "" {
			if n, err := strconv.Atoi(f[1].v); err == nil && n >= 0 {
				u.Kind, u.Storage, u.Index = URCNewMessage, f[0].v, n
			}
		}
	case "+CMT":
		u.Kind = URCMessage
	case "+CREG", "+CGREG", "+CEREG":
		if len(f) >= 1 {
			if n, err := strconv.Atoi(f[0].v); err == nil {
				u.Kind, u.Stat = URCRegistration, n
			}
		}
	case "+CPIN":
		u.Kind = URCSIM
	case "+QIND":
		if len(f) >= 1 && strings.EqualFold(f[0].v, "SMS DONE") {
			u.Kind = URCSMSReady
		}
	}
	return u, true
}

// field is one comma-separated value of an information line.
type field struct {
	v      string // unquoted and trimmed
	quoted bool
}

// fields splits the part of an information line after its "+XXX:" into values, honouring
// double quotes (an operator name may hold a comma). A line without a prefix is split whole.
func fields(line string) []field {
	if name := prefixOf(line); name != "" {
		line = line[len(name)+1:]
	}
	var out []field
	var cur strings.Builder
	quoted, inQuote := false, false
	flush := func() {
		v := cur.String()
		if !quoted {
			v = strings.TrimSpace(v)
		}
		out = append(out, field{v: v, quoted: quoted})
		cur.Reset()
		quoted = false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			quoted = true
		case c == ',' && !inQuote:
			flush()
		case inQuote:
			cur.WriteByte(c)
		case c == ' ' || c == '\t':
			if cur.Len() > 0 {
				cur.WriteByte(c)
			}
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isHex reports whether s is a non-empty, even-length string of hex digits: a PDU line.
func isHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
