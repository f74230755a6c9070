package kafkax

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxDecompressBytes bounds what one record batch may decompress to, as
// kgo's client bounds it by default (kgo.MaxDecompressBatchBytes).
const maxDecompressBytes = 1 << 30

// decompressor is kgo's default decompressor with the lz4 frames of record
// batches decoded block by block into a scratch buffer that it keeps.
//
// Why: kgo streams lz4 through pierrec/lz4's Reader, which takes a buffer
// of the frame's maximum block size from a sync.Pool for every batch, and
// the frames kafka-go writes (every aelp writer's, lz4 by default) declare
// 4 MiB blocks. A sync.Pool is emptied by every other garbage collection
// and, under the race detector, drops a quarter of what is put back, so
// under -race a read allocated and cleared about 4 MiB for most record
// batches: BenchmarkDecompressLZ4 under -race (load 7 on two cores)
// decoded 4,000 records/s with kgo's default and 770,000 with this one
// (without -race 1.9 and 2.9 million). A bounded read of a topic of some
// 36,000 records in batches of 64 (learner's TestGateOnEmbeddedBroker
// reads one) comes whole in one fetch, so all of its decoding stood
// between two of the batches kafkatest.ReadAll's progress watchdog counts,
// and on a loaded machine took longer than the minute it allows.
//
// The output is a fresh slice of the decompressed size: the records
// decoded from it keep references into it. Other codecs go to kgo's
// default decompressor as before (in a kgo client given this one through
// KgoOptions, bounded at 2 GiB instead of the client's own 1 GiB: kgo
// rebuilds only its own type with its bound).
type decompressor struct {
	kgo.Decompressor // every codec but lz4, and lz4 frames decodeLZ4 leaves alone
	max              int
}

func newDecompressor() *decompressor {
	return &decompressor{Decompressor: kgo.DefaultDecompressor(), max: maxDecompressBytes}
}

// Decompress implements kgo.Decompressor.
func (d *decompressor) Decompress(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	if codec == kgo.CodecLz4 {
		if out, err := decodeLZ4(src, d.max); !errors.Is(err, errLZ4Unusual) {
			return out, err
		}
	}
	return d.Decompressor.Decompress(src, codec)
}

// errLZ4Unusual is a frame decodeLZ4 does not handle (a dictionary,
// dependent blocks, a legacy or skippable frame): the default decompressor
// decodes it.
var errLZ4Unusual = errors.New("lz4 frame left to the default decompressor")

var (
	errLZ4Truncated = errors.New("lz4: truncated frame")
	errLZ4TooLarge  = errors.New("lz4: batch decompresses past the limit")
)

// The LZ4 frame format (lz4_Frame_format.md): magic, FLG and BD bytes,
// optional content size and dictionary id, a header checksum byte; then
// blocks, each a little-endian uint32 size (high bit: stored uncompressed)
// and optional block checksum, up to a zero end mark and an optional
// content checksum. The record batch's CRC-32C, which kgo checks before
// decompressing, covers the frame, so its xxHash checksums are skipped.
const (
	lz4Magic          = 0x184D2204
	lz4FlgVersionMask = 0xC0
	lz4FlgVersion     = 0x40
	lz4FlgIndependent = 0x20
	lz4FlgBlockSum    = 0x10
	lz4FlgContentSize = 0x08
	lz4FlgContentSum  = 0x04
	lz4FlgDictID      = 0x01
	lz4Uncompressed   = 1 << 31
)

