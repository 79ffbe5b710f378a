package archive

import (
	"testing"
	"time"
)

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name, in                      string
		env, from, id, subj, received string
	}{
		{"plain", "Return-Path: <bounce@x.org>\r\nFrom: Alice <alice@example.com>\r\nMessage-ID: <1@x>\r\nSubject: hi\r\n\r\nbody From: no@no\r\n",
			"bounce@x.org", "Alice <alice@example.com>", "1@x", "hi", ""},
		{"no return-path", "From: alice@example.com\nSubject: =?UTF-8?q?Gr=C3=B6=C3=9Fe?=\n\nx", "alice@example.com", "alice@example.com", "", "Größe", ""},
		{"folded", "Subject: a\r\n b\r\nFrom: \"Bob, Jr\" <bob@x>\r\n\r\n", "bob@x", "\"Bob, Jr\" <bob@x>", "", "a b", ""},
		{"received newest first", "Received: from a by b; Tue, 3 Mar 2026 10:00:00 +0000\r\nReceived: from c by d; Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n",
			"", "", "", "", "2026-03-03T10:00:00Z"},
		{"garbage", "\x00\x01 not a header\r\n\r\n", "", "", "", "", ""},
		{"empty return-path", "Return-Path: <>\nFrom: <x@y>\n\n", "x@y", "<x@y>", "", "", ""},
		{"body only", "", "", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := parseHeader([]byte(tt.in))
			rec := ""
			if !h.Received.IsZero() {
				rec = h.Received.UTC().Format(time.RFC3339)
			}
			if h.EnvelopeFrom != tt.env || h.From != tt.from || h.MessageID != tt.id || h.Subject != tt.subj || rec != tt.received {
				t.Errorf("got %+v", h)
			}
		})
	}
}
