// Package mqttmeters runs a bus of Compere meters that report over MQTT
// (a compere-mqtt bus): it turns what they publish into the readings the
// pipeline takes from a Modbus bus, and drives their relays, so that they
// are billed, cut off and restored exactly like meters on RS-485.
//
// The link (gateway/mqttlink: the embedded broker, or a client of the
// mall's) moves the messages; drivers/compere parses them and builds the
// commands. A Bus does the rest:
//
//   - Readings. A complete MQTT_RT_DATA becomes a reading of
//     instantaneous values alone, and a complete MQTT_ENY_NOW one of the
//     counters alone (the pipeline bills the latter and judges the alarm
//     rules on the former); both carry the relay state last reported. The
//     readings of the messages received within Config.Gather go to the
//     Sink as one poll.Cycle, handed over by one goroutine in the order
//     they came, so that the pipeline's commit is also this bus's
//     back-pressure. A message's time is when the gateway received it; the
//     meter's own clock is only checked. An all-zero MQTT_ENY_NOW goes to
//     the pipeline, whose counter rules refuse and report it; an all-zero
//     MQTT_RT_DATA is dropped and counted, since values of 0 would show a
//     power cut that never was (and raise phase-loss alarms).
//   - Liveness. A meter silent for three of its upload intervals (the
//     one it was set to, or the longer one it keeps) gets a
//     failed read once a second, as an absent Modbus meter does, so that
//     the health tracker takes it offline and back online by its usual
//     rules.
//   - Relay state. A KPM33B never reports its relay and a KPM31 only on a
//     change (MQTT_TELEIND), so the state a Bus knows is the one its last
//     command confirmed, or the one a report told, or — after a restart —
//     the one stored with the meter's last reading (Meter.Relay).
//     Enforcement commands the desired state of a meter whose state is
//     unknown rather than wait for it (the same state again is harmless).
//   - Relays. SwitchRelay publishes MQTT_TELECTRL_<last 8 of the id> with
//     a new operation id and waits for the MQTT_TELECTRL_REP carrying it:
//     code 01 is done; 02 or no answer within Config.RelayWait is tried
//     again, up to Config.RelayTries, then the command fails (enforcement
//     records the failure and raises relay_fault).
//   - Upkeep. The first message of a meter after the start sets its
//     real-time upload interval (MQTT_COMMOD_SET), and a meter clock off
//     by more than a minute (or one in 2005) is set (MQTT_SETTIME), at
//     most once an hour, and every meter's clock once a day; each
//     confirmed by its reply, or tried again.
//
// It imports drivers/compere, drivers/meter, gateway/poll (the Cycle,
// Sink and Bus it shares with Modbus buses) and gateway/mqttlink.
package mqttmeters
