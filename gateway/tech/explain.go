package tech

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"mallgrid/drivers/modbus"
)

// Hint says what a technician should check after err, from a meter command
// on port at address addr (0 when no meter was addressed), or "" when there
// is nothing to add. A bare "modbus: timeout" names no cause; a timeout on
// RS-485 is nearly always one of a handful, and the hint lists them.
func Hint(err error, port string, addr int) string {
	var (
		busy *modbus.BusyError
		exc  *modbus.ExceptionError
	)
	at := "the meter"
	if addr > 0 {
		at = fmt.Sprintf("address %d", addr)
	}
	switch {
	case err == nil:
		return ""
	case errors.As(err, &busy):
		if isGateway(busy.Command) {
			return fmt.Sprintf("the running gateway holds %s: two masters on one line collide, so this command will not share it. "+
				"Read a configured meter through the gateway instead (`mallgrid meter read METER-ID -c FILE`), "+
				"or stop the gateway (systemctl stop mallgrid) for commissioning.", port)
		}
		who := "another program"
		if busy.Command != "" {
			who = fmt.Sprintf("%q (PID %d)", busy.Command, busy.PID)
		}
		return fmt.Sprintf("%s holds %s: two masters on one line collide, so this command will not share it. "+
			"Wait for it to finish, or stop it.", who, port)
	case errors.Is(err, modbus.ErrTimeout):
		return fmt.Sprintf("No reply from %s. Check: the address (the meter's display or menu; `mallgrid meter scan` finds it); "+
			"the baud rate (--baud); parity and stop bits (--parity, --stop-bits; the KPM33B leaves the factory at 9600 8E1); "+
			"the A/B wiring (swapped A and B is the commonest fault: try swapping); termination (120 Ω at both ends of a long line) "+
			"and that the meter is powered.", at)
	case errors.Is(err, modbus.ErrCRC), errors.Is(err, modbus.ErrShortReply), errors.Is(err, modbus.ErrBadReply):
		return "A garbled reply: something answers, but not in step with us. Check the baud rate and parity " +
			"(--baud, --parity, --stop-bits must match the meter's settings), then noise on the line: shielded twisted pair, " +
			"the shield grounded at one end, termination, distance from power cables."
	case errors.Is(err, modbus.ErrWrongSlave):
		return fmt.Sprintf("A reply from another address than %s: two meters may share an address, "+
			"or a slow meter answered late. Give each meter its own address.", at)
	case errors.As(err, &exc):
		if exc.Code == 1 || exc.Code == 2 {
			return "The meter refuses this register or function: it is not supported by this model. " +
				"Check --model (`mallgrid meter scan` names the model each address looks like); some meters answer " +
				"their registers on the other read code: try --function 3 (or 4), `function: 3` in the configuration."
		}
		return "The meter understood the request and refused it; see its manual for exception " + fmt.Sprint(exc.Code) + "."
	case errors.Is(err, modbus.ErrNoLink), errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("The port %s cannot be used. Check the device path (ls -l /dev/ttyUSB* /dev/ttyS*; the adapter is plugged in), "+
			"permissions (the user must be in the dialout group: usermod -aG dialout USER, then log in again), "+
			"and that no other program holds it (fuser %s).", port, port)
	}
	return ""
}

// Explain returns err with Hint's advice on a line of its own, or err
// itself when there is none.
func Explain(err error, port string, addr int) error {
	if h := Hint(err, port, addr); h != "" {
		return &hinted{err: err, hint: h}
	}
	return err
}

type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() + "\n" + h.hint }
func (h *hinted) Unwrap() error { return h.err }

// isGateway reports whether a command line is the gateway's daemon
// (`mallgrid run …`), not another mallgrid command (a technician's scan or
// a simulator) that holds a port for a while.
func isGateway(command string) bool {
	f := strings.Fields(command)
	for i, w := range f {
		if (w == "mallgrid" || strings.HasSuffix(w, "/mallgrid")) && i+1 < len(f) && f[i+1] == "run" {
			return true
		}
	}
	return false
}
