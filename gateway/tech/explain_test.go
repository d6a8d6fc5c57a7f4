package tech

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"mallgrid/drivers/modbus"
)

func TestHint(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string // "" for no hint
	}{
		{"timeout", fmt.Errorf("read: %w", modbus.ErrTimeout), []string{"address 7", "baud rate", "parity and stop bits", "A/B wiring", "termination"}},
		{"crc", modbus.ErrCRC, []string{"baud rate and parity", "noise"}},
		{"short", modbus.ErrShortReply, []string{"baud rate and parity"}},
		{"wrong slave", modbus.ErrWrongSlave, []string{"share an address"}},
		{"exception 2", &modbus.ExceptionError{Function: 3, Code: 2}, []string{"not supported by this model", "function: 3"}},
		{"exception 1", &modbus.ExceptionError{Function: 4, Code: 1}, []string{"not supported by this model"}},
		{"exception 4", &modbus.ExceptionError{Function: 3, Code: 4}, []string{"exception 4"}},
		{"no device", fmt.Errorf("open: %w", os.ErrNotExist), []string{"device path", "dialout", "fuser /dev/ttyX"}},
		{"no link", modbus.ErrNoLink, []string{"device path"}},
		{"held by the gateway", &modbus.BusyError{Port: "/dev/ttyX", PID: 42, Command: "/usr/bin/mallgrid run -c /etc/mallgrid.yaml"},
			[]string{"the running gateway holds /dev/ttyX", "mallgrid meter read METER-ID -c FILE", "systemctl stop mallgrid"}},
		{"held by another program", &modbus.BusyError{Port: "/dev/ttyX", PID: 42, Command: "minicom"}, []string{`"minicom" (PID 42) holds /dev/ttyX`}},
		{"held by a technician's scan", &modbus.BusyError{Port: "/dev/ttyX", PID: 43, Command: "mallgrid meter scan --port /dev/ttyX"},
			[]string{`"mallgrid meter scan --port /dev/ttyX" (PID 43) holds /dev/ttyX`}},
		{"held, holder unknown", &modbus.BusyError{Port: "/dev/ttyX"}, []string{"another program holds /dev/ttyX"}},
		{"other", errors.New("something else"), nil},
	}
	for _, tt := range tests {
		h := Hint(tt.err, "/dev/ttyX", 7)
		if tt.want == nil && h != "" {
			t.Errorf("%s: hint %q; want none", tt.name, h)
		}
		for _, w := range tt.want {
			if !strings.Contains(h, w) {
				t.Errorf("%s: hint %q lacks %q", tt.name, h, w)
			}
		}
		if e := Explain(tt.err, "/dev/ttyX", 7); !errors.Is(e, tt.err) {
			t.Errorf("%s: Explain lost the error: %v", tt.name, e)
		}
	}
}
