package resilience

import "sync/atomic"

// BufferRoom is the process-wide room for buffered bodies (the slow-client
// shield): a memory budget, then a disk budget. It admits or refuses bytes;
// it never holds them (the proxy does the I/O). A body asks for room in
// pieces as it grows and gives back all it took when it is released, so a
// refusal mid-body is normal: the body then spills from memory to disk, or,
// when the disk is full too, the rest of it streams as it would without
// buffering. Nothing is ever refused to a client for lack of room.
//
// Both budgets are plain atomic counters checked with compare-and-swap, so
// that the bound is exact under any concurrency and taking room costs no
// lock. Safe for concurrent use.
type BufferRoom struct {
	memory, disk roomBudget
}

// roomBudget is one budget: bytes in use against a limit.
type roomBudget struct {
	limit int64
	used  atomic.Int64
}

// NewBufferRoom returns a BufferRoom of memory bytes, then disk bytes (0:
// none of that kind).
func NewBufferRoom(memory, disk int64) *BufferRoom {
	r := &BufferRoom{}
	r.memory.limit, r.disk.limit = max(memory, 0), max(disk, 0)
	return r
}

// TakeMemory takes n bytes of memory if the budget has them.
func (r *BufferRoom) TakeMemory(n int64) bool { return r.memory.take(n) }

// ReturnMemory gives back n bytes taken by TakeMemory.
func (r *BufferRoom) ReturnMemory(n int64) { r.memory.used.Add(-n) }

// TakeDisk takes n bytes of disk if the budget has them.
func (r *BufferRoom) TakeDisk(n int64) bool { return r.disk.take(n) }

// ReturnDisk gives back n bytes taken by TakeDisk.
func (r *BufferRoom) ReturnDisk(n int64) { r.disk.used.Add(-n) }

// Fits reports whether n more bytes would fit in memory and on disk
// together now: a body of known length that would not is streamed from the
// start rather than buffered in part.
func (r *BufferRoom) Fits(n int64) bool {
	free := r.memory.limit - r.memory.used.Load() + r.disk.limit - r.disk.used.Load()
	return n <= free
}

// InUse is the bytes taken now, in memory and on disk.
func (r *BufferRoom) InUse() (memory, disk int64) {
	return r.memory.used.Load(), r.disk.used.Load()
}

func (b *roomBudget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}
