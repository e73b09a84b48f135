package spool

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// ChunkSize is the piece in which bodies take memory: a body of up to one
// chunk costs one pooled buffer and no allocation.
const ChunkSize = 64 << 10

type chunk = [ChunkSize]byte

var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

// stageSize is the write buffer of a body spilling to disk: the one part
// of a spilled body in memory, outside the memory budget, for as long as
// its source takes to send it (a slow client's upload). It is small for
// that reason, like nginx's client_body_buffer_size: a thousand slow
// senders spilling hold 16 MiB.
const stageSize = 16 << 10

type stage = [stageSize]byte

var stagePool = sync.Pool{New: func() any { return new(stage) }}

// A Body is one body held whole, or its first part when the room ran out:
// its bytes in memory chunks, then in a temporary file, then (only if
// writing the file failed) a last chunk that never reached it. Once
// filled, a Body does not change, and any number of Readers may read it at
// once (hedged attempts send one request body in parallel). It is released
// when its last reference goes: the one Fill returns, and one per Reader.
type Body struct {
	store  *Store
	chunks []*chunk
	size   int64 // bytes held in all
	memory int64 // of which in chunks
	file   *os.File
	disk   int64 // disk budget taken, in whole chunks
	// tail holds tailLen bytes read for the file when writing it failed.
	tail    *stage
	tailLen int
	refs    atomic.Int32
}

var bodyPool = sync.Pool{New: func() any { return new(Body) }}

// Len is the number of bytes the body holds.
func (b *Body) Len() int64 { return b.size }

// Fill reads r, a body of size bytes (< 0: unknown), into a new Body
// until r ends, fails or the room runs out. complete reports that r ended
// (io.EOF): the Body holds all of it. An error is r's, and no Body is
// returned. A nil error with complete false means the room ran out: the
// Body holds what was read, the rest is still in r, and the caller
// streams it after the Body (counted as a fallback). A body whose size is
// known not to fit is not read at all: it streams whole.
//
// Fill stores the bytes as it reads them: memory while the budget has a
// chunk to give, then the file while the disk budget has one.
func (s *Store) Fill(r io.Reader, size int64) (b *Body, complete bool, err error) {
	b = bodyPool.Get().(*Body)
	b.store = s
	b.refs.Store(1)
	if size > 0 && !s.room.Fits(size) {
		s.fallbacks.Add(1)
		return b, false, nil
	}
	var buf *stage // the file's write buffer, taken when the body spills
	defer func() {
		if buf != nil {
			stagePool.Put(buf)
		}
		if err != nil {
			b.Release()
			b = nil
		}
	}()
	for {
		var n int
		switch {
		case b.file == nil && s.room.TakeMemory(ChunkSize):
			c := chunkPool.Get().(*chunk)
			b.chunks = append(b.chunks, c)
			n, err = readFull(r, c[:])
			b.memory += int64(n)
			b.size += int64(n)
		case s.room.TakeDisk(ChunkSize):
			b.disk += ChunkSize
			if b.file == nil {
				if b.file, err = s.createFile(); err != nil {
					b.file, err = nil, nil
					b.disk -= ChunkSize
					s.room.ReturnDisk(ChunkSize)
					s.fallbacks.Add(1)
					return b, false, nil
				}
				s.spills.Add(1)
				buf = stagePool.Get().(*stage)
			}
			// A chunk of disk budget is filled a write buffer at a time.
			for filled := 0; filled < ChunkSize && err == nil; {
				var m int
				m, err = readFull(r, buf[:])
				if _, werr := b.file.WriteAt(buf[:m], b.size-b.memory); werr != nil {
					// The bytes are read and must not be lost: they stay
					// in memory as the tail, and the rest streams.
					b.tail, b.tailLen, buf = buf, m, nil
					b.size += int64(m)
					s.fallbacks.Add(1)
					return b, false, nil
				}
				b.size += int64(m)
				filled += m
			}
		default:
			s.fallbacks.Add(1)
			return b, false, nil
		}
		if err == io.EOF {
			b.giveBackUnused()
			return b, true, nil
		}
		if err != nil {
			return b, false, err // released by the deferred call
		}
	}
}

// giveBackUnused returns the budget taken for the part of the last chunk
// that the body's end left empty.
func (b *Body) giveBackUnused() {
	if b.file != nil {
		used := (b.size - b.memory + ChunkSize - 1) / ChunkSize * ChunkSize
		b.store.room.ReturnDisk(b.disk - used)
		b.disk = used
		return
	}
	if n := len(b.chunks); n > 0 && b.memory <= int64(n-1)*ChunkSize {
		// The last chunk holds nothing: r ended on a chunk's boundary.
		chunkPool.Put(b.chunks[n-1])
		b.chunks[n-1] = nil
		b.chunks = b.chunks[:n-1]
		b.store.room.ReturnMemory(ChunkSize)
	}
}

// Release drops the reference Fill returned; the body is let go when its
// Readers have closed too.
func (b *Body) Release() {
	if b.refs.Add(-1) != 0 {
		return
	}
	s := b.store
	for i, c := range b.chunks {
		chunkPool.Put(c)
		b.chunks[i] = nil
	}
	s.room.ReturnMemory(int64(len(b.chunks)) * ChunkSize)
	if b.file != nil {
		_ = b.file.Close()
		s.room.ReturnDisk(b.disk)
	}
	if b.tail != nil {
		stagePool.Put(b.tail)
	}
	*b = Body{chunks: b.chunks[:0]}
	bodyPool.Put(b)
}

// readAt copies the body's bytes from off into p, as io.ReaderAt.
func (b *Body) readAt(p []byte, off int64) (int, error) {
	if off >= b.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), b.size-off)]
	switch fileEnd := b.size - int64(b.tailLen); {
	case off < b.memory:
		return copy(p, b.chunks[off/ChunkSize][off%ChunkSize:min(b.memory-off+off%ChunkSize, ChunkSize)]), nil
	case off < fileEnd:
		return b.file.ReadAt(p[:min(int64(len(p)), fileEnd-off)], off-b.memory)
	default:
		return copy(p, b.tail[off-fileEnd:b.tailLen]), nil
	}
}

// Chunk returns the body's bytes when they are all in one memory chunk
// (valid until Release), so that a small body can be copied out whole.
func (b *Body) Chunk() ([]byte, bool) {
	if b.size != b.memory || len(b.chunks) > 1 {
		return nil, false
	}
	if len(b.chunks) == 0 {
		return nil, true
	}
	return b.chunks[0][:b.size], true
}
