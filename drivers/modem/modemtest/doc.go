// Package modemtest is a simulated SIMCom SIM800L GSM modem for tests. It sits on the master side
// of a pty, so the code under test opens a real serial device (Path, a symlink to the pty's
// slave) with its real serial library and speaks AT commands to it, while the test plays the
// network (Deliver, DeliverParts, DeliverPDU), reads what was sent (Sent, WaitSent), and breaks
// things: FailNext, SetErrorAll, Hang, Garbage, PowerOff, Brownout, Unplug.
//
// What a SIM800L does, and so the simulator:
//
//   - Power-up. Echo is on. After BootDelay (input is dropped until then) it prints RDY,
//     "+CFUN: 1" and "+CPIN: READY", and after ReadyDelay "Call Ready" and "SMS Ready". With a
//     PIN set it prints "+CPIN: SIM PIN" and stops there until AT+CPIN="<PIN>" (then
//     "+CPIN: READY" and, after ReadyDelay, the rest). Settings (echo, AT+CMEE, AT+CREG, AT+CNMI,
//     AT+CMGF, AT+COPS format) return to their power-up values at every boot; new-message
//     indications are off until AT+CNMI asks for them. The SIM (its storage, PIN attempts) keeps
//     its state across power cycles.
//   - Until "SMS Ready", SMS commands (AT+CPMS, AT+CNMI, AT+CMGL, AT+CMGR, AT+CMGD, AT+CMGS,
//     AT+CSCA) answer +CMS ERROR: 302; with the SIM locked, 311 (PIN) or 316 (PUK).
//   - Echo is of each byte as it arrives, CR included, so an answer reads "AT\r\r\nOK\r\n". The
//     PDU typed after the prompt is echoed too, the Ctrl-Z or ESC that ends it is not.
//   - Answers are framed "\r\n<line>\r\n"; the information lines of one command follow each other
//     without blank lines ("+CMGL: 1,…\r\n<PDU>\r\n+CMGL: 2,…\r\n<PDU>\r\n\r\nOK\r\n"), and each
//     command of a line like "AT+CSQ;+CREG?" gets its own block. The AT+CMGS prompt is "\r\n> "
//     with no line ending.
//   - Errors follow AT+CMEE: 0 (the default) plain ERROR, 1 "+CME ERROR: 16" or
//     "+CMS ERROR: 321", 2 the SIM800's words ("+CME ERROR: incorrect password"). A malformed
//     command or parameter is a plain ERROR whatever AT+CMEE says, and so is any command the
//     simulator does not know, including AT+CEREG (the SIM800L is 2G only).
//   - PIN: a wrong one answers +CME ERROR: 16; the third locks the SIM ("+CPIN: SIM PUK"), which
//     AT+CPIN="<PUK>","<new PIN>" unlocks. AT+SPIC tells the attempts left ("+SPIC: 3,10,3,10").
//   - Registration (AT+CREG? "+CREG: <n>,<stat>") follows SetRegistration once the modem is up,
//     its SIM unlocked and AT+CFUN=1; with AT+CREG=1 a change is announced as "+CREG: <stat>"
//     (one field: a URC, not an answer), with AT+CREG=2 with location and cell. Unregistered, the
//     modem receives nothing (the network holds it) and AT+CMGS fails with +CMS ERROR: 331.
//   - Storage is the SIM ("SM" only; other memories answer +CMS ERROR: 302), Capacity slots,
//     filled lowest index first. AT+CMGL=<stat>[,1] and AT+CMGR=<index>[,1] mark unread
//     messages read unless the 1 is given. AT+CMGR of an empty slot answers a bare OK, an index
//     outside the storage +CMS ERROR: 321, as AT+CMGD does (deleting an empty slot is OK).
//     AT+CMGD=<index>,<delflag> deletes by status as TS 27.005 says.
//   - A full SIM stores nothing more. The network keeps the message and retries: the simulator
//     holds it (Backlog) and stores it, in arrival order and announced with +CMTI, once a slot
//     frees or the modem is back on and registered. With AT+CNMI=…,2,… a message is not stored
//     but printed as "+CMT: ,<len>" and its PDU, and lost if the line is down.
//   - AT+CMGS=<length> takes the TPDU length (the PDU without its SMSC prefix); a PDU whose
//     length differs, or that is not a well-formed SMS-SUBMIT, answers +CMS ERROR: 304 at once. A
//     good one is answered "+CMGS: <mr>" after SendDelay. ESC abandons the message with OK.
//   - Text mode (AT+CMGF=1) is accepted but not emulated: AT+CMGL, AT+CMGR and AT+CMGS answer
//     +CMS ERROR: 303 in it.
//   - AT+CFUN=1,1 restarts the modem; AT+CPOWD=1 prints "NORMAL POWER DOWN" and switches it off.
//     Brownout prints "UNDER-VOLTAGE POWER DOWN" and restarts it, as a weak supply does.
//   - A line that does not start with AT is ignored, as line noise is. Backspace edits the line.
//
// URCs (+CMTI, +CREG, RDY…) go out as they happen, between answers or between a command's echo
// and its answer, never inside an answer, unless a test puts them there with InjectURC or
// DeliverDuring (between the entries of a +CMGL listing, or just before its OK) to check that the
// code under test tells them apart.
//
// Unplug closes the pty master: the host's reads and writes fail (EIO), Path disappears, and
// the modem is off. Replug makes a new pty, points Path at it and boots. The simulator keeps its
// own handle on the slave open, so the code under test can close and reopen the port at will.
// Unlike a real UART, which drops what arrives while the port is closed, the pty keeps what the
// modem said meanwhile (the boot banner, say) for the next open.
package modemtest
