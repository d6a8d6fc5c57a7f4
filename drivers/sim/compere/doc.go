// Package comperesim simulates Compere MQTT meters — KPM31, KPM33B, KPM37
// and KPM312 — as MQTT clients of a broker, the way the real 4G and WiFi
// meters connect to a mall's broker or to the gateway's embedded one. It is
// what `mallgrid sim --mqtt` serves and what tests of the gateway's
// compere-mqtt buses publish through.
//
// # Contract
//
// A Device is one meter of a compere.Model; a KPM312 device is four
// circuits, each with its own id (compere.Model.CircuitIDs), its own MQTT
// connection (client id = its id), its own messages and its own relay.
// Each circuit:
//
//   - connects to the broker URL (tcp:// or ssl://) with a username and
//     password (MQTT 3.1.1), reconnecting whenever the broker goes away,
//     and subscribes QoS 1 to MQTT_TELECTRL_X, MQTT_SETTIME_X and
//     MQTT_COMMOD_SET_X (X = the id's last 8 characters) on every
//     connection;
//   - publishes MQTT_RT_DATA every real-time interval (30 s by default)
//     and MQTT_ENY_NOW every energy interval (60 s), at QoS 1, each
//     publish waiting for its PUBACK for at most PublishTimeout; a message
//     the broker did not take in time is logged and not sent again by the
//     simulator (paho may still deliver it after a reconnection, as a real
//     meter's stack does);
//   - answers MQTT_TELECTRL_X with MQTT_TELECTRL_REP (code 01, switching,
//     then MQTT_TELEIND if the model publishes it and an output changed;
//     or code 02 without switching), MQTT_SETTIME_X with
//     MQTT_METER_TIME_REP, MQTT_COMMOD_SET_X with MQTT_COMMOD_SET_REP
//     (code 02 for an interval compere.RealTimeIntervals or
//     EnergyIntervals does not list). A command whose oprid is not 32
//     characters is ignored, as the meters ignore it.
//
// Payloads are JSON as the manual and the captured logs show: numbers as
// JSON numbers with the logs' decimals (V, A, Hz, PF 3, kW/kvar/kVA 4,
// counters kWh with exactly 3, from the integer Wh counter), "time" in the
// meter's own clock as yyyyMMddHHmmss, "isend" as a string.
//
// # Load and energy
//
// Each circuit's load and counters are a drivers/sim Meter (a MallProfile
// of BaseW, or a constant load): integer Wh integrated exactly, the import
// also counted on four rate counters by drivers/sim's fixed time-of-day
// plan (sharp 19–21, peak 08–11 and 17–19, flat 07–08, 11–17 and 21–23,
// valley 23–07, by the host's clock in Location). The load flows only
// while every relay output (do1; do1 and do2 on a KPM37) is closed.
//
// # Clock
//
// A circuit's clock is the host's clock (Config.Now) plus an offset that
// MQTT_SETTIME sets; it may start 21 years behind (a clock in 2005, as a
// KPM33B whose clock lost power reports).
//
// # Behaviours of real meters
//
// Faults holds rates in [0, 1], all off by default, drawn from a generator
// seeded by Config.Seed and the circuit's index, so a run is repeatable:
// a message published two or three times, an all-zero frame published
// before a real reading, a reading split into the manual's packets (KPM37
// and KPM312: 9 for RT_DATA, 11 for ENY_NOW; complete at "isend":"1"), a
// clock that starts in 2005, a relay command answered 02. The manual's
// ENY_NOW example also marks its 9th of 11 packets "isend":"1"; here only
// the last is, since a gateway takes a set as complete at the first one.
// A zero frame is one packet, also from a meter that splits.
//
// Run returns when its context is cancelled, after every goroutine it
// started has ended and every connection is closed.
package comperesim
