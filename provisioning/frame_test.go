package provisioning

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func mustFrame(t testing.TB, f Frame) []byte {
	t.Helper()
	b, err := AppendFrame(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range []Frame{
		{Seq: 1, Type: TypeHello, Payload: []byte(`{"min_version":1}`)},
		{Seq: 0xFFFF, Type: TypeOK},
		{Seq: 7, Type: TypeInstall, Payload: bytes.Repeat([]byte{StartByte}, MaxPayload)},
	} {
		// One byte per read, as a slow UART delivers it.
		r := NewReader(iotest.OneByteReader(bytes.NewReader(mustFrame(t, f))))
		got, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("%s: %v", f.Type, err)
		}
		if got.Seq != f.Seq || got.Type != f.Type || !bytes.Equal(got.Payload, f.Payload) {
			t.Fatalf("got seq %d type %s len %d, want seq %d type %s len %d", got.Seq, got.Type, len(got.Payload), f.Seq, f.Type, len(f.Payload))
		}
		if _, err := r.ReadFrame(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the frame: %v, want EOF", err)
		}
	}
}

func TestFrameTooLarge(t *testing.T) {
	_, err := AppendFrame(nil, Frame{Type: TypeOK, Payload: make([]byte, MaxPayload+1)})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

// TestReaderSkipsNoise: frames survive any noise between them, including false start bytes and
// a false header claiming a long payload, and the noise is counted.
func TestReaderSkipsNoise(t *testing.T) {
	a := mustFrame(t, Frame{Seq: 1, Type: TypeHello, Payload: []byte(`{"a":1}`)})
	b := mustFrame(t, Frame{Seq: 2, Type: TypeCSR})
	// A sound header of a frame whose body never comes in full: the next real frame is inside
	// what it claims as its payload.
	falseHeader := mustFrame(t, Frame{Seq: 9, Type: TypeInstall, Payload: make([]byte, 40)})[:headerLen+3]
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 300)
	for i := range noise {
		noise[i] = byte(rng.UintN(256))
	}
	noise = append(noise, StartByte, StartByte, 0, 3)
	var line []byte
	line = append(line, noise...)
	line = append(line, a...)
	line = append(line, falseHeader...)
	line = append(line, b...)
	line = append(line, make([]byte, 64)...) // pad so the false header's claimed length is satisfied
	line = append(line, a...)

	r := NewReader(bytes.NewReader(line))
	var got []uint16
	var damaged int
	for {
		f, err := r.ReadFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ErrChecksum) {
			damaged++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Seq)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 1 {
		t.Fatalf("frames read: %v, want [1 2 1]", got)
	}
	if damaged != 1 {
		t.Fatalf("damaged frames: %d, want 1 (the false header)", damaged)
	}
	if r.Skipped() < int64(len(noise)) {
		t.Fatalf("skipped %d bytes, want at least the %d of noise", r.Skipped(), len(noise))
	}
}

// TestReaderTamperedFrame: a flipped payload bit is caught by the CRC, and the header is
// returned so the receiver can ask for the frame again.
func TestReaderTamperedFrame(t *testing.T) {
	b := mustFrame(t, Frame{Seq: 42, Type: TypeInstall, Payload: []byte(`{"device_id":"kiosk-1"}`)})
	b[headerLen+5] ^= 0x01
	f, err := NewReader(bytes.NewReader(b)).ReadFrame()
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("got %v, want ErrChecksum", err)
	}
	if f.Seq != 42 || f.Type != TypeInstall || f.Payload != nil {
		t.Fatalf("damaged frame: %+v, want the header only", f)
	}
}

// FuzzReadFrame: any bytes on the line neither panic nor loop; every frame read is sound, and
// a frame written after any noise is found.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(mustFrame(f, Frame{Seq: 1, Type: TypeHello, Payload: []byte(`{"min_version":1,"max_version":1}`)}))
	f.Add(append([]byte{StartByte, 0xFF, 0xFF, 0, 1, 1}, mustFrame(f, Frame{Seq: 3, Type: TypeOK})...))
	f.Add([]byte("\x7e\x7e\x7e\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		want := Frame{Seq: 0xBEEF, Type: TypePoll, Payload: []byte(`{"after":3}`)}
		line := append(append([]byte{}, data...), make([]byte, headerLen+MaxPayload+trailerLen)...)
		line = append(line, mustFrame(t, want)...)
		r := NewReader(bytes.NewReader(line))
		for n := 0; ; n++ {
			if n > len(line) {
				t.Fatal("more frames than bytes")
			}
			got, err := r.ReadFrame()
			if errors.Is(err, ErrChecksum) {
				continue
			}
			if err != nil {
				t.Fatalf("the frame after the noise was not found: %v", err)
			}
			if len(got.Payload) > MaxPayload {
				t.Fatalf("payload of %d bytes", len(got.Payload))
			}
			if got.Seq == want.Seq && got.Type == want.Type && bytes.Equal(got.Payload, want.Payload) {
				return
			}
		}
	})
}
