// A real limiter cluster for the Node tests: a redis-server and a silo process (src/Silo as built by
// `dotnet build -c Release`), each in a process group of its own on 127.0.0.1, killed at the end.
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export const siloDll = process.env.LIMITER_SILO_DLL ?? path.join(repo, "src/Silo/bin/Release/net10.0/OrleansLimiter.Silo.dll");
export const simulatorDll = path.join(repo, "tools/ProviderSimulator/bin/Release/net10.0/OrleansLimiter.ProviderSimulator.dll");
export const cliDll = path.join(repo, "src/Cli/bin/Release/net10.0/OrleansLimiter.Cli.dll");

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function startGroup(command, args, options) {
  const child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const output = [];
  const keep = (chunk) => {
    output.push(chunk.toString());
    if (output.length > 400) output.shift();
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  return { child, output: () => output.join("") };
}

function killGroup(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

async function waitFor(check, what, timeoutMs, proc) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && proc.child.exitCode !== null) throw new Error(`${what}: the process exited (${proc.child.exitCode}):\n${proc.output()}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms:\n${proc?.output() ?? ""}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts redis-server and `silos` silo processes; `settings` are configuration keys (`A:B` or `A__B`). */
export async function startCluster({ settings = {}, silos = 1 } = {}) {
  if (!existsSync(siloDll)) throw new Error(`${siloDll} is missing: run dotnet build OrleansLimiter.sln -c Release first`);
  const redisPort = await freePort();
  const redis = startGroup("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {});
  const cluster = {
    redisPort,
    redisUrl: `redis://127.0.0.1:${redisPort}`,
    processes: [redis],
    silos: [],
    redis: (...args) => execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(redisPort), ...args.map(String)], { encoding: "utf8" }).trim(),
    hgetall(key) {
      const lines = this.redis("HGETALL", key).split("\n").filter((l) => l.length);
      const hash = {};
      for (let i = 0; i + 1 < lines.length; i += 2) hash[lines[i]] = lines[i + 1];
      return hash;
    },
    async stop() {
      for (const p of this.processes.reverse()) killGroup(p.child);
    },
  };
  try {
    await waitFor(async () => cluster.redis("PING") === "PONG", "redis-server answering", 10_000, redis);
    const clusterId = `node-${Math.random().toString(16).slice(2, 10)}`;
    cluster.clusterId = clusterId;
    for (let i = 0; i < silos; i++) {
      const [http, siloPort, gatewayPort] = [await freePort(), await freePort(), await freePort()];
      const env = {
        ...process.env,
        ASPNETCORE_URLS: `http://127.0.0.1:${http}`,
        REDIS_URL: cluster.redisUrl,
        Orleans__ClusterId: clusterId,
        Orleans__ServiceId: clusterId,
        Orleans__SiloPort: String(siloPort),
        Orleans__GatewayPort: String(gatewayPort),
        DOTNET_gcServer: "0",
        Logging__LogLevel__Default: "Warning",
      };
      for (const [k, v] of Object.entries(settings)) env[k.replaceAll(":", "__")] = String(v);
      const silo = startGroup("dotnet", [siloDll], { env, cwd: path.dirname(siloDll) });
      cluster.processes.push(silo);
      cluster.silos.push({ url: `http://127.0.0.1:${http}`, process: silo });
    }

    for (const silo of cluster.silos) {
      await waitFor(async () => (await fetch(`${silo.url}/health`)).ok, `silo ${silo.url} /health`, 120_000, silo.process);
    }
  } catch (error) {
    await cluster.stop();
    throw error;
  }

  cluster.url = cluster.silos[0].url;
  return cluster;
}

/** Runs the `limiter` CLI against the cluster; answers its standard output. */
export function limiterCli(cluster, ...args) {
  const env = { ...process.env, REDIS_URL: cluster.redisUrl, Orleans__ClusterId: cluster.clusterId, Orleans__ServiceId: cluster.clusterId };
  return execFileSync("dotnet", [cliDll, ...args], { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Starts the provider simulator (`settings`: keys of its Simulator section) on a free loopback port. */
export async function startSimulator(settings = {}) {
  const port = await freePort();
  const args = [simulatorDll, "--urls", `http://127.0.0.1:${port}`, ...Object.entries(settings).map(([k, v]) => `--Simulator:${k}=${v}`)];
  const proc = startGroup("dotnet", args, {});
  const simulator = {
    url: `http://127.0.0.1:${port}`,
    stop: () => killGroup(proc.child),
    stats: async () => (await fetch(`http://127.0.0.1:${port}/stats`)).json(),
  };
  try {
    await waitFor(async () => (await fetch(`${simulator.url}/stats`)).ok, "simulator /stats", 60_000, proc);
  } catch (error) {
    simulator.stop();
    throw error;
  }
  return simulator;
}
