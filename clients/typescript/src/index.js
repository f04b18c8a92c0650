// The OrleansLimiter HTTP limiter API for Node (>= 20): plain ESM with its types in index.d.ts, so it
// runs as published, with no build step and no runtime dependency beyond the global fetch.

const DEFAULT_KEY = "global";

/** An answer from the limiter API that is not a decision: 400 (naming `field`), 401, 403, 404, 503. */
export class RateLimiterError extends Error {
  constructor(status, message, field, body) {
    super(message);
    this.name = "RateLimiterError";
    this.status = status;
    this.field = field ?? null;
    this.body = body;
  }
}

function toDecision(body) {
  return {
    allowed: body.allowed,
    remaining: body.remaining,
    retryAfterMs: body.retryAfterMs,
    resetAt: new Date(body.resetAt),
    limit: body.limit ?? null,
    limits: body.limits ? body.limits.map(toLimit) : null,
    reservationId: body.reservationId ?? null,
    reason: body.reason ?? null,
    waitedMs: body.waitedMs ?? null,
    waitId: body.waitId ?? null,
  };
}

function toLimit(l) {
  return { ...l, resetAt: new Date(l.resetAt) };
}

function amountOf(pointsOrCost) {
  if (pointsOrCost === undefined || pointsOrCost === null) return {};
  if (typeof pointsOrCost === "number") return { points: pointsOrCost };
  return { cost: pointsOrCost };
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A reservation granted by reserve (or acquire with a cost): settle it with what the call really cost. */
export class Reservation {
  #limiter;
  #tenant;
  #settled = null;

  constructor(limiter, decision, tenant) {
    this.#limiter = limiter;
    this.#tenant = tenant;
    Object.assign(this, decision);
    this.id = decision.reservationId;
  }

  /** Gives back the unused part (or charges an overrun), for the tenant it was made for; once, however often it is called. */
  async settle(actual) {
    if (!this.allowed) throw new Error("Only a granted reservation can be settled.");
    this.#settled ??= this.#limiter.settle(this.id, actual, { tenant: this.#tenant });
    return this.#settled;
  }
}

/**
 * The cluster's shared limits over HTTP. `url` is a silo's or gateway host's HTTP address;
 * `apiKey` a virtual key (`limiter keys create`), or none against a loopback development cluster.
 */
export class RateLimiter {
  #url;
  #apiKey;
  #fetch;
  #timeoutMs;

  constructor({ url, apiKey, fetch: fetchImpl, timeoutMs = 30_000 } = {}) {
    if (!url) throw new TypeError("url is required (a silo's or gateway host's HTTP address)");
    this.#url = String(url).replace(/\/+$/, "");
    this.#apiKey = apiKey ?? null;
    this.#fetch = fetchImpl ?? globalThis.fetch;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Asks once, as the seed's workers do: `await limiter.tryConsume("openai", "global")`. Check
   * `allowed`; a refusal carries `retryAfterMs` and the `limit` that blocked.
   */
  async tryConsume(provider, key = DEFAULT_KEY, pointsOrCost = 1, { tenant, signal } = {}) {
    return toDecision(await this.#post(`/v1/limits/${enc(provider)}/${enc(key)}/consume`, { ...amountOf(pointsOrCost), tenant }, { signal }));
  }

  /**
   * Waits in the key's fair queue for at most `maxWaitMs` (the key's or host's default when absent),
   * renewing the long poll while the server says so. A renewal sends the wait's `waitId`, so the
   * waiter keeps its place; a renewal whose answer was lost (the connection failed, or the host
   * answered 503) is sent again under it, and a grant made meanwhile is told again, never granted
   * twice. With a `cost`, a grant is a Reservation.
   */
  async acquire(provider, key = DEFAULT_KEY, options = {}) {
    const { points, cost, tenant, priority, maxWaitMs, signal } = options;
    const started = Date.now();
    let waitId;
    let lostInARow = 0;
    for (;;) {
      const left = maxWaitMs === undefined ? undefined : Math.max(0, maxWaitMs - (Date.now() - started));
      let body;
      try {
        body = await this.#post(`/v1/limits/${enc(provider)}/${enc(key)}/acquire`,
          { ...amountOf(cost ?? points), tenant, priority, maxWaitMs: left, waitId }, { signal, long: true });
      } catch (error) {
        const lost = error instanceof TypeError || (error instanceof RateLimiterError && error.status === 503);
        const over = left === undefined ? ++lostInARow > 8 : maxWaitMs - (Date.now() - started) <= 0;
        if (!waitId || !lost || signal?.aborted || over) throw error;
        await pause(250, signal);
        continue;
      }
      lostInARow = 0;
      waitId = body.waitId ?? waitId;
      const decision = toDecision(body);
      if (decision.allowed || !body.renew) {
        decision.waitedMs = Date.now() - started;
        return cost && decision.allowed ? new Reservation(this, decision, tenant) : decision;
      }

      const remaining = left === undefined ? Infinity : maxWaitMs - (Date.now() - started);
      if (remaining <= 0) return { ...decision, waitedMs: Date.now() - started };
      await pause(Math.min(body.renewAfterMs ?? 0, remaining), signal);
    }
  }

  /**
   * Reserves an estimate (e.g. prompt tokens plus the most output): asked once, or queued when
   * `maxWaitMs` is given. Check `allowed`; settle a granted one with `reservation.settle(actual)`.
   */
  async reserve(provider, key, estimate, { tenant, priority, maxWaitMs, signal } = {}) {
    if (maxWaitMs !== undefined) {
      const result = await this.acquire(provider, key, { cost: typeof estimate === "number" ? { requests: estimate } : estimate, tenant, priority, maxWaitMs, signal });
      return result instanceof Reservation ? result : new Reservation(this, result, tenant);
    }

    const body = await this.#post(`/v1/limits/${enc(provider)}/${enc(key)}/reserve`, { ...amountOf(estimate), tenant, priority }, { signal });
    return new Reservation(this, toDecision(body), tenant);
  }

  /**
   * Settles reservation `id` with `actual` (per limit); idempotent: a second settle is `replayed`.
   * `tenant` is the one it was reserved for (with a key, the key's own, which is the default).
   */
  async settle(id, actual, { tenant, signal } = {}) {
    const body = await this.#post(`/v1/reservations/${enc(id)}/settle`, { actual, tenant }, { signal });
    return { outcome: body.outcome, settlements: body.settlements, limits: body.limits.map(toLimit) };
  }

  /** Every provider's limits in force, and the caller's tenant. */
  async limits({ signal } = {}) {
    return this.#send("GET", "/v1/limits", undefined, { signal });
  }

  #post(path, body, options) {
    return this.#send("POST", path, body, options);
  }

  async #send(method, path, body, { signal, long = false } = {}) {
    const headers = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    // A long poll waits up to the server's poll (25 s) before answering: no client timeout on it.
    const timeout = long ? null : AbortSignal.timeout(this.#timeoutMs);
    const signals = [signal, timeout].filter(Boolean);
    const response = await this.#fetch(this.#url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals),
    });
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text.length ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }

    if (!response.ok) {
      const message = parsed?.detail ?? parsed?.title ?? `${method} ${path} answered ${response.status}`;
      throw new RateLimiterError(response.status, message, parsed?.field, parsed);
    }

    return parsed;
  }
}

function enc(segment) {
  if (typeof segment !== "string" || segment.length === 0) throw new TypeError("provider, key and reservation id must be non-empty strings");
  return encodeURIComponent(segment);
}
