package pyworker

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// MaxFrameBytes bounds one message in either direction; a peer that sends more is broken.
const MaxFrameBytes = 64 << 20

// readFrame reads one length-prefixed JSON message.
func readFrame(r *bufio.Reader) (*frame, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > MaxFrameBytes {
		return nil, fmt.Errorf("the worker sent a message of %d bytes, over the limit of %d", n, MaxFrameBytes)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read a message of %d bytes: %w", n, err)
	}
	f := &frame{}
	if err := json.Unmarshal(body, f); err != nil {
		return nil, fmt.Errorf("the worker sent a message that is not JSON: %w", err)
	}
	return f, nil
}

// encodeFrame returns f as one length-prefixed message, ready for a single write.
func encodeFrame(f *frame) ([]byte, error) {
	body, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", f.Op, err)
	}
	if len(body) > MaxFrameBytes {
		return nil, fmt.Errorf("a %s message of %d bytes is over the limit of %d", f.Op, len(body), MaxFrameBytes)
	}
	out := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(out, uint32(len(body)))
	return append(out, body...), nil
}
