package port

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// FuzzFrameReader: any byte stream yields frames within the limit, then a
// clean EOF or a truncation; never a panic, an over-limit frame or more
// bytes than were sent. Frames written with appendFrame read back intact.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{}, uint16(16))
	f.Add(appendFrame(nil, []byte(`{"id":1,"op":"version"}`)), uint16(64))
	f.Add(appendFrame(appendFrame(nil, []byte("abc")), []byte("defgh")), uint16(4))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, uint16(8))
	f.Add([]byte{0, 0, 0}, uint16(8))
	f.Add([]byte{0, 0, 0, 5, 'a', 'b'}, uint16(8))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0}, uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		r := newFrameReader(bytes.NewReader(data), int(limit))
		effective := int(limit)
		if effective <= 0 {
			effective = DefaultMaxFrameBytes
		}
		consumed := 0
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("reader did not stop after %d frames of %d bytes input", i, len(data))
			}
			frame, err := r.Next()
			var tooLarge *FrameTooLargeError
			switch {
			case err == nil:
				if len(frame) > effective {
					t.Fatalf("frame of %d bytes passed the limit %d", len(frame), effective)
				}
				consumed += frameHeaderLen + len(frame)
				if consumed > len(data) {
					t.Fatalf("read %d bytes of frames from %d bytes of input", consumed, len(data))
				}
				continue
			case errors.As(err, &tooLarge):
				if tooLarge.Size <= uint64(effective) {
					t.Fatalf("refused a frame of %d bytes under the limit %d", tooLarge.Size, effective)
				}
				consumed += frameHeaderLen
				continue
			case err == io.EOF:
			case errors.Is(err, ErrTruncatedFrame) && errors.Is(err, io.ErrUnexpectedEOF):
			default:
				t.Fatalf("unexpected error %v", err)
			}
			break
		}

		// Round trip: data cut into frames under the limit reads back as sent.
		var stream []byte
		var sent [][]byte
		for rest := data; len(rest) > 0; {
			n := min(len(rest), effective, 1+int(rest[0])%7)
			sent = append(sent, rest[:n])
			stream = appendFrame(stream, rest[:n])
			rest = rest[n:]
		}
		r = newFrameReader(bytes.NewReader(stream), effective)
		for i, want := range sent {
			got, err := r.Next()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("frame %d: got %q, %v; want %q", i, got, err, want)
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
		if len(stream) >= 4 && binary.BigEndian.Uint32(stream) != uint32(len(sent[0])) {
			t.Fatal("appendFrame wrote a wrong header")
		}
	})
}
