package archive

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"
)

// sniffLimit bounds how much of a message's start is examined for header
// fields; the rest streams through untouched.
const sniffLimit = 64 << 10

// headerInfo is what the catalog and the mbox From line take from a header.
type headerInfo struct {
	EnvelopeFrom string    // Return-Path, else the From address
	From         string    // display form of From, for listings
	MessageID    string    // without angle brackets
	Subject      string    // decoded
	Received     time.Time // date of the newest (topmost) Received: field
}

// sniffHeader peeks at (without consuming) the start of a message and
// extracts a few header fields. Malformed headers yield empty fields, never
// an error: the bytes are archived as they are regardless.
func sniffHeader(br *bufio.Reader) headerInfo {
	buf, _ := br.Peek(sniffLimit)
	return parseHeader(buf)
}

func parseHeader(buf []byte) headerInfo {
	if i := bytes.Index(buf, []byte("\n\n")); i >= 0 {
		buf = buf[:i+1]
	}
	if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
		buf = buf[:i+2]
	}
	var h headerInfo
	var returnPath, from string
	for _, f := range unfold(buf) {
		name, value, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "return-path":
			if returnPath == "" {
				returnPath = strings.Trim(value, "<> \t")
			}
		case "from":
			if from == "" {
				from = value
			}
		case "message-id":
			if h.MessageID == "" {
				h.MessageID = strings.Trim(value, "<> \t")
			}
		case "subject":
			if h.Subject == "" {
				h.Subject = decodeWords(value)
			}
		case "received":
			if h.Received.IsZero() {
				if i := strings.LastIndexByte(value, ';'); i >= 0 {
					if t, err := mail.ParseDate(strings.TrimSpace(value[i+1:])); err == nil {
						h.Received = t
					}
				}
			}
		}
	}
	h.From = decodeWords(from)
	h.EnvelopeFrom = returnPath
	if h.EnvelopeFrom == "" && from != "" {
		if a, err := mail.ParseAddress(from); err == nil {
			h.EnvelopeFrom = a.Address
		} else if i, j := strings.IndexByte(from, '<'), strings.LastIndexByte(from, '>'); i >= 0 && j > i {
			h.EnvelopeFrom = from[i+1 : j]
		}
	}
	return h
}

// unfold splits a header block into logical fields.
func unfold(buf []byte) []string {
	var out []string
	for _, line := range bytes.Split(buf, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1] += " " + strings.TrimSpace(string(line))
			continue
		}
		out = append(out, string(line))
	}
	return out
}

func decodeWords(s string) string {
	d := mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) { return input, nil }}
	if out, err := d.DecodeHeader(s); err == nil {
		return out
	}
	return s
}
