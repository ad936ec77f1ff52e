// Runs the real @upstash/redis and @upstash/ratelimit SDKs against the tickstash
// gateway's Redis REST endpoint. Driven by gateway/upstash_test.go, which passes
// GATEWAY_URL (…/redis), GATEWAY_TOKEN and KEY_PREFIX (the token's key prefix), and
// NAMESPACE=1 for a namespaced token (a database of its own: KEY_PREFIX is empty, plain
// keys, keyspace-wide commands work, scripts run confined by a Redis ACL user).
// Prints "ok <n> checks" and exits 0, or prints the failed check and exits 1.
import { Redis } from "@upstash/redis";
import { Ratelimit } from "@upstash/ratelimit";
import assert from "node:assert/strict";

const url = process.env.GATEWAY_URL;
const token = process.env.GATEWAY_TOKEN;
const p = process.env.KEY_PREFIX;
const namespaced = process.env.NAMESPACE === "1";
const redis = new Redis({ url, token, retry: false, enableTelemetry: false });
let checks = 0;
const eq = (got, want, what) => { assert.deepStrictEqual(got, want, what); checks++; };

// strings, counters, expiry
eq(await redis.set(`${p}s`, "hello"), "OK", "set");
eq(await redis.get(`${p}s`), "hello", "get");
eq(await redis.set(`${p}obj`, { a: 1, b: "x" }), "OK", "set object");
eq(await redis.get(`${p}obj`), { a: 1, b: "x" }, "get object (JSON round trip)");
eq(await redis.set(`${p}bin`, "é✓ünï"), "OK", "set unicode");
eq(await redis.get(`${p}bin`), "é✓ünï", "get unicode through base64");
eq(await redis.get(`${p}missing`), null, "get missing");
eq(await redis.incr(`${p}n`), 1, "incr");
eq(await redis.incrby(`${p}n`, 41), 42, "incrby");
eq(await redis.expire(`${p}n`, 100), 1, "expire");
const ttl = await redis.ttl(`${p}n`);
assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`); checks++;
eq(await redis.set(`${p}ex`, "v", { ex: 50, nx: true }), "OK", "set ex nx");
eq(await redis.set(`${p}ex`, "w", { nx: true }), null, "set nx on existing");
eq(await redis.mget(`${p}s`, `${p}missing`), ["hello", null], "mget");
eq(await redis.del(`${p}ex`, `${p}missing`), 1, "del");

// hashes
eq(await redis.hset(`${p}h`, { f1: "v1", f2: 2 }), 2, "hset");
eq(await redis.hget(`${p}h`, "f1"), "v1", "hget");
eq(await redis.hgetall(`${p}h`), { f1: "v1", f2: 2 }, "hgetall");
eq(await redis.hincrby(`${p}h`, "f2", 3), 5, "hincrby");
eq(await redis.hlen(`${p}h`), 2, "hlen");

// sorted sets
eq(await redis.zadd(`${p}z`, { score: 1, member: "a" }, { score: 2.5, member: "b" }, { score: 3, member: "c" }), 3, "zadd");
eq(await redis.zscore(`${p}z`, "b"), 2.5, "zscore");
eq(await redis.zrange(`${p}z`, 0, -1), ["a", "b", "c"], "zrange");
eq(await redis.zrange(`${p}z`, 0, 1, { withScores: true }), ["a", 1, "b", 2.5], "zrange withscores");
eq(await redis.zrank(`${p}z`, "c"), 2, "zrank");
eq(await redis.zincrby(`${p}z`, 10, "a"), 11, "zincrby");
eq(await redis.zcard(`${p}z`), 3, "zcard");

// lists and sets
eq(await redis.rpush(`${p}l`, "x", "y"), 2, "rpush");
eq(await redis.lrange(`${p}l`, 0, -1), ["x", "y"], "lrange");
eq(await redis.sadd(`${p}set`, "m1", "m2"), 2, "sadd");
eq(await redis.sismember(`${p}set`, "m1"), 1, "sismember");

// pipeline
const pl = redis.pipeline();
pl.set(`${p}pa`, 1);
pl.incr(`${p}pa`);
pl.get(`${p}pa`);
pl.hset(`${p}ph`, { k: "v" });
pl.hgetall(`${p}ph`);
eq(await pl.exec(), ["OK", 2, 2, 1, { k: "v" }], "pipeline");

// multi-exec
const tx = redis.multi();
tx.set(`${p}ta`, "1");
tx.incrby(`${p}ta`, 4);
tx.zadd(`${p}tz`, { score: 7, member: "m" });
tx.zscore(`${p}tz`, "m");
eq(await tx.exec(), ["OK", 5, 1, 7], "multi-exec");

// booleans travel as "true"/"false" and come back as JSON
eq(await redis.set(`${p}bool`, true), "OK", "set true");
eq(await redis.get(`${p}bool`), true, "get true");
eq(await redis.hset(`${p}bh`, { on: false }), 1, "hset false");
eq(await redis.hget(`${p}bh`, "on"), false, "hget false");

// consumer groups
await redis.xadd(`${p}st`, "*", { f: "v" });
eq(await redis.xgroup(`${p}st`, { type: "CREATE", group: "g", id: "0" }), "OK", "xgroup create");
const rg = await redis.xreadgroup("g", "c", `${p}st`, ">", { count: 10 });
eq(rg[0][0], `${p}st`, "xreadgroup names the stream as the client does");

// refusals arrive as errors, in the SDK's own error type
if (namespaced) {
  eq(await redis.get("elsewhere"), null, "any plain key is the namespace's");
  const keys = (await redis.keys("*")).sort();
  assert.ok(keys.includes("s") && keys.includes("h") && !keys.some((k) => k.includes(":rns:")), `keys ${keys}`); checks++;
  eq(await redis.dbsize(), keys.length, "dbsize");
  // A SCAN call may return part of the matches (the shared Redis holds other keys): a
  // client loops until the cursor is back at 0, as with any Redis.
  const scanned = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, { match: "s*", count: 1000 });
    scanned.push(...batch);
    cursor = String(next);
  } while (cursor !== "0");
  eq([...new Set(scanned)].sort(), keys.filter((k) => k.startsWith("s")), "scan match");
  await assert.rejects(redis.eval("return redis.call('GET', ARGV[1])", [], ["ts:gw:tokens"]), /can't access|NOPERM/); checks++;
} else {
  await assert.rejects(redis.get("elsewhere"), /outside this token's key prefixes/); checks++;
  await assert.rejects(redis.flushall(), /not allowed/); checks++;
  await assert.rejects(redis.keys("*"), /not allowed/); checks++;
}
await assert.rejects(redis.incr(`${p}s`), /not an integer/); checks++;
const pe = redis.pipeline();
pe.set(`${p}pe`, "1");
pe.incr(`${p}s`);
pe.get(`${p}pe`);
const settled = await pe.exec({ keepErrors: true });
eq(settled.map((r) => r.error === undefined), [true, false, true], "pipeline: one error among results");

// @upstash/ratelimit: sliding window and token bucket over EVALSHA/EVAL
for (const [name, limiter] of [
  ["sliding window", Ratelimit.slidingWindow(3, "10 s")],
  ["token bucket", Ratelimit.tokenBucket(1, "10 s", 3)],
  ["fixed window", Ratelimit.fixedWindow(3, "10 s")],
]) {
  const rl = new Ratelimit({ redis, limiter, prefix: `${p}rl:${name.replace(" ", "")}`, timeout: 0, analytics: false });
  // The windows are aligned to the epoch: begin at least 3 s before a boundary, so the
  // five requests cannot straddle one (where the library rightly lets a fourth through:
  // the previous window's count is weighted down, or a new fixed window begins).
  const into = Date.now() % 10000;
  if (into > 7000) await new Promise((resolve) => setTimeout(resolve, 10000 - into + 50));
  const got = [];
  for (let i = 0; i < 5; i++) {
    const r = await rl.limit("user1");
    got.push(r.success);
  }
  eq(got, [true, true, true, false, false], `${name}: 3 allowed then denied`);
  const other = await rl.limit("user2");
  eq(other.success, true, `${name}: another identifier is separate`);
  const r = await rl.limit("user1");
  eq(r.remaining, 0, `${name}: remaining`);
  assert.ok(r.reset > Date.now(), `${name}: reset in the future`); checks++;
}

if (namespaced) {
  eq(await redis.flushdb(), "OK", "flushdb");
  eq(await redis.dbsize(), 0, "dbsize after flushdb");
}
console.log(`ok ${checks} checks`);
