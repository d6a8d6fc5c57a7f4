// Package sim simulates electricity meters that real Modbus masters can
// read: the gateway and its tests, mbpoll, and technicians running
// `mallgrid sim`. The meters behave like real ones, faults included, so a
// master is tested against the line it will meet in a mall.
//
// # Meters
//
// A Meter is one meter of a meter.Model (the register map is data; the
// simulator knows no model by name) at a Modbus address. Its load comes
// from a Profile, a deterministic function of time sampled once a minute;
// its energy integrates that power over a clock passed in (WithClock), so a
// test with a fake clock predicts every counter to the Wh. Counters are
// exact int64 Wh with the sub-Wh remainder carried. Imported energy also
// goes to one of four meter-side rates by the hour of the clock's time:
// sharp 19–21, peak 08–11 and 17–19, flat 07–08, 11–17 and 21–23, valley
// 23–07. Opening the relay drops current and power to zero and stops the
// counters; the voltage stays. SetLoad, SetRelay, SetRemote, SetImportWh and
// Snapshot are the test's knobs and probes.
//
// # Register image
//
// FC03/FC04 reads answer the model's registers (values through
// meter.Encode) and, on FC03, a KPM33B-style parameter area where the model
// maps nothing itself: 0x0001 Modbus address, 0x0002 baud/format word,
// 0x0012–0x0018 serial number, and the control-mode register the model's
// meter.Relay.RemoteMode writes (0x001E on the KPM33B: 0xDD22 remote, 0xDD11
// local). A built-in model answers its whole published register map (the
// SDM630's input registers 0x0000–0x017F, the SDM120's to 0x0159, the
// KPM33B's holding registers to 0x0205), not only the registers the gateway
// reads, so that third-party masters can read it as they read the real
// meter: values that follow from the meter's state (line voltages, apparent
// power, total kWh) are filled in, other registers in the map read zero. A
// read that reaches past the map (or, for a custom model, past its highest
// register) or touches a meter.Model Unreadable span gets exception 02. A quantity of 0
// or more than 125 gets exception 03, as the Modbus specification says.
// FC01 at the relay coil returns one status byte with a bit per phase
// (bit0 = A … bit2 = C, 1 = closed), the form the KPM33B manual shows.
// FC05 at the relay coil switches the relay (0xFF00 close, 0x0000 open,
// other values 03); a model that needs remote mode acknowledges the write in
// local mode but does not switch, as the real meter does. FC06 and FC16
// write only the address, the baud word and the control mode (others 02,
// bad values 03), all or nothing. Other function codes get 01.
//
// # Faults
//
// Each meter can be made to fail as meters do on a line: NoReply, BadCRC,
// Late, Exception, Garbage, Truncated, WrongSlave, either for its next n
// requests (InjectNext) or at random with a seeded generator
// (SetFaultRates). Stats counts requests and injected faults per kind.
// WithLibmodbusSlave makes a meter listen as libmodbus-based slaves do,
// ignoring the frame after a request to another address, which costs a
// master the request after one to an absent meter.
//
// # Serving
//
// A Bus holds meters by address and serves them as a multi-drop line:
// ServeRTU on a serial stream (a PTY from NewPTY, a serial port, a
// net.Conn), ServeTCP as Modbus TCP and ServeRTUOverTCP as RTU frames over
// TCP. The framing (CRC-16, RTU, MBAP) is the slave side, written here
// independently of the gateway's transport so that each checks the other.
// An absent address gets silence; a broadcast is applied without reply;
// garbled input is dropped until the line falls silent, as a real slave
// resynchronises. Each Serve method returns nil when its context is
// cancelled, after every goroutine it started has ended. WireTiming makes
// replies take the time a real line of a given baud rate would.
//
// Nothing read from a line can make the package panic.
package sim
