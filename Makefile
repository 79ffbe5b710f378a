# make test: the whole test suite (installs Dovecot etc. when missing).
# make bench: speed and memory against a private Dovecot and a generated corpus.
.PHONY: test bench build
build:
	go build -o mailkeep ./cmd/mailkeep
test:
	./scripts/test
bench:
	go test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench
