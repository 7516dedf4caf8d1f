package procstat

import (
	"os"
	"testing"
	"time"
)

func TestReadSelf(t *testing.T) {
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU < 100*time.Millisecond || s.PeakRSS < 64<<20 || s.RSS <= 0 {
		t.Fatalf("implausible sample %+v", s)
	}
	if err := ResetPeak(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	_ = buf[len(buf)-1]
}
