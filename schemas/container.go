package schemas

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/golang/snappy"
	"github.com/linkedin/goavro/v2"
)

// A reader of Avro object container files (OCF) that never allocates
// ahead of the input: goavro's OCFReader allocates the block size and the
// header map size a file claims, and its decoder the array length an entry
// claims, before reading them, so an 8-byte file can take seconds and
// gigabytes. Here sizes grow with the bytes actually read, every entry is
// validated (decoder.skip) before goavro decodes it, and a block may not
// inflate past maxBlockBytes.

// maxBlockBytes bounds a container block, compressed or not.
const maxBlockBytes = 1 << 30

// ocfMagic starts every container file.
var ocfMagic = []byte{'O', 'b', 'j', 1}

// containerReader reads the entries of a container file.
type containerReader struct {
	r     *bufio.Reader
	meta  map[string][]byte
	sync  [16]byte
	codec string
	root  *node
	avro  *goavro.Codec

	block []byte // the current block, decompressed
	left  int64  // entries of the block not read yet
	pos   int    // offset of the next entry in block
	err   error  // sticky
}

func newContainerReader(r io.Reader) (*containerReader, error) {
	c := &containerReader{r: bufio.NewReader(r), meta: map[string][]byte{}}
	magic := make([]byte, len(ocfMagic))
	if _, err := io.ReadFull(c.r, magic); err != nil || !bytes.Equal(magic, ocfMagic) {
		return nil, errors.New("not an Avro object container file (no Obj\\x01 magic)")
	}
	if err := c.readMeta(); err != nil {
		return nil, fmt.Errorf("container header: %w", err)
	}
	if _, err := io.ReadFull(c.r, c.sync[:]); err != nil {
		return nil, fmt.Errorf("container header: sync marker: %w", noEOF(err))
	}
	schema, ok := c.meta["avro.schema"]
	if !ok {
		return nil, errors.New("container header: no avro.schema")
	}
	var err error
	if c.root, err = parseSchema(string(schema)); err != nil {
		return nil, fmt.Errorf("container schema: %w", err)
	}
	if c.avro, err = goavro.NewCodec(string(schema)); err != nil {
		return nil, fmt.Errorf("container schema: %w", err)
	}
	c.codec = string(c.meta["avro.codec"])
	switch c.codec {
	case "":
		c.codec = goavro.CompressionNullLabel
	case goavro.CompressionNullLabel, goavro.CompressionDeflateLabel, goavro.CompressionSnappyLabel:
	default:
		return nil, fmt.Errorf("container codec %q: want null, deflate or snappy", c.codec)
	}
	return c, nil
}

// noEOF turns an EOF in the middle of a structure into ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLong reads a zig-zag varint long from the stream.
func (c *containerReader) readLong() (int64, error) {
	var u uint64
	for shift := uint(0); shift < 70; shift += 7 {
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, err
		}
		u |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
	return 0, errors.New("varint longer than 10 bytes")
}

// readBytes reads a length-prefixed byte string of at most limit bytes; the
// buffer grows with what is read, not with the length claimed.
func (c *containerReader) readBytes(limit int64) ([]byte, error) {
	n, err := c.readLong()
	if err != nil {
		return nil, noEOF(err)
	}
	if n < 0 || n > limit {
		return nil, fmt.Errorf("byte string of %d bytes (limit %d)", n, limit)
	}
	b, err := readN(c.r, n)
	if err != nil {
		return nil, fmt.Errorf("byte string of %d bytes: %w", n, err)
	}
	return b, nil
}

// readN reads n bytes into a buffer that grows with what is read.
func readN(r io.Reader, n int64) ([]byte, error) {
	var buf bytes.Buffer
	m, err := buf.ReadFrom(io.LimitReader(r, n))
	if err != nil {
		return nil, err
	}
	if m != n {
		return nil, io.ErrUnexpectedEOF
	}
	return buf.Bytes(), nil
}

