package book

// side holds the levels of one side of a book in a treap (a binary search tree kept
// balanced by random priorities: expected O(log n) search, insert and delete) whose
// nodes are also threaded in price order, so the best level, the worst level and the
// walk from the top are O(1) per step.
//
// Nodes live in one slice and refer to each other by index; removed nodes go to a
// free list and are reused, so a book that has reached its working size applies
// updates without allocating.
//
// Keys are price mantissas for asks and their negation for bids: on both sides the
// best level has the smallest key.
type side struct {
	nodes []node // nodes[0] is the nil sentinel
	free  int32  // head of the free list, linked through left
	root  int32
	best  int32
	worst int32
	n     int
	rng   uint32
	idx   index
}

type node struct {
	key         int64
	qty         int64
	left, right int32
	prev, next  int32 // better and worse neighbours
	prio        uint32
}

func (s *side) init() {
	if s.nodes == nil {
		s.nodes = make([]node, 1, 64)
		s.rng = 0x9e3779b9
	}
}

// clear removes every level, keeping the memory.
func (s *side) clear() {
	s.init()
	s.nodes = s.nodes[:1]
	s.free, s.root, s.best, s.worst, s.n = 0, 0, 0, 0, 0
	s.idx.clear()
}

func (s *side) random() uint32 {
	x := s.rng
	x ^= x << 13
	x ^= x >> 17
	x ^= x << 5
	s.rng = x
	return x
}

// set makes the quantity at key qty; zero removes the level. It reports whether the
// book changed.
func (s *side) set(key, qty int64) bool {
	s.init()
	if t := s.idx.get(key); t != 0 {
		n := &s.nodes[t]
		if qty != 0 {
			changed := n.qty != qty
			n.qty = qty
			return changed
		}
		s.delete(t)
		return true
	}
	if qty == 0 {
		return false
	}
	var pred, succ int32
	for t := s.root; t != 0; {
		n := &s.nodes[t]
		if key < n.key {
			succ, t = t, n.left
		} else {
			pred, t = t, n.right
		}
	}
	x := s.alloc()
	s.nodes[x] = node{key: key, qty: qty, prev: pred, next: succ, prio: s.random()}
	if pred != 0 {
		s.nodes[pred].next = x
	} else {
		s.best = x
	}
	if succ != 0 {
		s.nodes[succ].prev = x
	} else {
		s.worst = x
	}
	s.root = s.insert(s.root, x)
	s.idx.put(key, x)
	s.n++
	return true
}

// delete removes node t from the list, the tree and the index.
func (s *side) delete(t int32) {
	key := s.nodes[t].key
	s.unlink(t)
	s.root = s.remove(s.root, key)
	s.idx.del(key)
	s.release(t)
}

func (s *side) alloc() int32 {
	if s.free != 0 {
		x := s.free
		s.free = s.nodes[x].left
		return x
	}
	s.nodes = append(s.nodes, node{})
	return int32(len(s.nodes) - 1)
}

func (s *side) release(x int32) {
	s.nodes[x] = node{left: s.free}
	s.free = x
	s.n--
}

func (s *side) unlink(x int32) {
	n := s.nodes[x]
	if n.prev != 0 {
		s.nodes[n.prev].next = n.next
	} else {
		s.best = n.next
	}
	if n.next != 0 {
		s.nodes[n.next].prev = n.prev
	} else {
		s.worst = n.prev
	}
}

func (s *side) insert(t, x int32) int32 {
	if t == 0 {
		return x
	}
	if s.nodes[x].key < s.nodes[t].key {
		l := s.insert(s.nodes[t].left, x)
		s.nodes[t].left = l
		if s.nodes[l].prio > s.nodes[t].prio {
			s.nodes[t].left = s.nodes[l].right
			s.nodes[l].right = t
			return l
		}
		return t
	}
	r := s.insert(s.nodes[t].right, x)
	s.nodes[t].right = r
	if s.nodes[r].prio > s.nodes[t].prio {
		s.nodes[t].right = s.nodes[r].left
		s.nodes[r].left = t
		return r
	}
	return t
}

func (s *side) remove(t int32, key int64) int32 {
	n := &s.nodes[t]
	switch {
	case key < n.key:
		n.left = s.remove(n.left, key)
		return t
	case key > n.key:
		n.right = s.remove(n.right, key)
		return t
	}
	return s.merge(n.left, n.right)
}

// merge joins two treaps whose keys are all smaller in a than in b.
func (s *side) merge(a, b int32) int32 {
	if a == 0 {
		return b
	}
	if b == 0 {
		return a
	}
	if s.nodes[a].prio > s.nodes[b].prio {
		s.nodes[a].right = s.merge(s.nodes[a].right, b)
		return a
	}
	s.nodes[b].left = s.merge(a, s.nodes[b].left)
	return b
}

// truncate removes the worst levels until at most depth remain.
func (s *side) truncate(depth int) {
	for s.n > depth && s.worst != 0 {
		s.delete(s.worst)
	}
}

// fits reports whether every key and quantity can be multiplied by the given powers
// of ten without overflow.
func (s *side) fits(keyExp, qtyExp int) bool {
	for x := s.best; x != 0; x = s.nodes[x].next {
		n := &s.nodes[x]
		if _, ok := rescale(n.key, 0, keyExp); !ok {
			return false
		}
		if _, ok := rescale(n.qty, 0, qtyExp); !ok {
			return false
		}
	}
	return true
}

// scale multiplies every key and quantity by the given powers of ten; fits must have
// said they fit.
func (s *side) scale(keyExp, qtyExp int) {
	if keyExp == 0 && qtyExp == 0 {
		return
	}
	s.idx.clear()
	for x := s.best; x != 0; x = s.nodes[x].next {
		n := &s.nodes[x]
		n.key, _ = rescale(n.key, 0, keyExp)
		n.qty, _ = rescale(n.qty, 0, qtyExp)
		s.idx.put(n.key, x)
	}
}

// get returns the quantity at key, zero if there is no such level.
func (s *side) get(key int64) int64 {
	if t := s.idx.get(key); t != 0 {
		return s.nodes[t].qty
	}
	return 0
}
