package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/mailkeep/mailkeep/internal/config"
)

// shardFlag is backup's --shard K/N: this run backs up only the configured
// accounts of shard K of N, so that N machines (N Kubernetes CronJobs) share
// one configuration file without two of them ever backing up the same
// account.
//
// An account's shard depends on its name and on N alone (rendezvous
// hashing, below), never on its position in the file or on the other
// accounts: adding or removing accounts moves no other account, and
// growing N to N+1 moves only the accounts that the new shard N+1 takes
// (about 1/(N+1) of them), none between the old shards.
type shardFlag struct {
	k, n int // 1 <= k <= n; n == 0: no --shard
}

func (s *shardFlag) String() string {
	if s == nil || s.n == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.k, s.n)
}

// maxShards bounds N: far more machines than anyone runs, small enough that
// a typo (--shard 1/1000000) is caught.
const maxShards = 1000

func (s *shardFlag) Set(v string) error {
	ks, ns, ok := strings.Cut(v, "/")
	k, kerr := strconv.Atoi(strings.TrimSpace(ks))
	n, nerr := strconv.Atoi(strings.TrimSpace(ns))
	switch {
	case !ok || kerr != nil || nerr != nil:
		return fmt.Errorf("want K/N (shard K of N, e.g. 2/3), got %q", v)
	case n < 1 || n > maxShards:
		return fmt.Errorf("%q: N must be 1 to %d", v, maxShards)
	case k < 1 || k > n:
		return fmt.Errorf("%q: K must be 1 to N (%d); shards are numbered from 1", v, n)
	}
	s.k, s.n = k, n
	return nil
}

// shardOf is the shard (1 to n) of the account named name: the k whose
// weight, the first 8 bytes of SHA-256(name NUL k) read big-endian, is
// the highest (rendezvous or highest-random-weight hashing; ties, which
// need a SHA-256 collision on 64 bits, go to the lower k).
func shardOf(name string, n int) int {
	best, bestW := 1, uint64(0)
	for k := 1; k <= n; k++ {
		h := sha256.Sum256([]byte(name + "\x00" + strconv.Itoa(k)))
		if w := binary.BigEndian.Uint64(h[:8]); k == 1 || w > bestW {
			best, bestW = k, w
		}
	}
	return best
}

// shardSelect keeps the accounts of this shard. named is true when the
// accounts were named on the command line: then every one of them must be
// in this shard (with one volume per shard, backing an account up in the
// wrong shard would start a second, partial archive on the wrong volume),
// and the error says which shard it belongs to.
func (s shardFlag) shardSelect(accts []config.Account, named bool) ([]config.Account, error) {
	if s.n == 0 {
		return accts, nil
	}
	var out []config.Account
	var wrong []string
	for _, a := range accts {
		if k := shardOf(a.Name, s.n); k == s.k {
			out = append(out, a)
		} else if named {
			wrong = append(wrong, fmt.Sprintf("%s is in shard %d/%d", a.Name, k, s.n))
		}
	}
	if len(wrong) > 0 {
		return nil, usageErr("--shard %s: %s", s.String(), strings.Join(wrong, ", "))
	}
	return out, nil
}
