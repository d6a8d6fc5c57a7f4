// Package compere speaks the Compere MQTT protocol (V1.9) of the KPM31,
// KPM33B, KPM37 and KPM312 meters as data: it parses what a meter publishes
// and builds what the gateway publishes to it. It does no I/O and reads no
// clock: the caller moves the bytes, and passes in every time and the
// location the meters' clocks are set in. It imports drivers/meter only.
//
// # Use
//
//  1. Parse each MQTT message (topic, payload) into a Packet. A payload
//     that is no JSON object, or carries no 13-character meter id, is an
//     error naming what is wrong; unknown tags are ignored, a missing tag
//     is simply absent.
//  2. Add the packet to the meter's Joiner. A KPM37 over WiFi splits one
//     reading over up to 11 packets, complete at "isend":"1"; KPM31 and
//     KPM33B packets are complete on their own and pass straight through.
//     A set left without its end — the meter's next upload (a clock
//     NewSetAfter later) began first — is reported (Lost), never half-used.
//  3. Decode the complete packet into its typed message: RTData,
//     Energy (MQTT_ENY_NOW, MQTT_DAY_DATA), Signal (MQTT_TELEIND),
//     ControlReply (MQTT_TELECTRL_REP), Reply (the time and upload-rate
//     replies).
//  4. NewReading turns RTData and/or Energy into the meter.Reading a Modbus
//     meter gives, with the meter's clock and the zero-frame flag beside it.
//     What a counter means for the bill — a duplicate, a zero frame, a
//     clock gone back — is billing/counter's to decide, not this package's.
//
// # Numbers
//
// Meters send numbers as JSON numbers and some firmware as strings; both
// are read from their decimal text. Energy counters become int64 Wh exactly
// from that text ("31.057" is 31057 Wh) and never pass through a float:
// digits below a Wh are dropped. Instantaneous values are float64 in the
// units of drivers/meter (power W, residual current mA).
//
// # Times
//
// "time" is the meter's own clock, yyyyMMddHHmmss, read in the location
// passed to Decode. A clock before 2010 cannot be right (a KPM33B whose
// clock lost power reports 2005): it is reported in Header.ClockErr and
// kept as sent, never replaced by a guess. Commands format the time they
// are given in that time's own location.
package compere
