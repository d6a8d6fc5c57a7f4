package sim

// crc16 returns the CRC-16/Modbus of data (reflected polynomial 0xA001,
// initial value 0xFFFF). It works bit by bit instead of from a table: frames
// are at most 256 bytes, and a table would be package state for no gain a
// serial line could notice. It is written here, not shared with the master's
// transport, so that the two implementations check each other.
func crc16(data []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range data {
		crc ^= uint16(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// appendCRC appends data's CRC, low byte first as RTU sends it.
func appendCRC(data []byte) []byte {
	c := crc16(data)
	return append(data, byte(c), byte(c>>8))
}

// checkCRC reports whether frame (with its two CRC bytes) is intact.
func checkCRC(frame []byte) bool {
	if len(frame) < 3 {
		return false
	}
	n := len(frame) - 2
	c := crc16(frame[:n])
	return frame[n] == byte(c) && frame[n+1] == byte(c>>8)
}
