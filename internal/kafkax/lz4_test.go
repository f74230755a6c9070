package kafkax

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kgo"
)

// records returns n records of about size bytes each: text of the shape
// of JSON records with random numbers, which lz4 compresses to about a
// third. Seeded.
func records(n, size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var b []byte
	for range n {
		start := len(b)
		b = fmt.Appendf(b, `{"user":"u-%x","step":%d,"action":%d`, rng.Uint32(), rng.IntN(20), rng.IntN(12))
		for len(b)-start < size-24 {
			b = fmt.Appendf(b, `,"f%d":%.4f`, rng.IntN(10), rng.Float64())
		}
		b = append(b, '}')
	}
	return b
}

// kafkaGoLZ4 compresses data as kafka-go's own lz4 codec compresses a
// record batch (4 MiB blocks): what aelp's writers wrote before lz4Codec,
// and what other producers on pierrec/lz4's defaults write.
func kafkaGoLZ4(t testing.TB, data []byte) []byte {
	t.Helper()
	return codecLZ4(t, &compress.Lz4Codec, data)
}

// codecLZ4 compresses data with codec.
func codecLZ4(t testing.TB, codec compress.Codec, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := codec.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pierrecLZ4 compresses data with pierrec/lz4's writer and options.
func pierrecLZ4(t testing.TB, data []byte, opts ...lz4.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecompressorLZ4 decodes lz4 frames of every block size, with and
// without block and content checksums and content size, incompressible
// data (stored blocks), several blocks and frames, and an empty frame: the
// output equals the data and kgo's default decompressor's.
func TestDecompressorLZ4(t *testing.T) {
	small, large := records(64, 350, 1), records(1000, 350, 2)
	noise := make([]byte, 200_000)
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	two := append(pierrecLZ4(t, small), pierrecLZ4(t, large, lz4.BlockSizeOption(lz4.Block64Kb))...)
	tests := []struct {
		name  string
		frame []byte
		want  []byte
	}{
		{"kafka-go batch", kafkaGoLZ4(t, small), small},
		{"kafka-go large", kafkaGoLZ4(t, large), large},
		{"kafka-go empty", kafkaGoLZ4(t, nil), nil},
		{"kafkax writers' batch", codecLZ4(t, compress.Lz4.Codec(), small), small},
		{"kafkax writers' large", codecLZ4(t, compress.Lz4.Codec(), large), large},
		{"64 KiB blocks", pierrecLZ4(t, large, lz4.BlockSizeOption(lz4.Block64Kb)), large},
		{"256 KiB blocks", pierrecLZ4(t, large, lz4.BlockSizeOption(lz4.Block256Kb)), large},
		{"1 MiB blocks", pierrecLZ4(t, large, lz4.BlockSizeOption(lz4.Block1Mb)), large},
		{"checksums and size", pierrecLZ4(t, large, lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true),
			lz4.ChecksumOption(true), lz4.SizeOption(uint64(len(large)))), large},
		{"no content checksum", pierrecLZ4(t, small, lz4.ChecksumOption(false)), small},
		{"incompressible", pierrecLZ4(t, noise, lz4.BlockSizeOption(lz4.Block64Kb)), noise},
		{"two frames", two, append(append([]byte(nil), small...), large...)},
	}
	def := kgo.DefaultDecompressor()
	d := newDecompressor()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decompress(tt.frame, kgo.CodecLz4)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("decoded %d bytes, want the %d written", len(got), len(tt.want))
			}
			ref, err := def.Decompress(tt.frame, kgo.CodecLz4)
			if err != nil || !bytes.Equal(got, ref) {
				t.Fatalf("kgo's default decompressor: %d bytes, %v; ours %d bytes", len(ref), err, len(got))
			}
			if _, err := decodeLZ4(tt.frame, len(tt.want)-1); len(tt.want) > 0 && err == nil {
				t.Fatalf("decoded %d bytes within a limit of %d", len(tt.want), len(tt.want)-1)
			}
		})
	}
}

