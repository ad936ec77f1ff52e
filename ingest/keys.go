package ingest

// Keys of the ingest package: the shard group's membership and leases. All keys of one
// group share the hash tag {shard:<group>}, so the scripts that touch them run on one
// Redis Cluster slot.

func shardTag(group string) string { return "{shard:" + group + "}" }

// shardMembersKey is the sorted set of a group's live instances, scored by expiry (ms).
func shardMembersKey(prefix, group string) string {
	return prefix + ":" + shardTag(group) + ":members"
}

// shardLeaseKey is the lease of one unit of work: its value is the holder's id.
func shardLeaseKey(prefix, group, unit string) string {
	return prefix + ":" + shardTag(group) + ":lease:" + unit
}
