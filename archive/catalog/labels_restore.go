package catalog

import (
	"context"
	"fmt"
)

// HasLabels reports whether any message of the catalog has a Gmail label,
// so that restore and export can leave an archive without any exactly as
// they always did without reading every message's record first. Before
// schema 5 (a read-only open of an older catalog) there are none.
func (c *Catalog) HasLabels(ctx context.Context) (bool, error) {
	if !c.v5 {
		return false, nil
	}
	var n int
	if err := c.queryRow(ctx, `SELECT EXISTS(SELECT 1 FROM messages WHERE labels IS NOT NULL AND labels <> '')`).Scan(&n); err != nil {
		return false, fmt.Errorf("catalog: labels: %w", err)
	}
	return n == 1, nil
}
