// Package crossserver holds only tests: backup and restore round trips run
// with the mailkeep binary between different IMAP server implementations
// (Dovecot via dovecottest, mox via moxtest) and restores onto quirkimap's
// scripted servers, which reproduce what Cyrus, Courier, UW IMAP and Dovecot
// do to appended messages. The tests pin today's behaviour message by
// message: what arrives exact, what a server alters (and how), what is lost.
package crossserver
