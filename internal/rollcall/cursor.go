package rollcall

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"
)

// List cursors. A cursor is the opaque `cursor` query parameter of every list: the boundary
// of the last item of a page (the next page starts strictly after it), authenticated with
// HMAC-SHA256 under a key derived from the signing secret and bound to a scope (the list and
// its filters), so that a cursor cannot be forged, altered, or replayed on another list.
//
//	cursor  = base64url(payload || tag)            (no padding; 76 characters)
//	payload = version (1 byte, 2) || created_at (int64 Unix microseconds, big endian)
//	          || seq (int64, big endian) || id (32)
//	tag     = HMAC-SHA256(key, uvarint(len(scope)) || scope || payload)[:16]
//	key     = HMAC-SHA256(signing secret, "rollcall/cursor-key/v1")

const (
	cursorVersion    = 2
	cursorIDLen      = 32
	cursorTagLen     = 16
	cursorPayloadLen = 1 + 8 + 8 + cursorIDLen
	cursorRawLen     = cursorPayloadLen + cursorTagLen
)

var cursorEncoding = base64.RawURLEncoding.Strict()

// CursorLen is the length of every valid cursor.
var CursorLen = cursorEncoding.EncodedLen(cursorRawLen)

// ErrInvalidCursor is any cursor that does not verify: truncated, tampered, garbage, made
// for another list or under another secret.
var ErrInvalidCursor = errors.New("invalid cursor")

// CursorKey derives the cursor MAC key from the signing secret (a key of its own, so that
// nothing else signed with the secret can pass as a cursor).
func CursorKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("rollcall/cursor-key/v1"))
	return m.Sum(nil)
}

// ListScope names a list and its filters unambiguously (each part length-prefixed); a
// cursor verifies only under the scope it was made for.
func ListScope(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

func cursorTag(key []byte, scope string, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	var n [binary.MaxVarintLen64]byte
	m.Write(n[:binary.PutUvarint(n[:], uint64(len(scope)))])
	m.Write([]byte(scope))
	m.Write(payload)
	return m.Sum(nil)[:cursorTagLen]
}

// EncodeCursor makes the cursor of boundary b in scope. b.ID must be an enrollment id and
// b.CreatedAt is kept to the microsecond (the precision of stored times).
func EncodeCursor(key []byte, scope string, b Boundary) string {
	raw := make([]byte, cursorPayloadLen, cursorRawLen)
	raw[0] = cursorVersion
	binary.BigEndian.PutUint64(raw[1:9], uint64(b.CreatedAt.UnixMicro()))
	binary.BigEndian.PutUint64(raw[9:17], uint64(b.Seq))
	copy(raw[17:], b.ID)
	raw = append(raw, cursorTag(key, scope, raw)...)
	return cursorEncoding.EncodeToString(raw)
}

// DecodeCursor verifies a cursor made by EncodeCursor under the same key and scope and
// returns its boundary; anything else is ErrInvalidCursor.
func DecodeCursor(key []byte, scope string, s string) (Boundary, error) {
	if len(s) != CursorLen {
		return Boundary{}, ErrInvalidCursor
	}
	raw, err := cursorEncoding.DecodeString(s)
	if err != nil || len(raw) != cursorRawLen {
		return Boundary{}, ErrInvalidCursor
	}
	payload, tag := raw[:cursorPayloadLen], raw[cursorPayloadLen:]
	if !hmac.Equal(tag, cursorTag(key, scope, payload)) {
		return Boundary{}, ErrInvalidCursor
	}
	id := string(payload[17:])
	seq := int64(binary.BigEndian.Uint64(payload[9:17]))
	if payload[0] != cursorVersion || !ValidEnrollmentID(id) || seq < 0 {
		return Boundary{}, ErrInvalidCursor
	}
	micros := int64(binary.BigEndian.Uint64(payload[1:9]))
	return Boundary{CreatedAt: time.UnixMicro(micros).UTC(), ID: id, Seq: seq}, nil
}
