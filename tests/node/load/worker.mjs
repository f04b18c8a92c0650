// One load worker for scripts/gateway-load.sh: `concurrency` lanes calling a chat API through the
// official SDK for `seconds` (lane 0 streams), each retrying after a 429 as the answer says. Prints
// one JSON line: what it saw.
//   node worker.mjs <openai|anthropic> <baseURL> <apiKey> <seconds> <concurrency> [maxWaitSeconds]
// An apiKey of "-" is read from LIMITER_KEY (docker-compose's node-worker: the key stays out of its command).
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const [sdk, baseURL, apiKeyArg, secondsArg, concurrencyArg, maxWaitArg] = process.argv.slice(2);
const apiKey = apiKeyArg === "-" ? process.env.LIMITER_KEY : apiKeyArg;
const seconds = Number(secondsArg ?? 60);
const concurrency = Number(concurrencyArg ?? 8);
// Asks the gateway to wait in the fair queue rather than answer 429 (ignored by a provider).
const defaultHeaders = maxWaitArg ? { "x-limiter-max-wait": String(maxWaitArg) } : {};
const deadline = Date.now() + seconds * 1000;
const prompt = "Summarise in a few words why a shared quota needs one counter for every worker. ".repeat(4);
const seen = { sdk, firstCallAt: null, endedAt: null, ok: 0, streamed: 0, rateLimited: 0, errors: 0, inputTokens: 0, outputTokens: 0, lastError: null };

const openai = sdk === "openai" ? new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000, defaultHeaders }) : null;
const anthropic = sdk === "anthropic" ? new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 120_000, defaultHeaders }) : null;

async function call(stream) {
  const messages = [{ role: "user", content: prompt }];
  if (openai) {
    if (!stream) {
      const reply = await openai.chat.completions.create({ model: "gpt-load", messages, max_tokens: 150 });
      return [reply.usage.prompt_tokens, reply.usage.completion_tokens];
    }
    const chunks = await openai.chat.completions.create({ model: "gpt-load", messages, max_tokens: 150, stream: true, stream_options: { include_usage: true } });
    let usage = null;
    for await (const chunk of chunks) usage = chunk.usage ?? usage;
    return [usage?.prompt_tokens ?? 0, usage?.completion_tokens ?? 0];
  }
  if (!stream) {
    const reply = await anthropic.messages.create({ model: "claude-load", max_tokens: 150, messages });
    return [reply.usage.input_tokens, reply.usage.output_tokens];
  }
  const final = await anthropic.messages.stream({ model: "claude-load", max_tokens: 150, messages }).finalMessage();
  return [final.usage.input_tokens, final.usage.output_tokens];
}

function retryAfterMs(error) {
  const headers = error.headers;
  const get = (name) => (typeof headers?.get === "function" ? headers.get(name) : headers?.[name]);
  const ms = Number(get("retry-after-ms"));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const s = Number(get("retry-after"));
  return Number.isFinite(s) && s > 0 ? s * 1000 : 1000;
}

async function lane(index) {
  seen.firstCallAt ??= Date.now();
  while (Date.now() < deadline) {
    try {
      const [input, output] = await call(index === 0);
      seen.ok++;
      if (index === 0) seen.streamed++;
      seen.inputTokens += input;
      seen.outputTokens += output;
    } catch (error) {
      if (error?.status === 429) {
        seen.rateLimited++;
        const pause = Math.min(retryAfterMs(error), Math.max(0, deadline - Date.now()));
        await new Promise((r) => setTimeout(r, pause));
      } else {
        seen.errors++;
        seen.lastError = String(error?.message ?? error).slice(0, 200);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

await Promise.all(Array.from({ length: concurrency }, (_, i) => lane(i)));
seen.endedAt = Date.now();
console.log(JSON.stringify(seen));
