package ratelimit

import "testing"

func TestKeySlot(t *testing.T) {
	slotOf := func(s string) int { return int(crc16(s)) % 16384 }
	for _, tc := range []struct {
		key  string
		want int
	}{
		// CRC-16/XMODEM's check value, then two CLUSTER KEYSLOT answers, then the
		// hash-tag rules of the cluster specification.
		{"123456789", 0x31C3},
		{"foo", 12182},
		{"bar", 5061},
		{"{user1000}.following", slotOf("user1000")},
		{"foo{}{bar}", slotOf("foo{}{bar}")}, // empty tag: the whole key is hashed
		{"foo{{bar}}zap", slotOf("{bar")},
		{"foo{bar}{zap}", slotOf("bar")},
		{"ts:rl:{user-1}:p", slotOf("user-1")},
	} {
		if got := keySlot(tc.key); got != tc.want {
			t.Errorf("keySlot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}
