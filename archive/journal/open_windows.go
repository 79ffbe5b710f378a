//go:build windows

package journal

// openNoFollow: Windows has no O_NOFOLLOW; the opened file is checked to
// be a regular file (the archive's safefs refuses links on the way).
const openNoFollow = 0
