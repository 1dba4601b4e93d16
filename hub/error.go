package hub

import (
	"errors"
	"fmt"
)

// Error codes. They are part of the HTTP API (docs/api.md), so they never change meaning.
const (
	CodeInvalid     = "invalid"     // the request is malformed or breaks a rule
	CodeNotFound    = "not_found"   // no such ticket or device
	CodeConflict    = "conflict"    // the request contradicts the current state
	CodeUnavailable = "unavailable" // the hub is shutting down or overloaded; retry later
	CodeInternal    = "internal"    // a bug or an unexpected failure; details are only logged

	CodeUnauthorized = "unauthorized" // no valid session or API token, or a wrong password
	CodeForbidden    = "forbidden"    // authenticated, but this user may not do this
	CodeTooMany      = "too_many"     // too many attempts (wrong passwords); retry after a while
)

// Error is an error the hub means to show to its caller: Code says what kind, Message is safe
// to show an operator. Anything that is not an *Error is internal by definition.
type Error struct {
	Code    string
	Message string
	Err     error // the cause, kept for logs and errors.Is
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil, and CodeInternal
// for any other error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the message of the first *Error in err's chain. Other errors may carry
// file names or SQL, so they become a generic message.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}
