package spool

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"tailguard/resilience"
)

func payload(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// oneByteAtATime reads at most 3 bytes a call, as a slow stream does.
type oneByteAtATime struct{ r io.Reader }

func (s oneByteAtATime) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), 3)]) }

// TestFillHoldsTheBodyExactly fills bodies of every awkward size into rooms
// of every kind and reads them back: the bytes are the same (what did not
// fit comes from the rest of the stream), the room taken is what the body
// holds, and releasing gives all of it back.
func TestFillHoldsTheBodyExactly(t *testing.T) {
	sizes := []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 5*ChunkSize + 7}
	rooms := []struct {
		name         string
		memory, disk int64
		spills       bool
	}{
		{"memory", 8 * ChunkSize, 0, false},
		{"memory then disk", 2 * ChunkSize, 100 * ChunkSize, true},
		{"disk only", 0, 100 * ChunkSize, true},
		{"no room", 0, 0, false},
		{"room for part", ChunkSize, ChunkSize, true},
	}
	for _, room := range rooms {
		for _, size := range sizes {
			for _, slow := range []bool{false, true} {
				if slow && size > 2*ChunkSize {
					continue
				}
				r := resilience.NewBufferRoom(room.memory, room.disk)
				s := NewStore(r, t.TempDir())
				want := payload(size)
				var src io.Reader = bytes.NewReader(want)
				if slow {
					src = oneByteAtATime{src}
				}
				b, complete, err := s.Fill(src, -1)
				if err != nil {
					t.Fatalf("%s, %d bytes: %v", room.name, size, err)
				}
				// A body exactly the room's size may or may not be known
				// to end before the room does.
				if total := room.memory + room.disk; int64(size) < total && !complete || int64(size) > total && complete {
					t.Errorf("%s, %d bytes: complete %v, room for %d", room.name, size, complete, room.memory+room.disk)
				}
				mem, disk := r.InUse()
				if mem+disk < b.Len() || mem > room.memory || disk > room.disk {
					t.Errorf("%s, %d bytes: holds %d in %d memory + %d disk", room.name, size, b.Len(), mem, disk)
				}
				rd := b.NewReader(src)
				b.Release()
				got, err := io.ReadAll(rd)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s, %d bytes: read back %d bytes (%v), not the body", room.name, len(got), size, err)
				}
				if err := rd.Close(); err != nil {
					t.Fatal(err)
				}
				if mem, disk := r.InUse(); mem != 0 || disk != 0 {
					t.Errorf("%s, %d bytes: %d memory + %d disk still taken after release", room.name, size, mem, disk)
				}
				f := s.Figures()
				if spilled := size > int(room.memory) && room.disk > 0; spilled && room.spills && f.Spills != 1 {
					t.Errorf("%s, %d bytes: %d spills", room.name, size, f.Spills)
				}
				if !complete && f.Fallbacks != 1 {
					t.Errorf("%s, %d bytes: incomplete but %d fallbacks", room.name, size, f.Fallbacks)
				}
			}
		}
	}
}

// TestReadersReadInParallel reads one body from several readers at once,
// as hedged attempts send one request body: each gets all of it.
func TestReadersReadInParallel(t *testing.T) {
	r := resilience.NewBufferRoom(2*ChunkSize, 10*ChunkSize)
	s := NewStore(r, t.TempDir())
	want := payload(4*ChunkSize + 99)
	b, complete, err := s.Fill(bytes.NewReader(want), -1)
	if err != nil || !complete {
		t.Fatalf("fill: %v, complete %v", err, complete)
	}
	var wg sync.WaitGroup
	for range 4 {
		rd := b.NewReader(nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rd.Close()
			got, err := io.ReadAll(oneByteAtATime{rd})
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("a reader got %d bytes (%v)", len(got), err)
			}
		}()
	}
	b.Release() // the readers keep the body
	wg.Wait()
	if mem, disk := r.InUse(); mem != 0 || disk != 0 {
		t.Fatalf("%d memory + %d disk taken after every reader closed", mem, disk)
	}
}

type failingReader struct{ n int }

