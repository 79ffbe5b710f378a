package archiveimap

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// maxDepth bounds the nesting of multiparts and attached messages.
const maxDepth = 50

// bodyStructure is imapserver.ExtractBodyStructure without holding any
// part: leaf parts are counted (bytes, lines) as they stream by. The
// result is the same (TestBodyStructureMatchesImapserver).
func bodyStructure(r io.Reader) imap.BodyStructure {
	br := bufio.NewReader(r)
	h, _ := textproto.ReadHeader(br)
	return partStructure(h, br, 0)
}

func partStructure(rawHeader textproto.Header, r io.Reader, depth int) imap.BodyStructure {
	header := gomessage.Header{Header: rawHeader}
	mediaType, typeParams, _ := header.ContentType()
	primaryType, subType, _ := strings.Cut(mediaType, "/")
	if primaryType == "multipart" && depth < maxDepth {
		bs := &imap.BodyStructureMultiPart{Subtype: subType}
		mr := textproto.NewMultipartReader(r, typeParams["boundary"])
		for {
			part, _ := mr.NextPart()
			if part == nil {
				break
			}
			bs.Children = append(bs.Children, partStructure(part.Header, part, depth+1))
		}
		bs.Extended = &imap.BodyStructureMultiPartExt{
			Params:      typeParams,
			Disposition: disposition(header),
			Language:    language(header),
			Location:    header.Get("Content-Location"),
		}
		return bs
	}
	cr := &lineCounter{r: r}
	bs := &imap.BodyStructureSinglePart{
		Type:        primaryType,
		Subtype:     subType,
		Params:      typeParams,
		ID:          header.Get("Content-Id"),
		Description: header.Get("Content-Description"),
		Encoding:    header.Get("Content-Transfer-Encoding"),
	}
	if (mediaType == "message/rfc822" || mediaType == "message/global") && depth < maxDepth {
		br := bufio.NewReader(cr)
		childHeader, _ := textproto.ReadHeader(br)
		child := partStructure(childHeader, br, depth+1)
		io.Copy(io.Discard, br)
		bs.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      imapserver.ExtractEnvelope(childHeader),
			BodyStructure: child,
			NumLines:      cr.lines,
		}
	} else {
		io.Copy(io.Discard, cr)
	}
	bs.Size = uint32(cr.n)
	if primaryType == "text" {
		bs.Text = &imap.BodyStructureText{NumLines: cr.lines}
	}
	bs.Extended = &imap.BodyStructureSinglePartExt{
		Disposition: disposition(header),
		Language:    language(header),
		Location:    header.Get("Content-Location"),
	}
	return bs
}

type lineCounter struct {
	r     io.Reader
	n     int64
	lines int64
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.lines += int64(bytes.Count(p[:n], []byte("\n")))
	return n, err
}

// disposition and language are imapserver's (unexported) helpers.
func disposition(header gomessage.Header) *imap.BodyStructureDisposition {
	disp, dispParams, _ := header.ContentDisposition()
	if disp == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: disp, Params: dispParams}
}

func language(header gomessage.Header) []string {
	v := header.Get("Content-Language")
	if v == "" {
		return nil
	}
	l := strings.Split(v, ",")
	for i, lang := range l {
		l[i] = strings.TrimSpace(lang)
	}
	return l
}
