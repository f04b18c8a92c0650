import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { RateLimiter, RateLimiterError, Reservation } from "../src/index.js";
import { startCluster } from "./cluster.js";

let cluster;

before(async () => {
  cluster = await startCluster({
    settings: {
      // The seed's configuration (src/Silo/appsettings.json) for openai; a one-second window to watch a refill.
      "RateLimiting:Providers:fast:Points": 3,
      "RateLimiting:Providers:fast:Duration": 1,
      "RateLimiting:Providers:tok:Points": 100,
      "RateLimiting:Providers:tok:Duration": 60,
      "RateLimiting:Providers:tok:Limits:tokens:Points": 10000,
      "RateLimiting:Providers:tok:Limits:tokens:Duration": 60,
      // team-a may spend 1,000 of the key's 10,000 tokens.
      "RateLimiting:Providers:tenq:Points": 100,
      "RateLimiting:Providers:tenq:Duration": 60,
      "RateLimiting:Providers:tenq:Limits:tokens:Points": 10000,
      "RateLimiting:Providers:tenq:Limits:tokens:Duration": 60,
      "RateLimiting:Providers:tenq:Tenants:team-a:Limits:tokens:Points": 1000,
      "RateLimiting:Providers:tenq:Tenants:team-a:Limits:tokens:Duration": 60,
      // Two points per 4 s and a 1 s long poll: a wait for the next window is several calls.
      "RateLimiting:Providers:renew:Points": 2,
      "RateLimiting:Providers:renew:Duration": 4,
      "Gateway:ApiPollSeconds": 1,
    },
  });
});

after(async () => {
  await cluster?.stop();
});

test("tryConsume(\"openai\", \"global\") keeps the seed's hash: points and expire", async () => {
  const limiter = new RateLimiter({ url: cluster.url });
  const first = await limiter.tryConsume("openai", "global");
  assert.equal(first.allowed, true);
  assert.equal(first.remaining, 49_999);
  assert.equal((await limiter.tryConsume("openai", "global")).remaining, 49_998);
  const third = await limiter.tryConsume("openai", "global");

  const hash = cluster.hgetall("ratelimit:openai:global");
  assert.deepEqual(Object.keys(hash).sort(), ["expire", "points"]);
  assert.equal(hash.points, "49997");
  assert.equal(Number(hash.expire), third.resetAt.getTime());
  const ttl = Number(cluster.redis("PTTL", "ratelimit:openai:global"));
  assert.ok(ttl > 0 && ttl <= 60_000, `PTTL ${ttl}`);
});

test("a window refills to its points when it ends, as the seed's counter does", async () => {
  const limiter = new RateLimiter({ url: cluster.url });
  const key = `refill-${Date.now()}`;
  for (const left of [2, 1, 0]) assert.equal((await limiter.tryConsume("fast", key)).remaining, left);
  const refused = await limiter.tryConsume("fast", key);
  assert.equal(refused.allowed, false);
  assert.equal(refused.limit, "requests");
  assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 1000, `retryAfterMs ${refused.retryAfterMs}`);
  assert.equal(cluster.hgetall(`ratelimit:fast:${key}`).points, "0");

  // Real time is what is under test here: the window's end is the store's, one second after its start.
  await new Promise((r) => setTimeout(r, refused.retryAfterMs + 50));
  const refilled = await limiter.tryConsume("fast", key);
  assert.equal(refilled.allowed, true);
  assert.equal(refilled.remaining, 2);
  assert.equal(cluster.hgetall(`ratelimit:fast:${key}`).points, "2");
});

test("a cost pays every limit, and a refusal names the limit that blocked", async () => {
  const limiter = new RateLimiter({ url: cluster.url });
  const key = `cost-${Date.now()}`;
  const granted = await limiter.tryConsume("tok", key, { requests: 1, tokens: 9000 });
  assert.equal(granted.allowed, true);
  assert.deepEqual(granted.limits.map((l) => l.name), ["requests", "tokens"]);
  const refused = await limiter.tryConsume("tok", key, { tokens: 1200 });
  assert.equal(refused.allowed, false);
  assert.equal(refused.limit, "tokens");
  assert.equal(refused.remaining, 1000);
  const hash = cluster.hgetall(`ratelimit:tok:${key}`);
  assert.equal(hash.points, "99");
  assert.equal(hash["tokens:points"], "1000");
});

test("reserve then settle gives back the unused part once", async () => {
  const limiter = new RateLimiter({ url: cluster.url });
  const key = `rsv-${Date.now()}`;
  const reservation = await limiter.reserve("tok", key, { tokens: 3000 });
  assert.ok(reservation instanceof Reservation);
  assert.equal(reservation.allowed, true);
  assert.match(reservation.id, /^rsv_/);
  assert.equal(cluster.hgetall(`ratelimit:tok:${key}`)["tokens:points"], "7000");

  const settled = await reservation.settle({ tokens: 1200 });
  assert.equal(settled.outcome, "settled");
  assert.equal(settled.settlements.find((s) => s.name === "tokens").refunded, 1800);
  assert.equal(cluster.hgetall(`ratelimit:tok:${key}`)["tokens:points"], "8800");
  assert.equal((await limiter.settle(reservation.id, { tokens: 0 })).outcome, "replayed");
  assert.equal(cluster.hgetall(`ratelimit:tok:${key}`)["tokens:points"], "8800");
});

