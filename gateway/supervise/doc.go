// Package supervise tells the service manager (systemd) how the gateway is
// doing: READY=1 once it serves, STOPPING=1 when it shuts down, RELOADING=1
// while a new configuration is taken up, a one-line STATUS= for
// `systemctl status`, and WATCHDOG=1 pings — but only while every loop
// that must make progress does.
//
// # Use
//
// The daemon calls FromEnv once and runs Manager.Run for its whole life.
// Each loop that must not hang (a bus's poller, an MQTT bus, the relay
// reconciler, a reload) takes a Loop with Manager.Loop, calls Beat at each step it
// makes (a transaction, a commit, a wait) and Done when it ends on purpose.
// Ready is called once the database is open and every bus loop started
// (and again after each reload), Stopping when shutdown begins. Every
// method is safe on a nil *Manager and a nil *Loop, and where NOTIFY_SOCKET
// is unset the Manager sends nothing: the code that calls it need not ask
// whether it runs under systemd.
//
// # The watchdog
//
// Where systemd set WATCHDOG_USEC (the unit's WatchdogSec=) and
// WATCHDOG_PID is unset or this process, Run sends WATCHDOG=1 every third
// of that time while every live Loop has beaten within the allowance
// (DefaultAllowance). A Loop that has not beaten for longer is stalled: the
// pings stop, the loop is named once in the log at error level and on the
// STATUS= line, and systemd kills and restarts the gateway WatchdogSec
// after the last ping. A stalled loop that beats again, or ends with Done,
// lets the pings resume. A bare timer cannot tell a hung goroutine from a
// live one; the beats are what can.
//
// # Times
//
// The notify datagrams go out with a write deadline (sendTimeout), so a
// service manager that does not read cannot stop the gateway. Beats and the
// allowance are measured on the clock passed in Options.Now (time.Now by
// default); the pings' period is real time, as systemd's is.
package supervise
