package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the flusher and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestBatchWriterHoldsRoutineLinesAndPassesWarnings(t *testing.T) {
	var out lockedBuffer
	w := newBatchWriter(&out, time.Hour) // the flusher never fires here
	log := slog.New(slog.NewJSONHandler(w, nil))
	log.Info("request", "path", "/api/cart")
	log.Debug("not at this level")
	if got := out.String(); got != "" {
		t.Fatalf("an INFO line was written at once: %q", got)
	}
	log.Warn("session store unavailable")
	got := out.String()
	if !strings.Contains(got, `"msg":"request"`) || !strings.Contains(got, `"msg":"session store unavailable"`) ||
		strings.Index(got, `"msg":"request"`) > strings.Index(got, `"msg":"session store unavailable"`) {
		t.Fatalf("after a WARN line the output is %q, want the INFO line, then the WARN line", got)
	}
	log.Info("last words")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"msg":"last words"`) {
		t.Errorf("Close did not write out the buffered line: %q", out.String())
	}
}

func TestBatchWriterFlushesOnItsOwn(t *testing.T) {
	var out lockedBuffer
	w := newBatchWriter(&out, 10*time.Millisecond)
	defer w.Close()
	slog.New(slog.NewJSONHandler(w, nil)).Info("request")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `"msg":"request"`) {
		if time.Now().After(deadline) {
			t.Fatal("the buffered line was not written out within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBatchWriterWritesAFullBufferAtOnce(t *testing.T) {
	var out lockedBuffer
	w := newBatchWriter(&out, time.Hour)
	defer w.Close()
	log := slog.New(slog.NewJSONHandler(w, nil))
	line := strings.Repeat("x", 1000)
	for range batchBytes/1000 + 1 {
		log.Info("request", "filler", line)
	}
	if len(out.String()) < batchBytes {
		t.Errorf("%d bytes written after more than %d were logged; want the full buffer out", len(out.String()), batchBytes)
	}
}
