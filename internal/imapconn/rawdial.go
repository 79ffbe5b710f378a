package imapconn

import "context"

// DialRaw is the package's DialRaw as a method, so that a Config offers
// raw connections to the code that holds it as an interface (fetch/
// imapsrc's Gmail mode reads X-GM-EXT-1 items on one, with gmailext).
func (c Config) DialRaw(ctx context.Context) (*Raw, error) { return DialRaw(ctx, c) }