// TestDecompressorLZ4Bad: truncated and corrupt frames fail (no panic), as
// do frames the default decompressor is left with (a dependent-blocks
// flag, here with its header checksum wrong); other codecs go to the
// default decompressor.
func TestDecompressorLZ4Bad(t *testing.T) {
	d := newDecompressor()
	frame := pierrecLZ4(t, records(1000, 350, 4), lz4.BlockSizeOption(lz4.Block64Kb))
	for _, n := range []int{1, 6, 7, 10, len(frame) / 2, len(frame) - 1} {
		if _, err := d.Decompress(frame[:n], kgo.CodecLz4); err == nil {
			t.Errorf("frame cut at %d of %d bytes decoded", n, len(frame))
		}
	}
	// The frame header is 7 bytes (no content size), the first block's
	// size 4: a block of 0xff bytes asks for more literals than it holds.
	// (Other corruption can decode to wrong bytes, as lz4's checksums are
	// skipped: kgo checks the record batch's CRC before decompressing.)
	if size := binary.LittleEndian.Uint32(frame[7:]); size&lz4Uncompressed != 0 {
		t.Fatalf("first block stored uncompressed (size word %x): the data does not compress", size)
	}
	corrupt := bytes.Clone(frame)
	for i := 11; i < 11+64; i++ {
		corrupt[i] = 0xff
	}
	if _, err := d.Decompress(corrupt, kgo.CodecLz4); err == nil {
		t.Error("corrupt block decoded")
	}
	long := bytes.Clone(frame)
	binary.LittleEndian.PutUint32(long[7:], uint32(len(frame)))
	if _, err := d.Decompress(long, kgo.CodecLz4); err == nil {
		t.Error("a block running past the frame decoded")
	}
	dependent := bytes.Clone(frame)
	dependent[4] &^= lz4FlgIndependent
	if _, err := d.Decompress(dependent, kgo.CodecLz4); err == nil {
		t.Error("dependent blocks with a wrong header checksum decoded")
	}
	if _, err := d.Decompress([]byte("not lz4 at all"), kgo.CodecLz4); err == nil {
		t.Error("garbage decoded")
	}
	var gz bytes.Buffer
	w := compress.Gzip.Codec().NewWriter(&gz)
	io.WriteString(w, "gzip record batch")
	w.Close()
	if got, err := d.Decompress(gz.Bytes(), kgo.CodecGzip); err != nil || string(got) != "gzip record batch" {
		t.Errorf("gzip: %q, %v", got, err)
	}
	if got, err := d.Decompress([]byte("plain"), kgo.CodecNone); err != nil || string(got) != "plain" {
		t.Errorf("no codec: %q, %v", got, err)
	}
}

// TestReaderLZ4KeepsItsBuffers is the regression test of a bounded read
// that stalled under -race on a loaded machine: kgo's default
// decompressor took a 4 MiB block buffer per lz4 record batch from a
// sync.Pool, which every other garbage collection empties (and the race
// detector drops a quarter of), so each batch of a read allocated and
// cleared 4 MiB. The Reader's decompressor allocates what a batch
// decompresses to, plus its buffers once: with two collections before
// every batch (the pools emptied), it allocates under 1 MiB per 22 kB
// batch, where the default allocates over 4 MiB. Bytes allocated, not
// time, are measured.
func TestReaderLZ4KeepsItsBuffers(t *testing.T) {
	r, err := NewReader(Config{}, "t", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data := records(64, 350, 5)
	frame := kafkaGoLZ4(t, data)
	perBatch := func(d kgo.Decompressor) uint64 {
		if _, err := d.Decompress(frame, kgo.CodecLz4); err != nil { // warm up: its buffers once
			t.Fatal(err)
		}
		const batches = 20
		var total uint64
		var before, after runtime.MemStats
		for range batches {
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&before)
			out, err := d.Decompress(frame, kgo.CodecLz4)
			runtime.ReadMemStats(&after)
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("decoded %d bytes, %v", len(out), err)
			}
			total += after.TotalAlloc - before.TotalAlloc
		}
		return total / batches
	}
	got, def := perBatch(r.decomp), perBatch(kgo.DefaultDecompressor())
	t.Logf("bytes allocated per %d-byte batch (%d compressed) after the pools were emptied: the Reader's %d, kgo's default %d",
		len(data), len(frame), got, def)
	if got >= 1<<20 {
		t.Fatalf("the Reader's decompressor allocated %d bytes per batch of %d bytes, want under 1 MiB", got, len(data))
	}
}

