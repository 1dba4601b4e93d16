// Package pdu encodes and decodes SMS in the PDU format that GSM modems speak in PDU mode
// (AT+CMGF=0), as specified by 3GPP TS 23.040 (the TPDUs) and TS 23.038 (the alphabets). It is
// pure computation with no I/O: the modem's AT engine hands it the hex lines the modem prints
// and sends the hex it returns, and the modem simulator uses the reverse directions to play the
// network.
//
// Kiosks receive reports texted by RT/RW heads and send confirmations back, so the package
// covers exactly that traffic:
//
//   - SMS-DELIVER, decoded (DecodeDeliver) and, for the simulator, encoded (EncodeDeliver).
//   - SMS-SUBMIT, encoded (EncodeSubmit) and, for the simulator, decoded (DecodeSubmit).
//   - The GSM 7-bit default alphabet with its extension table (^ { } \ [ ~ ] | € and form feed),
//     8-bit data, and UCS2 read as UTF-16 so that emoji (surrogate pairs) survive.
//   - Concatenated messages with 8-bit or 16-bit references, split on character boundaries when
//     encoding and reassembled by an Assembler when decoding, which also hands on what arrived of
//     a set whose other parts never came.
//   - Numbers (international, national, unknown) and alphanumeric senders such as "TELKOMSEL".
//   - The service-centre timestamp in its own zone; Indonesian networks send WIB, +0700.
//
// Not supported: compressed user data (TS 23.042; a DCS with the compression bit returns
// ErrUnsupported), national language shift tables (their escape codes decode as the default
// alphabet characters, as TS 23.038 tells a receiver without them to do), and the TPDUs a kiosk
// does not use: STATUS-REPORT, SUBMIT-REPORT, COMMAND (DecodeDeliver returns ErrNotDeliver for
// them). Information elements other than concatenation (ports, SIM toolkit, EMS formatting) are
// skipped, so the text of such a message is still read. Message class, message waiting and the
// protocol identifier are reported as raw octets and not acted on.
//
// Decoding is strict about structure: a length that overruns the PDU, octets left over after
// the user data, a non-BCD timestamp or a filler digit inside a number make an error wrapping
// ErrMalformed, whose *MalformedError names the field and the octet. It is lenient about
// content, as the specifications ask of a receiver: an unknown escape, an odd UCS2 octet or a
// lone surrogate become a character (the default-alphabet one or U+FFFD), never an error or a
// panic. The 7-bit user data is read by its septet count, so the 7 spare bits at the end of a
// message of 8n-1 septets never show as a stray '@'; the encoders fill those bits with <CR>, as
// TS 23.038 asks, for receivers that count octets.
package pdu
