#!/usr/bin/env node
// The llama-server integration check (README "Evaluation on a serving engine"): builds llama-server from the
// llama.cpp source node-llama-cpp ships (build.sh, cached), starts it on 127.0.0.1 with the demo base model and
// a demo LoRA adapter as GGUFs, evaluates a generation task through merglot's server runner and through the
// in-process llama.cpp runner, and fails unless the greedy generations are identical. Prints both throughputs.
//
//   npm run build && node scripts/llama-server/check.mjs [--task summarization] [--lang en] [--limit 24]
//       [--concurrency 4] [--threads 1] [--record DIR]
//
// --record DIR saves every request/response pair the server runner exchanged with the real server (through a
// recording proxy) as DIR/<task>-<lang>.json: the unit tests replay them (test/eval/runners/server.test.ts).
// The server is stopped by its PID at the end, also on failure or Ctrl-C.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { performance } from "node:perf_hooks";

const { fetch } = globalThis;

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const dist = (p) => import(join(repo, "dist/src", p));
const { values: args } = parseArgs({
  options: {
    task: { type: "string", default: "summarization" },
    lang: { type: "string", default: "en" },
    limit: { type: "string", default: "24" },
    concurrency: { type: "string", default: "4" },
    threads: { type: "string", default: "1" },
    record: { type: "string" },
  },
});
const limit = Number(args.limit);
const concurrency = Number(args.concurrency);
const threads = Number(args.threads);

const { convertModelToGguf, convertAdapterToGguf } = await dist("formats/convert.js");
const { loadExamples } = await dist("data/load.js");
const { loadTask } = await dist("tasks/load.js");
const { evaluate } = await dist("eval/evaluate.js");
const { ServerRunner } = await dist("eval/runners/server.js");
const { LlamaCppRunner } = await dist("eval/runners/llamacpp.js");
const { localDetokenizer } = await dist("eval/open-runner.js");

function log(msg) {
  process.stderr.write(`check: ${msg}\n`);
}

// 1. The server binary (cached build).
let t0 = performance.now();
const build = spawnSync(join(repo, "scripts/llama-server/build.sh"), {
  encoding: "utf8",
  stdio: ["ignore", "pipe", "inherit"],
});
if (build.status !== 0) {
  log("build.sh failed");
  process.exit(1);
}
const binary = build.stdout.trim().split("\n").pop();
log(`llama-server: ${binary} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

// 2. The demo model and a LoRA adapter as GGUFs (F32: the same weights for both sides).
const work = mkdtempSync(join(tmpdir(), "merglot-llama-server-"));
const base = join(work, "base.gguf");
const lora = join(work, "lora-en.gguf");
convertModelToGguf(join(repo, "data/demo/model"), base, { dtype: "F32" });
// data/demo/adapters belong to the merge demo's smaller model; this adapter is a seeded random LoRA on the demo
// model's attention and MLP (the test suite's writer), enough to move its generations.
const { writeTinyAdapter } = await import(join(repo, "dist/test/parity/tiny-llama.js"));
const demo = {
  modelType: "llama",
  hidden: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: 176,
  vocab: 1758,
  tie: true,
};
const modules = [0, 1].flatMap((l) =>
  ["self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"].map((m) => ({
    module: `model.layers.${l}.${m}`,
    rank: 4,
    alpha: 8,
  })),
);
writeTinyAdapter(join(work, "adapter"), demo, { seed: 7, modules, base: join(repo, "data/demo/model") });
convertAdapterToGguf(join(work, "adapter"), lora, { base: join(repo, "data/demo/model") });

// 3. The server on a free port of 127.0.0.1.
async function freePort() {
  const s = net.createServer();
  await new Promise((ok) => s.listen(0, "127.0.0.1", ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}
const port = await freePort();
const ctxPerSlot = 512;
// Parity settings: no flash attention and an F32 KV cache, as the llama.cpp runner's exact mode.
const server = spawn(
  binary,
  [
    ...["-m", base, "--lora", lora, "--host", "127.0.0.1", "--port", String(port)],
    ...["-c", String(ctxPerSlot * concurrency), "-np", String(concurrency), "-t", String(threads)],
    ...["-fa", "off", "-ctk", "f32", "-ctv", "f32", "--no-warmup"],
  ],
  { stdio: ["ignore", "ignore", "pipe"] },
);
let serverLog = "";
server.stderr.on("data", (d) => {
  serverLog = (serverLog + d).slice(-4000);
});
const stop = () => {
  if (server.exitCode === null) server.kill("SIGTERM");
};
process.on("SIGINT", () => {
  stop();
  process.exit(130);
});
process.on("exit", stop);

const url = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  if (server.exitCode !== null) {
    log(`llama-server exited with ${server.exitCode}:\n${serverLog}`);
    process.exit(1);
  }
  const ok = await fetch(`${url}/health`)
    .then((r) => r.ok)
    .catch(() => false);
  if (ok) break;
  if (i > 600) {
    log("llama-server did not become healthy within 60 s");
    process.exit(1);
  }
  await sleep(100);
}
log(`llama-server is up at ${url} (pid ${server.pid})`);

// 4. A recording proxy in front of it, when asked to record.
const exchanges = [];
let target = url;
let proxy;
if (args.record) {
  proxy = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const r = await fetch(`${url}${req.url}`, {
        method: req.method,
        headers: body ? { "content-type": "application/json" } : {},
        body: body || undefined,
      });
      const text = await r.text();
      exchanges.push({
        method: req.method,
        path: req.url,
        request: body ? JSON.parse(body) : null,
        status: r.status,
        response: JSON.parse(text),
      });
      res.writeHead(r.status, { "content-type": "application/json" });
      res.end(text);
    });
  });
  await new Promise((ok) => proxy.listen(0, "127.0.0.1", ok));
  target = `http://127.0.0.1:${proxy.address().port}`;
}

