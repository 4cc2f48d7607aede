package port

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrameBytes bounds one request frame when Config.MaxFrameBytes is 0.
const DefaultMaxFrameBytes = 1 << 20

// frameHeaderLen is Erlang's {packet,4}: a 4-byte big-endian length.
const frameHeaderLen = 4

// ErrTruncatedFrame means the input ended inside a frame header or payload:
// the peer died mid-write, so the stream cannot be trusted any more.
var ErrTruncatedFrame = errors.New("input ended in the middle of a frame")

// FrameTooLargeError refuses a frame whose announced length exceeds the limit.
// The reader skips the payload on the next call, so the stream stays in sync.
type FrameTooLargeError struct {
	Size  uint64
	Limit int
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the limit of %d bytes (--max-frame-bytes)", e.Size, e.Limit)
}

// frameReader reads length-prefixed frames. It never allocates more than the
// limit, whatever a header announces.
type frameReader struct {
	r     io.Reader
	limit int
	// skip is the payload of a refused frame still to be discarded.
	skip   int64
	header [frameHeaderLen]byte
}

func newFrameReader(r io.Reader, limit int) *frameReader {
	if limit <= 0 {
		limit = DefaultMaxFrameBytes
	}
	return &frameReader{r: r, limit: limit}
}

// Next returns the next frame's payload. It returns io.EOF at a clean frame
// boundary, ErrTruncatedFrame (wrapping io.ErrUnexpectedEOF) inside a frame
// and *FrameTooLargeError for a frame over the limit (call Next again to go on).
func (f *frameReader) Next() ([]byte, error) {
	if f.skip > 0 {
		// io.Discard's ReadFrom copies through a small pooled buffer.
		n, err := io.CopyN(io.Discard, f.r, f.skip)
		f.skip -= n
		if err != nil {
			return nil, truncated(err, "discarding an oversized frame")
		}
	}
	if _, err := io.ReadFull(f.r, f.header[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, truncated(err, "reading a frame header")
	}
	size := binary.BigEndian.Uint32(f.header[:])
	if uint64(size) > uint64(f.limit) {
		f.skip = int64(size)
		return nil, &FrameTooLargeError{Size: uint64(size), Limit: f.limit}
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(f.r, buf); err != nil {
		return nil, truncated(err, fmt.Sprintf("reading a %d-byte frame", size))
	}
	return buf, nil
}

func truncated(err error, doing string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w (%s): %w", ErrTruncatedFrame, doing, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// appendFrame prefixes payload with its length so one Write sends the frame.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}
