package proxy

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
)

// requestIDs generates X-Request-Id values: 32 hex digits, unique within
// the process (a counter through a bijective mix) and, with a random
// per-process prefix, across processes. Generating one allocates nothing.
type requestIDs struct {
	prefix [8]byte
	seed   uint64
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	g := &requestIDs{seed: binary.LittleEndian.Uint64(b[8:])}
	copy(g.prefix[:], b[:8])
	return g
}

// appendNext appends a new id to dst.
func (g *requestIDs) appendNext(dst []byte) []byte {
	var b [16]byte
	copy(b[:8], g.prefix[:])
	binary.BigEndian.PutUint64(b[8:], mix64(g.n.Add(1)^g.seed))
	return hex.AppendEncode(dst, b[:])
}

// mix64 is splitmix64's finaliser: a bijection on uint64, so distinct
// counters give distinct ids, that spreads bits so ids look random.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
