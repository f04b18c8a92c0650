// The gateway driven by the official SDKs (openai, @anthropic-ai/sdk), streaming and not, on a silo's
// HTTP port in front of the provider simulator: the ledger in Redis is what the calls reported.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startCluster, startSimulator, limiterCli } from "../../clients/typescript/test/cluster.js";

const TOKENS = 1_000_000;
let simulator;
let cluster;
let key;

before(async () => {
  simulator = await startSimulator({
    RequestsPerMinute: 1_000_000,
    TokensPerMinute: 1_000_000_000,
    InputTokensPerMinute: 1_000_000_000,
    OutputTokensPerMinute: 1_000_000_000,
    LatencyMilliseconds: 1,
    OutputTokens: 30,
    RequireApiKey: true,
  });
  cluster = await startCluster({
    settings: {
      "RateLimiting:Providers:sdko:Points": 1000,
      "RateLimiting:Providers:sdko:Duration": 600,
      "RateLimiting:Providers:sdko:Limits:tokens:Points": TOKENS,
      "RateLimiting:Providers:sdko:Limits:tokens:Duration": 600,
      "RateLimiting:Providers:sdka:Points": 1000,
      "RateLimiting:Providers:sdka:Duration": 600,
      "RateLimiting:Providers:sdka:Limits:input-tokens:Points": TOKENS,
      "RateLimiting:Providers:sdka:Limits:input-tokens:Duration": 600,
      "RateLimiting:Providers:sdka:Limits:output-tokens:Points": TOKENS,
      "RateLimiting:Providers:sdka:Limits:output-tokens:Duration": 600,
      "Gateway:Providers:sdko:Upstream": simulator.url,
      "Gateway:Providers:sdko:Api": "OpenAI",
      "Gateway:Providers:sdko:ApiKey": "sk-real-openai-never-shown",
      "Gateway:Providers:sdka:Upstream": simulator.url,
      "Gateway:Providers:sdka:Api": "Anthropic",
      "Gateway:Providers:sdka:ApiKey": "sk-ant-real-never-shown",
    },
  });
  key = limiterCli(cluster, "keys", "create", "--tenant", "node-sdk", "--timeout", "60").trim();
  // The silo's copy of the key table is refreshed within a second: wait until the key is known.
  const openai = new OpenAI({ baseURL: `${cluster.url}/sdko/v1`, apiKey: key, maxRetries: 0 });
  const deadline = Date.now() + 10_000;
  for (;;) {
    // The simulator has no /v1/models: any answer but 401 means the gateway knows the key.
    const status = await openai.models.list().then(() => 200, (error) => error.status);
    if (status !== 401) break;
    if (Date.now() > deadline) throw new Error("the gateway did not learn the new key within 10 s");
    await new Promise((r) => setTimeout(r, 200));
  }
});

after(async () => {
  await cluster?.stop();
  simulator?.stop();
});

// What a limit of the key holds now; a limit not used yet holds all it has.
const ledger = (provider, field) => Number(cluster.hgetall(`ratelimit:${provider}:global`)[field] ?? TOKENS);

// The gateway settles a call once its answer is complete, so the ledger reaches what the call reported
// a moment after the caller has the answer: what the limit holds once it does, or after 5 s.
async function settled(provider, field, expected) {
  const deadline = Date.now() + 5_000;
  let value = ledger(provider, field);
  while (value !== expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    value = ledger(provider, field);
  }
  return value;
}

const messages = [{ role: "user", content: "tell the limiter how many tokens this prompt has" }];

test("openai: a chat completion, plain and streamed, is charged exactly the usage it reported", async () => {
  const openai = new OpenAI({ baseURL: `${cluster.url}/sdko/v1`, apiKey: key, maxRetries: 0 });
  const before = ledger("sdko", "tokens:points");
  const plain = await openai.chat.completions.create({ model: "gpt-test", messages, max_tokens: 200 });
  assert.equal(plain.usage.completion_tokens, 30);
  assert.equal(await settled("sdko", "tokens:points", before - plain.usage.total_tokens), before - plain.usage.total_tokens);

  const stream = await openai.chat.completions.create({ model: "gpt-test", messages, max_tokens: 200, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    usage = chunk.usage ?? usage;
  }
  assert.equal(text.split(" ").length, 30);
  assert.equal(usage.total_tokens, plain.usage.total_tokens);
  assert.equal(await settled("sdko", "tokens:points", before - 2 * plain.usage.total_tokens), before - 2 * plain.usage.total_tokens);

  // A caller that did not ask for usage gets none, and is charged what the stream reported all the same.
  const quiet = await openai.chat.completions.create({ model: "gpt-test", messages, max_tokens: 200, stream: true });
  let chunks = 0;
  for await (const chunk of quiet) {
    chunks++;
    assert.equal(chunk.usage ?? null, null);
  }
  assert.ok(chunks > 2);
  assert.equal(await settled("sdko", "tokens:points", before - 3 * plain.usage.total_tokens), before - 3 * plain.usage.total_tokens);
});

test("anthropic: a message, plain and streamed, is charged its input and output tokens exactly", async () => {
  const anthropic = new Anthropic({ baseURL: `${cluster.url}/sdka`, apiKey: key, maxRetries: 0 });
  const [inputBefore, outputBefore] = [ledger("sdka", "input-tokens:points"), ledger("sdka", "output-tokens:points")];
  const plain = await anthropic.messages.create({ model: "claude-test", max_tokens: 200, messages });
  assert.equal(plain.usage.output_tokens, 30);
  assert.equal(await settled("sdka", "input-tokens:points", inputBefore - plain.usage.input_tokens), inputBefore - plain.usage.input_tokens);
  assert.equal(await settled("sdka", "output-tokens:points", outputBefore - 30), outputBefore - 30);

  const stream = anthropic.messages.stream({ model: "claude-test", max_tokens: 200, messages });
  let text = "";
  stream.on("text", (t) => (text += t));
  const final = await stream.finalMessage();
  assert.equal(text.split(" ").length, 30);
  assert.equal(final.usage.input_tokens, plain.usage.input_tokens);
  assert.equal(final.usage.output_tokens, 30);
  assert.equal(await settled("sdka", "input-tokens:points", inputBefore - 2 * plain.usage.input_tokens), inputBefore - 2 * plain.usage.input_tokens);
  assert.equal(await settled("sdka", "output-tokens:points", outputBefore - 60), outputBefore - 60);
});

test("a wrong key is refused 401 in the provider's format, and no call reaches the provider", async () => {
  const counts = (stats) => [stats.openai.served, stats.openai.unauthorized, stats.anthropic.served, stats.anthropic.unauthorized];
  const served = counts(await simulator.stats());
  const openai = new OpenAI({ baseURL: `${cluster.url}/sdko/v1`, apiKey: "olk_not-a-key", maxRetries: 0 });
  await assert.rejects(openai.chat.completions.create({ model: "gpt-test", messages }), (e) => e.status === 401);
  const anthropic = new Anthropic({ baseURL: `${cluster.url}/sdka`, apiKey: "olk_not-a-key", maxRetries: 0 });
  await assert.rejects(anthropic.messages.create({ model: "claude-test", max_tokens: 10, messages }), (e) => e.status === 401);
  assert.deepEqual(counts(await simulator.stats()), served);
});
