#!/usr/bin/env python3
"""Pull every message of an IMAP server with Python's imaplib and print one
line per message: folder, UID, flags, size, SHA-256 (sorted). Used by
TestServeImaplib against Dovecot and "mailkeep serve", whose outputs must be
equal. Usage: serve_imaplib.py HOST PORT USER PASS [SEARCH...]"""
import hashlib, imaplib, re, sys

host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
searches = sys.argv[5:]
M = imaplib.IMAP4(host, port)
M.login(user, pw)
typ, data = M.list()
assert typ == "OK", data
names = []
for line in data:
    m = re.match(rb'\((?P<attrs>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$', line)
    assert m, line
    if b"\\noselect" in m.group("attrs").lower():
        continue
    names.append(m.group("name").decode())
out = []
def label(name):
    """The folder name without IMAP quoting (servers quote differently)."""
    if name.startswith('"'):
        return re.sub(r'\\(.)', r'\1', name[1:-1])
    return name

for name in sorted(names, key=label):
    typ, data = M.select(name, readonly=True)
    assert typ == "OK", (name, data)
    if int(data[0]) == 0:
        continue
    typ, data = M.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK", (name, data)
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, body = item
        uid = re.search(rb"UID (\d+)", head).group(1).decode()
        size = int(re.search(rb"RFC822\.SIZE (\d+)", head).group(1))
        flags = re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode().split()
        flags = sorted(f for f in flags if f.lower() != "\\recent")
        assert size == len(body), (name, uid, size, len(body))
        out.append("%s %s %s %d %s" % (label(name), uid, ",".join(flags), size, hashlib.sha256(body).hexdigest()))
    for crit in searches:
        typ, data = M.uid("SEARCH", crit)
        assert typ == "OK", (name, crit, data)
        out.append("%s SEARCH %s: %s" % (label(name), crit, " ".join(sorted(data[0].decode().split(), key=int))))
    M.close()
M.logout()
print("\n".join(out))