test("a tenant's own cap refuses naming it, and a reservation settles the tenant's count with the key's", async () => {
  const limiter = new RateLimiter({ url: cluster.url });
  const key = `ten-${Date.now()}`;
  const reservation = await limiter.reserve("tenq", key, { tokens: 800 }, { tenant: "team-a" });
  assert.equal(reservation.allowed, true);
  let hash = cluster.hgetall(`ratelimit:tenq:${key}`);
  assert.equal(hash["team-a/tokens:points"], "200");
  assert.equal(hash["tokens:points"], "9200");

  const settled = await reservation.settle({ tokens: 300 });
  assert.equal(settled.outcome, "settled");
  hash = cluster.hgetall(`ratelimit:tenq:${key}`);
  assert.equal(hash["team-a/tokens:points"], "700");
  assert.equal(hash["tokens:points"], "9700");

  const capped = await limiter.tryConsume("tenq", key, { tokens: 800 }, { tenant: "team-a" });
  assert.equal(capped.allowed, false);
  assert.equal(capped.limit, "team-a/tokens");
  const other = await limiter.tryConsume("tenq", key, { tokens: 800 }, { tenant: "team-b" });
  assert.equal(other.allowed, true);
  assert.equal(cluster.hgetall(`ratelimit:tenq:${key}`)["tokens:points"], "8900");
});

test("acquire waits in the queue: granted, or refused at once when the window cannot reopen in time", async () => {
  const limiter = new RateLimiter({ url: cluster.url });
  const key = `acq-${Date.now()}`;
  const granted = await limiter.acquire("tok", key, { points: 100, tenant: "team-a", priority: "interactive", maxWaitMs: 2000 });
  assert.equal(granted.allowed, true);
  const refused = await limiter.acquire("tok", key, { maxWaitMs: 300 });
  assert.equal(refused.allowed, false);
  assert.ok(refused.retryAfterMs > 300);

  const waited = await limiter.acquire("fast", `acq-${Date.now()}`, { points: 3, maxWaitMs: 3000 });
  assert.equal(waited.allowed, true);
  const reservation = await limiter.acquire("tok", `acq2-${Date.now()}`, { cost: { tokens: 500 }, maxWaitMs: 1000 });
  assert.ok(reservation instanceof Reservation);
  assert.equal((await reservation.settle({ tokens: 500 })).outcome, "settled");
});

test("acquire renews under its waitId, and a grant whose answer was lost is told again, not granted twice", async () => {
  const key = `renew-${Date.now()}`;
  const calls = [];
  let dropped = 0;
  // Loses the answer of the first grant, as a connection failing after the host answered would.
  const lossy = async (url, init) => {
    calls.push(JSON.parse(init.body));
    const response = await fetch(url, init);
    const text = await response.text();
    if (dropped === 0 && url.endsWith("/acquire") && JSON.parse(text).allowed === true) {
      dropped++;
      throw new TypeError("fetch failed");
    }
    return new Response(text, { status: response.status, headers: response.headers });
  };
  const limiter = new RateLimiter({ url: cluster.url, fetch: lossy });
  assert.equal((await limiter.tryConsume("renew", key, 2)).allowed, true);

  const granted = await limiter.acquire("renew", key, { points: 1, maxWaitMs: 10_000 });
  assert.equal(granted.allowed, true);
  assert.equal(dropped, 1);
  assert.match(granted.waitId, /^wt_[0-9a-f]{32}$/);
  // The first call made the wait; every later one continued it under the same id (the lost grant's too).
  assert.ok(calls.length >= 4, `${calls.length} calls`);
  assert.equal(calls[1].waitId, undefined);
  assert.ok(calls.slice(2).every((c) => c.waitId === granted.waitId), JSON.stringify(calls.map((c) => c.waitId)));
  // One point spent in the new window: the grant told again spent nothing.
  assert.equal(cluster.hgetall(`ratelimit:renew:${key}`).points, "1");
});

test("bad input is a RateLimiterError naming the field", async () => {
  const limiter = new RateLimiter({ url: cluster.url });
  await assert.rejects(limiter.tryConsume("openai", "global", 0), (e) => e instanceof RateLimiterError && e.status === 400 && e.field === "points");
  await assert.rejects(limiter.tryConsume("tok", "k", { tokens: -1 }), (e) => e.status === 400 && e.field === "cost.tokens");
  await assert.rejects(limiter.tryConsume("mistral", "global"), (e) => e.status === 404 && e.field === "provider");
  await assert.rejects(limiter.acquire("openai", "global", { priority: "urgent" }), (e) => e.status === 400 && e.field === "priority");
  assert.equal((await limiter.limits()).tenant, "default");
});
