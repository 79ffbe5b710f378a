//go:build windows

package textindex

// openNoFollow: Windows has no O_NOFOLLOW; checkFiles has refused a link
// at the index file just before the open (check-then-open).
const openNoFollow = 0
