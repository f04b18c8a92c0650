/** A limit of a key as it stands. */
export interface LimitView {
  name: string;
  algorithm: string;
  limit: number;
  durationSeconds: number;
  remaining: number;
  resetAt: Date;
}

/** What a call costs per limit, e.g. `{ requests: 1, tokens: 1200 }`; `requests` counts 1 unless stated. */
export type Cost = Record<string, number>;

/** The answer to tryConsume, acquire and reserve. A refusal is a value: check `allowed`. */
export interface Decision {
  allowed: boolean;
  /** Left in the limit that blocked (refused) or the first limit asked for. */
  remaining: number;
  /** 0 when allowed; otherwise when to ask again. */
  retryAfterMs: number;
  /** When that limit's window ends (the seed's `expire`). */
  resetAt: Date;
  /** The limit that blocked (`requests`, `tokens`, …); null when allowed. */
  limit: string | null;
  /** Every limit of the key, for a call with a cost. */
  limits: LimitView[] | null;
  reservationId: string | null;
  /** Why a wait was not granted (queue full, deadline cannot be met, …). */
  reason: string | null;
  waitedMs: number | null;
  /** For acquire: the id the wait had in the key's queue (renewals continue it under this id). */
  waitId: string | null;
}

export type Priority = "interactive" | "normal" | "batch";

export interface WaitOptions {
  /** The tenant; only the development default (no key) may name one other than its key's. */
  tenant?: string;
  priority?: Priority;
  /** The longest wait; the key's (or host's) default when absent. Renewed in long polls of at most 25 s. */
  maxWaitMs?: number;
  signal?: AbortSignal;
}

export interface AcquireOptions extends WaitOptions {
  points?: number;
  /** With a cost, a grant is a Reservation. */
  cost?: Cost;
}

export interface SettleResult {
  /** `settled`, `replayed` (settled before), `expired` (too late: stays as estimated) or `unknown`. */
  outcome: "settled" | "replayed" | "expired" | "unknown";
  settlements: { name: string; refunded: number; charged: number; uncharged: number }[];
  limits: LimitView[];
}

export interface LimitsAnswer {
  tenant: string;
  pollMs: number;
  providers: {
    provider: string;
    keyPrefix: string;
    limits: { name: string; algorithm: string | null; points: number; durationSeconds: number; changedAtRunTime: boolean }[];
  }[];
}

/** An answer from the limiter API that is not a decision: 400 (naming `field`), 401, 403, 404, 503. */
export class RateLimiterError extends Error {
  readonly status: number;
  readonly field: string | null;
  readonly body: unknown;
}

/** A reserved estimate; settle it with what the call really cost. */
export class Reservation implements Decision {
  allowed: boolean;
  remaining: number;
  retryAfterMs: number;
  resetAt: Date;
  limit: string | null;
  limits: LimitView[] | null;
  reservationId: string | null;
  reason: string | null;
  waitedMs: number | null;
  /** The opaque reservation id (null when not granted). */
  readonly id: string | null;
  /** Gives back the unused part (or charges an overrun), once however often called. */
  settle(actual: Cost): Promise<SettleResult>;
}

export interface RateLimiterOptions {
  /** A silo's or gateway host's HTTP address, e.g. `http://127.0.0.1:8080`. */
  url: string | URL;
  /** A virtual key (`limiter keys create`); none against a loopback development cluster. */
  apiKey?: string;
  fetch?: typeof globalThis.fetch;
  /** Timeout of calls that do not wait (default 30 s). */
  timeoutMs?: number;
}

export class RateLimiter {
  constructor(options: RateLimiterOptions);
  /** Asks once, as the seed's workers do: `await limiter.tryConsume("openai", "global")`. */
  tryConsume(provider: string, key?: string, pointsOrCost?: number | Cost, options?: { tenant?: string; signal?: AbortSignal }): Promise<Decision>;
  acquire(provider: string, key: string | undefined, options: AcquireOptions & { cost: Cost }): Promise<Reservation | Decision>;
  acquire(provider: string, key?: string, options?: AcquireOptions): Promise<Decision>;
  reserve(provider: string, key: string, estimate: number | Cost, options?: WaitOptions): Promise<Reservation>;
  settle(id: string, actual: Cost, options?: { tenant?: string; signal?: AbortSignal }): Promise<SettleResult>;
  limits(options?: { signal?: AbortSignal }): Promise<LimitsAnswer>;
}
