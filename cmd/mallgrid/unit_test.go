package main

import (
	"os"
	"strings"
	"testing"

	"mallgrid/drivers/modbus"
)

// The unit makes the file system read-only (ProtectSystem=strict): the
// directory of the serial ports' lock files must be among the paths it
// leaves writable, or the gateway cannot open a single port.
func TestUnit_LockDirWritable(t *testing.T) {
	raw, err := os.ReadFile("../../systemd/mallgrid.service")
	if err != nil {
		t.Fatal(err)
	}
	var strict bool
	var writable []string
	for _, line := range strings.Split(string(raw), "\n") {
		key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		switch {
		case !ok:
		case key == "ProtectSystem":
			strict = value == "strict"
		case key == "ReadWritePaths":
			writable = append(writable, strings.Fields(value)...)
		}
	}
	if !strict {
		t.Skip("the unit does not make the file system read-only")
	}
	for _, dir := range writable {
		if dir == modbus.RunLockDir {
			return
		}
	}
	t.Errorf("ReadWritePaths = %v; want %s among them (the serial ports' lock files)", writable, modbus.RunLockDir)
}
