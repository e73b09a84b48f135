package resilience

import (
	"sync"
	"testing"
)

func TestBufferRoom(t *testing.T) {
	r := NewBufferRoom(100, 50)
	steps := []struct {
		name      string
		do        func() bool
		want      bool
		mem, disk int64
	}{
		{"memory fits", func() bool { return r.TakeMemory(60) }, true, 60, 0},
		{"memory to its limit", func() bool { return r.TakeMemory(40) }, true, 100, 0},
		{"memory full", func() bool { return r.TakeMemory(1) }, false, 100, 0},
		{"disk fits", func() bool { return r.TakeDisk(50) }, true, 100, 50},
		{"disk full", func() bool { return r.TakeDisk(1) }, false, 100, 50},
		{"nothing fits", func() bool { return r.Fits(1) }, false, 100, 50},
		{"memory returned", func() bool { r.ReturnMemory(60); return r.Fits(60) }, true, 40, 50},
		{"more than is free", func() bool { return r.Fits(61) }, false, 40, 50},
		{"disk returned", func() bool { r.ReturnDisk(50); return r.TakeDisk(50) }, true, 40, 50},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("%s: got %v, want %v", s.name, got, s.want)
		}
		if mem, disk := r.InUse(); mem != s.mem || disk != s.disk {
			t.Fatalf("%s: in use %d+%d, want %d+%d", s.name, mem, disk, s.mem, s.disk)
		}
	}
}

// TestBufferRoomIsExactUnderContention takes room from many goroutines at
// once: the budget is never exceeded, and what is given back is free again.
func TestBufferRoomIsExactUnderContention(t *testing.T) {
	const limit, piece, workers = 1000, 7, 16
	r := NewBufferRoom(limit, 0)
	var wg sync.WaitGroup
	taken := make([]int64, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if r.TakeMemory(piece) {
					taken[w] += piece
				}
			}
		}()
	}
	wg.Wait()
	var sum int64
	for _, n := range taken {
		sum += n
	}
	if mem, _ := r.InUse(); mem != sum || sum > limit || sum < limit-piece {
		t.Fatalf("taken %d, in use %d, limit %d", sum, mem, limit)
	}
	r.ReturnMemory(sum)
	if mem, _ := r.InUse(); mem != 0 {
		t.Fatalf("in use %d after all was returned", mem)
	}
}
