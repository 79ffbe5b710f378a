package verify

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// verify's per-folder query reads the folder's rows through an index, never
// a scan of every message.
func TestEachMsgUsesIndex(t *testing.T) {
	c, err := catalog.Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{eachMsgQuery, `SELECT COALESCE(NULLIF(file,''),(SELECT path FROM folders WHERE folders.id=folder_id)) FROM messages WHERE id=?`} {
		rows, err := c.DB().Query(`EXPLAIN QUERY PLAN `+q, 1)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if strings.Contains(p, "SCAN") {
			t.Errorf("query scans:\n%s\nplan: %s", q, p)
		}
	}
}
