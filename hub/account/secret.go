package account

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// secretBytes is the entropy of session and API tokens: 256 bits.
const secretBytes = 32

// TokenPrefix starts every API token, so that a token pasted where it should not be (a log, a
// chat, a repository) is recognisable, and so that a session cookie is never taken for one.
const TokenPrefix = "ktg_"

// newSecret returns a random token as URL-safe base64.
func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashSecret is what is stored for a token. A plain SHA-256 suffices: unlike passwords, the
// tokens carry 256 random bits, so there is nothing to guess from the hash.
func hashSecret(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// wellFormed reports whether s could be a token made by newSecret (after prefix), so that junk
// is refused before it reaches the database.
func wellFormed(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(secretBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// csrfFor derives a session's CSRF token from its cookie token: tied to the session, unknown to
// another site (which cannot read the cookie), and needing no storage.
func csrfFor(sessionToken string) string {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte("kentongan csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// tokenDisplayPrefix is the part of an API token shown in listings: enough to tell tokens apart,
// far too little to guess the rest.
func tokenDisplayPrefix(token string) string {
	const n = len(TokenPrefix) + 6
	if len(token) < n {
		return token
	}
	return token[:n]
}

// splitAPIToken returns the secret part of an API token, or false if it is not one.
func splitAPIToken(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok || !wellFormed(rest) {
		return "", false
	}
	return rest, true
}
