package modbus

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// serialRS485 mirrors the kernel's struct serial_rs485 (include/uapi/linux/serial.h).
type serialRS485 struct {
	Flags              uint32
	DelayRTSBeforeSend uint32
	DelayRTSAfterSend  uint32
	Padding            [5]uint32
}

const (
	serRS485Enabled   = 1 << 0
	serRS485RTSOnSend = 1 << 1
)

// enableRS485 turns on the kernel's RS-485 mode (RTS drives the
// transceiver's direction) on a board UART. USB adapters switch direction by
// themselves and need none; a pseudo-terminal refuses the ioctl.
func enableRS485(device string) error {
	f, err := os.OpenFile(device, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("rs485: %w", err)
	}
	defer f.Close()
	rs := serialRS485{Flags: serRS485Enabled | serRS485RTSOnSend}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.TIOCSRS485, uintptr(unsafe.Pointer(&rs)))
	if errno != 0 {
		return fmt.Errorf("rs485: TIOCSRS485 on %s: %w", device, errno)
	}
	return nil
}
