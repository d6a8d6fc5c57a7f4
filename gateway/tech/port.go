package tech

import (
	"fmt"
	"strings"
	"time"

	"mallgrid/drivers/modbus"
)

// Port is a bus as given on the command line.
type Port struct {
	Port     string        // device path, tcp://host:port or rtu+tcp://host:port
	Baud     int           // serial only
	Parity   string        // N, E or O; serial only
	StopBits int           // 1 or 2; serial only
	Timeout  time.Duration // per transaction
	// LockDir is where the port's lock file goes ("" = modbus.DefaultLockDir):
	// the running gateway holds its ports there, and a command on one of them
	// fails at once, naming it.
	LockDir string
}

// Open opens the transport p describes.
func Open(p Port) (*modbus.Transport, error) {
	kind, addr, err := modbus.ParsePort(p.Port)
	if err != nil {
		return nil, err
	}
	c, err := Line(p)
	if err != nil {
		return nil, err
	}
	c.Kind, c.Address, c.Timeout, c.LockDir = kind, addr, p.Timeout, p.LockDir
	return modbus.Open(c)
}

// CheckAddress validates a Modbus slave address for a command.
func CheckAddress(a int) error {
	if a < 1 || a > 247 {
		return fmt.Errorf("address %d (want 1..247)", a)
	}
	return nil
}

// Line returns the serial settings of p: for polling through Open, or for
// serving the line as a simulator does.
func Line(p Port) (modbus.Config, error) {
	c := modbus.Config{Kind: modbus.RTU, Address: p.Port, Baud: p.Baud, StopBits: p.StopBits, LockDir: p.LockDir}
	switch strings.ToUpper(p.Parity) {
	case "":
	case "N", "E", "O":
		c.Parity = strings.ToUpper(p.Parity)[0]
	default:
		return c, fmt.Errorf("parity %q (want N, E or O)", p.Parity)
	}
	if p.StopBits != 0 && p.StopBits != 1 && p.StopBits != 2 {
		return c, fmt.Errorf("stop bits %d (want 1 or 2)", p.StopBits)
	}
	return c, nil
}