// readMeta reads the header's map<bytes>.
func (c *containerReader) readMeta() error {
	for {
		n, err := c.readLong()
		if err != nil {
			return fmt.Errorf("metadata: %w", noEOF(err))
		}
		if n == 0 {
			return nil
		}
		if n < 0 {
			n = -n
			if _, err := c.readLong(); err != nil { // the block's byte size
				return fmt.Errorf("metadata: %w", noEOF(err))
			}
		}
		for ; n > 0; n-- {
			k, err := c.readBytes(1 << 20)
			if err != nil {
				return fmt.Errorf("metadata key: %w", err)
			}
			v, err := c.readBytes(64 << 20)
			if err != nil {
				return fmt.Errorf("metadata %q: %w", k, err)
			}
			if _, dup := c.meta[string(k)]; dup {
				return fmt.Errorf("metadata key %q twice", k)
			}
			c.meta[string(k)] = v
			if len(c.meta) > 1024 {
				return errors.New("metadata of more than 1024 entries")
			}
		}
	}
}

// readBlock reads the next block; io.EOF at the clean end of the file.
func (c *containerReader) readBlock() error {
	count, err := c.readLong()
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	if err != nil {
		return fmt.Errorf("block count: %w", noEOF(err))
	}
	size, err := c.readLong()
	if err != nil {
		return fmt.Errorf("block size: %w", noEOF(err))
	}
	if count <= 0 || size <= 0 || size > maxBlockBytes {
		return fmt.Errorf("block of %d entries in %d bytes", count, size)
	}
	raw, err := readN(c.r, size)
	if err != nil {
		return fmt.Errorf("block of %d bytes: %w", size, err)
	}
	block, err := decompress(c.codec, raw)
	if err != nil {
		return err
	}
	var sync [16]byte
	if _, err := io.ReadFull(c.r, sync[:]); err != nil {
		return fmt.Errorf("block sync marker: %w", noEOF(err))
	}
	if sync != c.sync {
		return errors.New("block sync marker does not match the header's (a corrupt file)")
	}
	if minSize := minSizeOf(c.root, 0); minSize > 0 && count > int64(len(block)/minSize) {
		return fmt.Errorf("block of %d entries in %d bytes", count, len(block))
	}
	c.block, c.left, c.pos = block, count, 0
	return nil
}

// decompress returns block decompressed with codec.
func decompress(codec string, block []byte) ([]byte, error) {
	switch codec {
	case goavro.CompressionDeflateLabel:
		var out bytes.Buffer
		n, err := out.ReadFrom(io.LimitReader(flate.NewReader(bytes.NewReader(block)), maxBlockBytes+1))
		if err != nil {
			return nil, fmt.Errorf("inflate block: %w", err)
		}
		if n > maxBlockBytes {
			return nil, fmt.Errorf("block inflates past %d bytes", maxBlockBytes)
		}
		return out.Bytes(), nil
	case goavro.CompressionSnappyLabel:
		if len(block) < 4 {
			return nil, errors.New("snappy block without its CRC-32")
		}
		data, sum := block[:len(block)-4], binary.BigEndian.Uint32(block[len(block)-4:])
		// A snappy element of at least two bytes expands to at most 64:
		// a length beyond 32× the input is a lie, not worth allocating.
		n, err := snappy.DecodedLen(data)
		if err != nil || n > 32*len(data) || n > maxBlockBytes {
			return nil, fmt.Errorf("snappy block: decoded length %d of %d bytes (%v)", n, len(data), err)
		}
		out, err := snappy.Decode(nil, data)
		if err != nil {
			return nil, fmt.Errorf("snappy block: %w", err)
		}
		if crc32.ChecksumIEEE(out) != sum {
			return nil, errors.New("snappy block: CRC-32 mismatch")
		}
		return out, nil
	}
	return block, nil
}

// next returns the next entry in goavro's native form of the file's
// schema; io.EOF after the last.
func (c *containerReader) next() (any, error) {
	if c.err != nil {
		return nil, c.err
	}
	for c.left == 0 {
		if c.pos != len(c.block) {
			c.err = fmt.Errorf("%d bytes after the last entry of a block", len(c.block)-c.pos)
			return nil, c.err
		}
		if err := c.readBlock(); err != nil {
			c.err = err
			return nil, err
		}
	}
	d := decoder{b: c.block, i: c.pos}
	d.skip(c.root, 0)
	if d.err != nil {
		c.err = fmt.Errorf("entry: %w", d.err)
		return nil, c.err
	}
	v, _, err := c.avro.NativeFromBinary(c.block[c.pos:d.i])
	if err != nil {
		c.err = fmt.Errorf("entry: %w", err)
		return nil, c.err
	}
	c.pos = d.i
	c.left--
	return v, nil
}