// 5. The same task through both runners.
const task = loadTask(args.task);
const data = join(repo, "data/demo/tasks", args.task, args.lang, "test.jsonl");
const { examples } = await loadExamples({
  path: data,
  task: task.definition.task,
  lang: args.lang,
  limit,
  seed: 0,
});
const common = { model: base, task, lang: args.lang, examples, dataSource: data, batch: concurrency };

let failed = false;
try {
  const remote = await ServerRunner.open({
    url: target,
    kind: "llama-server",
    lora: [{ id: 0, scale: 1 }],
    concurrency,
    // generations decoded locally from the served token ids, as `merglot eval --runner server` does
    detokenize: await localDetokenizer(base),
  });
  t0 = performance.now();
  const viaServer = await evaluate({ ...common, runner: remote });
  const serverSeconds = (performance.now() - t0) / 1000;
  await remote.close();

  const local = await LlamaCppRunner.open({
    model: base,
    loras: [{ path: lora }],
    exact: true,
    sequences: concurrency,
    threads,
  });
  t0 = performance.now();
  const inProcess = await evaluate({ ...common, runner: local });
  const localSeconds = (performance.now() - t0) / 1000;
  await local.close();

  const differ = viaServer.samples.filter((s, i) => s.generation !== inProcess.samples[i].generation);
  for (const s of differ.slice(0, 3)) {
    const other = inProcess.samples.find((x) => x.id === s.id);
    log(`${s.id}: server ${JSON.stringify(s.generation)} vs runner ${JSON.stringify(other.generation)}`);
  }
  const generated = viaServer.samples.filter((s) => s.generation !== "").length;
  log(
    `${generated} of ${examples.length} generations non-empty; tokens ${viaServer.tokens} (server) vs ${inProcess.tokens} (runner)`,
  );
  const rate = (n, s) => `${(n / s).toFixed(2)} examples/s, ${(viaServer.tokens / s).toFixed(0)} tokens/s`;
  console.log(
    JSON.stringify(
      {
        task: args.task,
        lang: args.lang,
        examples: examples.length,
        identical: differ.length === 0,
        differing: differ.length,
        metrics_server: viaServer.metrics,
        metrics_runner: inProcess.metrics,
        server: { seconds: +serverSeconds.toFixed(2), rate: rate(examples.length, serverSeconds) },
        runner: { seconds: +localSeconds.toFixed(2), rate: rate(examples.length, localSeconds) },
        concurrency,
        threads,
      },
      null,
      2,
    ),
  );
  if (differ.length > 0 || generated === 0) failed = true;
  if (args.record) {
    mkdirSync(args.record, { recursive: true });
    const file = join(args.record, `${args.task}-${args.lang}.json`);
    // The proxy's URL is not part of a request; the server's model path is, and it is a temp path.
    writeFileSync(
      file,
      JSON.stringify({ recorded_from: "llama-server (scripts/llama-server/check.mjs)", exchanges }, null, 1) +
        "\n",
    );
    log(`recorded ${exchanges.length} exchanges into ${file}`);
  }
} catch (e) {
  log(e instanceof Error ? e.message : String(e));
  failed = true;
} finally {
  proxy?.close();
  stop();
  rmSync(work, { recursive: true, force: true });
}
log(failed ? "FAIL" : "PASS: greedy generations identical");
process.exit(failed ? 1 : 0);
