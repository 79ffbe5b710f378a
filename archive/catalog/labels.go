package catalog

import (
	"context"
	"fmt"
	"strings"
)

// Gmail labels (schema 5). A message backed up from Gmail carries its
// X-GM-MSGID, X-GM-THRID and X-GM-LABELS. messages.labels holds the
// labels one per line, as Gmail names them: system labels with their
// backslash (\Inbox, \Sent, \Important, \Starred, \Draft), user labels by
// their UTF-8 name ("Work/Projects"). NULL means "not known to be Gmail";
// an empty string, a Gmail message without labels.

// JoinLabels encodes labels for messages.labels. A label holding a line
// break (Gmail allows none) has it replaced by a space.
func JoinLabels(labels []string) string {
	clean := make([]string, 0, len(labels))
	for _, l := range labels {
		l = strings.NewReplacer("\r", " ", "\n", " ").Replace(l)
		if l != "" {
			clean = append(clean, l)
		}
	}
	return strings.Join(clean, "\n")
}

// SplitLabels decodes messages.labels.
func SplitLabels(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, "\n")
}

// gmailID stores a Gmail id, NULL for none. Ids are unsigned 64-bit; the
// column holds their bits as a signed integer.
func gmailID(v uint64) any {
	if v == 0 {
		return nil
	}
	return int64(v)
}

// labelsValue stores a message's labels: NULL for a message not from
// Gmail (no X-GM-MSGID and no labels).
func labelsValue(msgID uint64, labels []string) any {
	if msgID == 0 && labels == nil {
		return nil
	}
	return JoinLabels(labels)
}

// GmailMeta is what Gmail says of one catalogued message: its ids and its
// current labels.
type GmailMeta struct {
	ID     int64 // the catalog's message id
	MsgID  uint64
	ThrID  uint64
	Labels []string
}

// SetGmail records the Gmail ids and labels of catalogued messages (label
// changes found by an incremental run, or a message archived before Gmail
// mode), in one transaction, journaled like every write.
func (c *Catalog) SetGmail(ctx context.Context, metas []GmailMeta) error {
	if len(metas) == 0 {
		return nil
	}
	err := c.write(ctx, func(tx *wtx) error {
		st, err := tx.PrepareContext(tx.ctx, `UPDATE messages SET gm_msgid=?, gm_thrid=?, labels=? WHERE id=?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, m := range metas {
			if _, err := st.ExecContext(tx.ctx, gmailID(m.MsgID), gmailID(m.ThrID), labelsValue(m.MsgID, m.Labels), m.ID); err != nil {
				return err
			}
			tx.touch("messages", m.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("catalog: gmail labels: %w", err)
	}
	return nil
}
