package archive

import "github.com/mailkeep/mailkeep/archive/catalog"

// ownFolders leaves out the Gmail label views of fl: folders without a
// file or rows of their own (their messages are the All Mail folder's),
// which the readers of files (repair, reindex) must neither expect a file
// for nor count twice.
func ownFolders(fl []*catalog.Folder) []*catalog.Folder {
	out := fl[:0:0]
	for _, f := range fl {
		if !f.IsView() {
			out = append(out, f)
		}
	}
	return out
}
