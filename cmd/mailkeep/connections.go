package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/mailkeep/mailkeep/internal/config"
)

// maxConnections is the most parallel IMAP connections mailkeep opens to
// one server: the configuration file's limit (connections = 1 to 32).
const maxConnections = 32

// connectionsVar registers --connections N (1 to maxConnections, default
// the configuration's default) into p. Out-of-range values are usage
// errors, as in the configuration file.
func connectionsVar(fs *flag.FlagSet, p *int) {
	*p = config.DefaultConnections
	fs.Func("connections", fmt.Sprintf("parallel IMAP connections, 1 to %d (default %d)", maxConnections, config.DefaultConnections), func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxConnections {
			return fmt.Errorf("want 1 to %d, not %q", maxConnections, v)
		}
		*p = n
		return nil
	})
}
