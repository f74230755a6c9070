package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestProfileFiles checks that --cpuprofile and --memprofile write pprof
// files (gzip-compressed protobuf) when the command ends, and that a file
// that cannot be created is an error before the command runs.
func TestProfileFiles(t *testing.T) {
	dir := t.TempDir()
	p := profileConfig{CPUProfile: filepath.Join(dir, "cpu.prof"), MemProfile: filepath.Join(dir, "mem.prof")}
	stop, err := p.start()
	if err != nil {
		t.Fatal(err)
	}
	sink := make([][]byte, 0, 64)
	for i := range 64 {
		sink = append(sink, make([]byte, 1<<10+i))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_ = sink
	for _, f := range []string{p.CPUProfile, p.MemProfile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Errorf("%s: not a gzip-compressed pprof file (%d bytes)", f, len(b))
		}
	}
	if _, err := (profileConfig{CPUProfile: filepath.Join(dir, "no", "such", "dir", "cpu.prof")}).start(); err == nil {
		t.Error("a CPU profile in a missing directory: no error")
	}
	stop, err = profileConfig{MemProfile: filepath.Join(dir, "no", "mem.prof")}.start()
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err == nil {
		t.Error("a heap profile in a missing directory: no error at the end")
	}
}