// FuzzDecodeLZ4: decodeLZ4 never panics, never returns more than its
// limit, and what it decodes equals what kgo's default decompressor does
// whenever both decode.
func FuzzDecodeLZ4(f *testing.F) {
	f.Add(kafkaGoLZ4(f, records(64, 350, 6)))
	f.Add(kafkaGoLZ4(f, nil))
	f.Add(pierrecLZ4(f, records(400, 350, 7), lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true), lz4.ChecksumOption(true)))
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, 0, 0, 0, 0})
	def := kgo.DefaultDecompressor()
	f.Fuzz(func(t *testing.T, src []byte) {
		const limit = 1 << 20
		got, err := decodeLZ4(src, limit)
		if err != nil {
			return
		}
		if len(got) > limit {
			t.Fatalf("decoded %d bytes, limit %d", len(got), limit)
		}
		if ref, err := def.Decompress(src, kgo.CodecLz4); err == nil && !bytes.Equal(got, ref) {
			t.Fatalf("decoded %d bytes, kgo's default %d", len(got), len(ref))
		}
	})
}

// BenchmarkDecompressLZ4 decodes a record batch of 64 records of 330
// bytes compressed as kafka-go's writers compress it, with the Reader's
// decompressor and, its baseline, kgo's default; records/s is of the
// records decoded. Run it under -race too
// (`go test -race -run '^$' -bench DecompressLZ4 ./internal/kafkax`): the
// race detector's sync.Pool drops a quarter of what is put back, so the
// default allocates and clears a 4 MiB buffer for many of its batches.
func BenchmarkDecompressLZ4(b *testing.B) {
	data := records(64, 330, 8)
	frame := kafkaGoLZ4(b, data)
	for _, d := range []struct {
		name string
		d    kgo.Decompressor
	}{{"kafkax", newDecompressor()}, {"kgo-default", kgo.DefaultDecompressor()}} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := d.d.Decompress(frame, kgo.CodecLz4); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// TestWritersLZ4Blocks: kafka-go's writers compress lz4 through lz4Codec,
// whose frames declare 64 KiB blocks (the BD byte's block size 4), and a
// writer taken from its pool again writes the same.
func TestWritersLZ4Blocks(t *testing.T) {
	if _, ok := compress.Lz4.Codec().(lz4Codec); !ok {
		t.Fatalf("kafka-go's lz4 codec is %T, want kafkax's lz4Codec", compress.Lz4.Codec())
	}
	for i := range 3 {
		frame := codecLZ4(t, compress.Lz4.Codec(), records(10, 300, uint64(i)))
		if got := frame[5] >> 4 & 7; got != 4 {
			t.Fatalf("frame %d declares block size %d, want 4 (64 KiB)", i, got)
		}
	}
	if got := kafkaGoLZ4(t, records(10, 300, 9))[5] >> 4 & 7; got != 7 {
		t.Fatalf("kafka-go's own codec declares block size %d, want 7 (4 MiB): the baseline changed", got)
	}
}

// BenchmarkCompressLZ4 compresses a record batch of 64 records of 330
// bytes with kafkax's writers' codec (64 KiB blocks) and, its baseline,
// kafka-go's own (4 MiB); run it under -race too (see
// BenchmarkDecompressLZ4).
func BenchmarkCompressLZ4(b *testing.B) {
	data := records(64, 330, 8)
	for _, c := range []struct {
		name  string
		codec compress.Codec
	}{{"kafkax", compress.Lz4.Codec()}, {"kafka-go", &compress.Lz4Codec}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				w := c.codec.NewWriter(&buf)
				if _, err := w.Write(data); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