// decodeLZ4 decodes src, one or more lz4 frames, into a slice of their
// decompressed size, at most max bytes.
func decodeLZ4(src []byte, max int) ([]byte, error) {
	var out []byte
	for len(src) > 0 {
		if len(src) < 7 {
			return nil, errLZ4Unusual
		}
		flg, bd := src[4], src[5]
		if binary.LittleEndian.Uint32(src) != lz4Magic || flg&lz4FlgVersionMask != lz4FlgVersion || flg&lz4FlgDictID != 0 {
			return nil, errLZ4Unusual
		}
		blockMax := 0
		switch (bd >> 4) & 7 {
		case 4:
			blockMax = 64 << 10
		case 5:
			blockMax = 256 << 10
		case 6:
			blockMax = 1 << 20
		case 7:
			blockMax = 4 << 20
		default:
			return nil, errLZ4Unusual
		}
		pos := 6
		if flg&lz4FlgContentSize != 0 {
			pos += 8
		}
		pos++ // header checksum
		scratch := getScratch(blockMax)
		var err error
		out, pos, err = decodeLZ4Blocks(out, src, pos, flg, scratch, max)
		putScratch(scratch)
		if err != nil {
			return nil, err
		}
		if flg&lz4FlgContentSum != 0 {
			pos += 4
		}
		if pos > len(src) {
			return nil, errLZ4Truncated
		}
		src = src[pos:]
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// decodeLZ4Blocks appends the blocks of the frame at src[pos:] to out,
// each decoded into scratch, and returns the position past the end mark.
func decodeLZ4Blocks(out, src []byte, pos int, flg byte, scratch []byte, max int) ([]byte, int, error) {
	for blocks := 0; ; blocks++ {
		if pos+4 > len(src) {
			return nil, 0, errLZ4Truncated
		}
		size := binary.LittleEndian.Uint32(src[pos:])
		pos += 4
		if size == 0 {
			return out, pos, nil
		}
		n := int(size &^ lz4Uncompressed)
		if n > len(src)-pos {
			return nil, 0, errLZ4Truncated
		}
		block := src[pos : pos+n]
		pos += n
		if flg&lz4FlgBlockSum != 0 {
			pos += 4
		}
		if size&lz4Uncompressed == 0 {
			if blocks > 0 && flg&lz4FlgIndependent == 0 {
				// A block may refer to the one before: not worth
				// a dictionary here, kafka-go and kgo write
				// independent blocks.
				return nil, 0, errLZ4Unusual
			}
			n, err := lz4.UncompressBlock(block, scratch)
			if err != nil {
				return nil, 0, err
			}
			block = scratch[:n]
		} else if n > len(scratch) {
			return nil, 0, errLZ4Unusual
		}
		if len(out)+len(block) > max {
			return nil, 0, errLZ4TooLarge
		}
		out = append(out, block...)
	}
}

// scratchPool keeps the block buffers decodeLZ4 decodes into, a few per
// block size. Unlike a sync.Pool it is never emptied: a buffer is
// allocated once per block size and concurrent decode.
var scratchPool struct {
	mu   sync.Mutex
	free map[int][][]byte
}

// maxScratch is how many buffers of one size scratchPool keeps.
const maxScratch = 8

func getScratch(size int) []byte {
	scratchPool.mu.Lock()
	defer scratchPool.mu.Unlock()
	if s := scratchPool.free[size]; len(s) > 0 {
		b := s[len(s)-1]
		scratchPool.free[size] = s[:len(s)-1]
		return b
	}
	return make([]byte, size)
}

func putScratch(b []byte) {
	scratchPool.mu.Lock()
	defer scratchPool.mu.Unlock()
	if scratchPool.free == nil {
		scratchPool.free = map[int][][]byte{}
	}
	if s := scratchPool.free[len(b)]; len(s) < maxScratch {
		scratchPool.free[len(b)] = append(s, b)
	}
}

// lz4Codec is kafka-go's lz4 codec writing frames of 64 KiB blocks (the
// Java client's size) instead of pierrec/lz4's default of 4 MiB. Its
// writers take their block buffers from a sync.Pool as the readers do, so
// a 4 MiB block cost a writer the same as a reader (a record batch written
// in 8.5 MiB of allocation under -race, where the pool drops a quarter of
// what is put back: see BenchmarkCompressLZ4); a record batch of aelp's is
// tens of kB, one block either way. Reading is kafka-go's own.
type lz4Codec struct{ compress.Codec }

// lz4BlockSize is the block size of the lz4 frames the writers write.
var lz4BlockSize = lz4.BlockSizeOption(lz4.Block64Kb)

var lz4Writers = sync.Pool{New: func() any {
	z := lz4.NewWriter(nil)
	_ = z.Apply(lz4BlockSize) // a valid option of a new writer: cannot fail
	return z
}}

// NewWriter implements compress.Codec.
func (lz4Codec) NewWriter(w io.Writer) io.WriteCloser {
	z := lz4Writers.Get().(*lz4.Writer)
	z.Reset(w) // keeps the block size
	return &lz4Writer{z}
}

type lz4Writer struct{ *lz4.Writer }

// Close flushes the frame and returns the writer to the pool.
func (w *lz4Writer) Close() error {
	z := w.Writer
	if z == nil {
		return nil
	}
	w.Writer = nil
	err := z.Close()
	z.Reset(nil)
	lz4Writers.Put(z)
	return err
}

// kafka-go compresses through its global table of codecs, which it
// documents as where the codecs are installed: every kafka-go writer of
// the process writes lz4 through lz4Codec.
func init() {
	compress.Codecs[compress.Lz4] = lz4Codec{compress.Codecs[compress.Lz4]}
}
