package sim

import (
	"errors"
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal pair standing in for an RS-485 adapter: the
// simulator serves Master, and a Modbus master (the gateway, mbpoll,
// tarm/serial) opens Path as if it were /dev/ttyUSB0. Baud rate, parity and
// stop bits set on Path are accepted and ignored; see WireTiming for line
// timing.
type PTY struct {
	// Master is the simulator's end. It takes read deadlines, so ServeRTU
	// stops on cancel.
	Master *os.File
	// Path is the terminal device a master opens, e.g. /dev/pts/3.
	Path string
	// slave stays open for the PTY's whole life: when every handle on the
	// slave side is closed, reads on the master side fail with EIO, so a
	// master closing and reopening the port would end the simulator.
	slave *os.File
}

// NewPTY opens a pseudo-terminal with both ends in raw mode. A terminal
// starts in text mode (echo, CR/LF translation, ^C, ^S), which corrupts
// binary frames; raw mode passes every byte through unchanged. It returns
// an error if the system has no pseudo-terminals left or refuses raw mode.
func NewPTY() (*PTY, error) {
	ptm, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("sim: open pty: %w", err)
	}
	master, err := pollable(ptm)
	if cerr := ptm.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sim: close pty master copy: %w", cerr)
	}
	if err != nil {
		return nil, errors.Join(err, slave.Close())
	}
	p := &PTY{Master: master, Path: slave.Name(), slave: slave}
	for _, f := range []*os.File{slave, master} {
		if err := makeRaw(f); err != nil {
			return nil, errors.Join(fmt.Errorf("sim: raw mode on %s: %w", f.Name(), err), p.Close())
		}
	}
	return p, nil
}

// pollable returns a copy of f that the Go runtime poller manages, so that
// it takes read deadlines. creack/pty reads the slave's name through f.Fd(),
// which puts f in blocking mode for good; a duplicate descriptor set
// non-blocking and wrapped with os.NewFile is pollable again.
func pollable(f *os.File) (*os.File, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("sim: pty master: %w", err)
	}
	fd := -1
	var dupErr error
	if err := sc.Control(func(raw uintptr) {
		fd, dupErr = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("sim: pty master: %w", err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("sim: dup pty master: %w", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, errors.Join(fmt.Errorf("sim: pty master non-blocking: %w", err), unix.Close(fd))
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// makeRaw sets f's terminal to raw 8-bit mode, as cfmakeraw(3) does, with
// reads returning as soon as one byte is there. It goes through
// SyscallConn, not Fd, so f stays non-blocking.
func makeRaw(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	err = sc.Control(func(raw uintptr) {
		fd := int(raw)
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			opErr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP |
			unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		opErr = unix.IoctlSetTermios(fd, unix.TCSETS, t)
	})
	if err != nil {
		return err
	}
	return opErr
}

// Close closes both ends. A master that still has Path open then reads
// EOF or EIO.
func (p *PTY) Close() error {
	return errors.Join(p.Master.Close(), p.slave.Close())
}