var errBroken = errors.New("broken")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errBroken
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

// TestFillFailsCleanly: a stream that fails mid-body fails Fill with its
// error and leaves nothing taken.
func TestFillFailsCleanly(t *testing.T) {
	for _, n := range []int{0, ChunkSize + 5, 3 * ChunkSize} {
		r := resilience.NewBufferRoom(ChunkSize, 10*ChunkSize)
		s := NewStore(r, t.TempDir())
		b, _, err := s.Fill(&failingReader{n}, -1)
		if !errors.Is(err, errBroken) || b != nil {
			t.Fatalf("after %d bytes: body %v, error %v", n, b, err)
		}
		if mem, disk := r.InUse(); mem != 0 || disk != 0 {
			t.Fatalf("after %d bytes: %d memory + %d disk still taken", n, mem, disk)
		}
	}
}

// TestFilesHaveNoName: a spilled body's file is unlinked while in use, and
// an unusable directory makes the body stream instead of failing.
func TestFilesHaveNoName(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(resilience.NewBufferRoom(0, 10*ChunkSize), dir)
	b, complete, err := s.Fill(bytes.NewReader(payload(3*ChunkSize)), -1)
	if err != nil || !complete {
		t.Fatalf("fill: %v, complete %v", err, complete)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("the spill directory holds %d entries while a body is spilled", len(entries))
	}
	b.Release()

	gone := NewStore(resilience.NewBufferRoom(0, 10*ChunkSize), filepath.Join(dir, "missing"))
	want := payload(2 * ChunkSize)
	src := bytes.NewReader(want)
	b, complete, err = gone.Fill(src, -1)
	if err != nil || complete || b.Len() != 0 || gone.Figures().Fallbacks != 1 {
		t.Fatalf("without a directory: err %v, complete %v, %d held, %+v", err, complete, b.Len(), gone.Figures())
	}
	rd := b.NewReader(src)
	b.Release()
	if got, _ := io.ReadAll(rd); !bytes.Equal(got, want) {
		t.Fatal("the streamed body differs")
	}
	_ = rd.Close()
	if mem, disk := gone.room.InUse(); mem != 0 || disk != 0 {
		t.Fatalf("%d memory + %d disk taken", mem, disk)
	}
}

func TestSweep(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{filePrefix + "1", filePrefix + "abc", "other"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, filePrefix+"dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Sweep(dir); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != 2 || left[0] != "other" || left[1] != filePrefix+"dir" {
		t.Fatalf("left %q, want only other and the directory", left)
	}
}

// BenchmarkFillSmall is a body that fits one pooled chunk: no allocation.
func BenchmarkFillSmall(b *testing.B) {
	s := NewStore(resilience.NewBufferRoom(64<<20, 0), b.TempDir())
	body := payload(10 << 10)
	src := bytes.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(body)
		sb, _, err := s.Fill(src, -1)
		if err != nil {
			b.Fatal(err)
		}
		sb.Release()
	}
}

// TestFillLeavesABodyKnownTooLarge: a body whose size is known not to fit
// the room is not read at all; it streams whole, counted as a fallback.
func TestFillLeavesABodyKnownTooLarge(t *testing.T) {
	r := resilience.NewBufferRoom(ChunkSize, ChunkSize)
	s := NewStore(r, t.TempDir())
	want := payload(2*ChunkSize + 1)
	src := bytes.NewReader(want)
	b, complete, err := s.Fill(src, int64(len(want)))
	if err != nil || complete || b.Len() != 0 || src.Len() != len(want) || s.Figures().Fallbacks != 1 {
		t.Fatalf("err %v, complete %v, %d held, %d read, %+v", err, complete, b.Len(), len(want)-src.Len(), s.Figures())
	}
	rd := b.NewReader(src)
	b.Release()
	if got, _ := io.ReadAll(rd); !bytes.Equal(got, want) {
		t.Fatal("the streamed body differs")
	}
	_ = rd.Close()
	if mem, disk := r.InUse(); mem != 0 || disk != 0 {
		t.Fatalf("%d memory + %d disk taken", mem, disk)
	}
}
