package book

// index maps a level's key to its node: open addressing with linear probing and
// backward-shift deletion (no tombstones), so a side that keeps its size never
// allocates, and finding the level an update names costs O(1) instead of a tree
// descent. Node 0 marks an empty slot.
type index struct {
	keys  []int64
	nodes []int32
	shift uint8 // 64 − log2(len)
	n     int
}

func (x *index) slot(key int64) int {
	return int((uint64(key) * 0x9e3779b97f4a7c15) >> x.shift)
}

func (x *index) init(capacity int) {
	size := 16
	for size < 2*capacity {
		size *= 2
	}
	x.keys = make([]int64, size)
	x.nodes = make([]int32, size)
	x.shift = uint8(64 - log2(size))
	x.n = 0
}

func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

func (x *index) get(key int64) int32 {
	if x.keys == nil {
		return 0
	}
	mask := len(x.keys) - 1
	for i := x.slot(key); ; i = (i + 1) & mask {
		n := x.nodes[i]
		if n == 0 || x.keys[i] == key {
			return n
		}
	}
}

// put adds key → node; key must be absent.
func (x *index) put(key int64, node int32) {
	if 2*(x.n+1) > len(x.keys) {
		x.grow()
	}
	mask := len(x.keys) - 1
	i := x.slot(key)
	for x.nodes[i] != 0 {
		i = (i + 1) & mask
	}
	x.keys[i], x.nodes[i] = key, node
	x.n++
}

func (x *index) grow() {
	keys, nodes := x.keys, x.nodes
	x.init(max(16, len(keys)))
	for i, n := range nodes {
		if n != 0 {
			x.put(keys[i], n)
		}
	}
}

// del removes key, which must be present.
func (x *index) del(key int64) {
	mask := len(x.keys) - 1
	i := x.slot(key)
	for x.keys[i] != key || x.nodes[i] == 0 {
		i = (i + 1) & mask
	}
	// Shift back the entries of the run after i that may not stay behind the hole.
	for j := i; ; {
		j = (j + 1) & mask
		if x.nodes[j] == 0 {
			break
		}
		k := x.slot(x.keys[j])
		var stays bool
		if i <= j {
			stays = i < k && k <= j
		} else {
			stays = i < k || k <= j
		}
		if stays {
			continue
		}
		x.keys[i], x.nodes[i] = x.keys[j], x.nodes[j]
		i = j
	}
	x.nodes[i] = 0
	x.n--
}

// clear empties the index, keeping its memory.
func (x *index) clear() {
	clear(x.nodes)
	x.n = 0
}
