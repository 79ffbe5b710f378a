package catalog

import (
	"database/sql/driver"
	"encoding/hex"
	"time"

	"modernc.org/sqlite"
)

// Schema 4 stores message dates and checksums compactly. The encodings
// here are used by Commit, by the readers (which also take schema 3's text
// forms, for read-only opens of older catalogs), by the migration (as SQL
// functions) and by journal replay (journals written before schema 4).

// encodeDate is internal_date's schema 4 form: unix seconds and the zone
// offset in minutes. A date that form cannot hold exactly (a fraction of a
// second, an offset of odd seconds; IMAP and mail headers have neither)
// stays RFC 3339 text with offset 0; the zero time is "".
func encodeDate(t time.Time) (any, int64) {
	if t.IsZero() {
		return "", 0
	}
	_, off := t.Zone()
	if t.Nanosecond() != 0 || off%60 != 0 {
		return t.Format(time.RFC3339Nano), 0
	}
	return t.Unix(), int64(off / 60)
}

// decodeDate reads encodeDate's forms (and schema 3's text).
func decodeDate(v any, zone int64) time.Time {
	switch v := v.(type) {
	case int64:
		if zone == 0 {
			return time.Unix(v, 0).UTC()
		}
		return time.Unix(v, 0).In(time.FixedZone("", int(zone)*60))
	case string:
		return parseTime(v)
	case []byte:
		return parseTime(string(v))
	}
	return time.Time{}
}

// encodeStamp is stored_at's schema 4 form: milliseconds since the
// storing run started (runs.started), rounded up, so a message counts as
// stored no earlier than it was. A few bytes where unix milliseconds
// take six.
func encodeStamp(t, runStarted time.Time) int64 {
	d := t.Sub(runStarted)
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond > 0 {
		ms++
	}
	return ms
}

// decodeStamp reads encodeStamp's form (runStarted is the storing run's
// start) and schema 3's RFC 3339 text, which migrated rows keep.
func decodeStamp(v any, runStarted func() time.Time) time.Time {
	switch v := v.(type) {
	case int64:
		return runStarted().Add(time.Duration(v) * time.Millisecond).UTC()
	case string:
		return parseTime(v)
	case []byte:
		return parseTime(string(v))
	}
	return time.Time{}
}

// encodeSHA is sha256's schema 4 form: the 32 bytes of a 64-digit hex
// checksum; anything else is kept as the text it is.
func encodeSHA(s string) any {
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b
		}
	}
	return s
}

// decodeSHA reads encodeSHA's forms as lower-case hex.
func decodeSHA(v any) string {
	switch v := v.(type) {
	case []byte:
		if len(v) == 32 {
			return hex.EncodeToString(v)
		}
		return string(v)
	case string:
		return v
	}
	return ""
}

// textDate is a schema 3 date text convertible exactly to encodeDate's
// integer form.
func textDate(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok || s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	_, off := t.Zone()
	return t, t.Nanosecond() == 0 && off%60 == 0
}

func init() {
	// The schema 4 migration's conversions (migrate4), as SQL functions
	// of mailkeep's own connections.
	sqlite.MustRegisterDeterministicScalarFunction("mailkeep_date_unix", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if t, ok := textDate(args[0]); ok {
			return t.Unix(), nil
		}
		return args[0], nil
	})
	sqlite.MustRegisterDeterministicScalarFunction("mailkeep_date_zone", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if t, ok := textDate(args[0]); ok {
			_, off := t.Zone()
			return int64(off / 60), nil
		}
		return int64(0), nil
	})
}
