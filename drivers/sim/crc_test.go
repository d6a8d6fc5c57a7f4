package sim

import (
	"bytes"
	"testing"
)

func TestCRC16(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want uint16
	}{
		{"check value of CRC-16/MODBUS", []byte("123456789"), 0x4B37},
		{"read 1 holding register at 0 of slave 1", []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x01}, 0x0A84},
		{"empty", nil, 0xFFFF},
	}
	for _, tt := range tests {
		if got := crc16(tt.data); got != tt.want {
			t.Errorf("%s: got %04X; want %04X", tt.name, got, tt.want)
		}
		if got := testCRC(tt.data); got != tt.want {
			t.Errorf("%s (test master's table CRC): got %04X; want %04X", tt.name, got, tt.want)
		}
	}
	frame := appendCRC([]byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x01})
	if want := []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A}; !bytes.Equal(frame, want) {
		t.Errorf("appendCRC: got % X; want % X (low byte first)", frame, want)
	}
	if !checkCRC(frame) {
		t.Errorf("checkCRC(% X): false; want true", frame)
	}
	for i := range frame {
		bad := append([]byte(nil), frame...)
		bad[i] ^= 0x01
		if checkCRC(bad) {
			t.Errorf("checkCRC with byte %d flipped: true; want false", i)
		}
	}
	if checkCRC([]byte{0xFF, 0xFF}) {
		t.Errorf("checkCRC of 2 bytes: true; want false")
	}
}

func TestRTURequestLen(t *testing.T) {
	tests := []struct {
		name  string
		buf   []byte
		want  int
		known bool
	}{
		{"empty", nil, 0, true},
		{"address only", []byte{1}, 0, true},
		{"read holding", []byte{1, 3}, 8, true},
		{"write coil", []byte{1, 5}, 8, true},
		{"report slave id", []byte{1, 0x11}, 4, true},
		{"write registers, byte count not yet in", []byte{1, 0x10, 0, 0, 0, 2}, 0, true},
		{"write 2 registers", []byte{1, 0x10, 0, 0, 0, 2, 4}, 13, true},
		{"write coils, 1 byte", []byte{1, 0x0F, 0, 0, 0, 8, 1}, 10, true},
		{"read/write registers", []byte{1, 0x17, 0, 0, 0, 1, 0, 0, 0, 1, 2}, 15, true},
		{"read device id", []byte{1, 0x2B}, 7, true},
		{"unknown function", []byte{1, 0x41}, 0, false},
		{"exception bit set", []byte{1, 0x83}, 0, false},
	}
	for _, tt := range tests {
		got, known := rtuRequestLen(tt.buf)
		if got != tt.want || known != tt.known {
			t.Errorf("%s: got %d, %v; want %d, %v", tt.name, got, known, tt.want, tt.known)
		}
	}
}
