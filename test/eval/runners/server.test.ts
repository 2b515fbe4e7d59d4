/**
 * The server runner against real HTTP servers on 127.0.0.1 that replay exchanges:
 * - vLLM: exchanges built by hand from vLLM's documented API (none can run here; the fixture says so); the
 *   expected scores are sums of the fixture's numbers worked out by hand.
 * - Faults, for real: a closed port, a 500, a 429 that clears, a 400, malformed JSON, a stalled server, a
 *   server that fails in the middle of an evaluation (nothing written), and a scored task on llama-server.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Example } from "../../../src/data/example.js";
import { evaluate } from "../../../src/eval/evaluate.js";
import { parseServerLoras, ServerRunner } from "../../../src/eval/runners/server.js";
import { closedPort, readExchanges, replayServer, type ReplayServer } from "../../helpers/replay-server.js";

const FIXTURES = join(process.cwd(), "test/fixtures/servers");
const CLI = join(process.cwd(), "dist/src/cli/main.js");
const root = mkdtempSync(join(tmpdir(), "merglot-server-"));
const servers: ReplayServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
  rmSync(root, { recursive: true, force: true });
});

async function vllm(): Promise<ReplayServer> {
  const s = await replayServer(readExchanges(join(FIXTURES, "vllm-completions.json")));
  servers.push(s);
  return s;
}

const fast = { retries: 2, backoffMs: 1, timeoutMs: 5000 };

describe("vLLM (fixtures from the documented API)", () => {
  test("open: the LoRA module is checked against /v1/models and BOS is learned from /tokenize", async () => {
    const s = await vllm();
    const r = await ServerRunner.open({ url: s.url, kind: "vllm", lora: "merged-ties" });
    assert.equal(r.bos, 128000);
    assert.equal(r.cannotScore, null);
    assert.equal(r.name, `vllm ${s.url} merged-ties`);
    await assert.rejects(
      ServerRunner.open({ url: s.url, kind: "vllm", lora: "merged-dare" }),
      (e: Error) =>
        e.message ===
        `vllm ${s.url}/v1/models: the server has no LoRA module "merged-dare" (it serves meta-llama/Llama-3.1-8B, merged-ties)`,
    );
  });

  test("generate: greedy request, text cut at the stop string, finish reasons and token counts", async () => {
    const s = await vllm();
    const r = await ServerRunner.open({ url: s.url, kind: "vllm", lora: "merged-ties" });
    const g = await r.generate([
      { prompt: "Review: great film\nSentiment:", maxTokens: 4, stop: ["\n"] },
      { prompt: "Review: dull\nSentiment:", maxTokens: 4, stop: ["\n"] },
    ]);
    assert.deepEqual(g, [
      { text: " positive", tokens: [6928, 198], finishReason: "stop", promptTokens: 9 },
      { text: " negative", tokens: [8389], finishReason: "eos", promptTokens: 7 },
    ]);
  });

  test("score: echo log-probs summed over the continuation's positions; greedy unless a top token beats it", async () => {
    const s = await vllm();
    const r = await ServerRunner.open({ url: s.url, kind: "vllm", lora: "merged-ties" });
    const out = await r.logProbs([
      { prompt: "Q: 2+2=", continuation: " 4" },
      { prompt: "Q: 2+2=", continuation: " five" },
    ]);
    // Context [BOS, 48, 25, 220, 17, 28]: " 4" is position 6 (-0.75, the top token there); " five" is
    // positions 6 and 7 (-4.0 − 0.125), and token 605 (-0.75) beats it at position 6.
    assert.deepEqual(out, [
      { logProb: -0.75, tokenLogProbs: [-0.75], tokens: [605], isGreedy: true, promptTokens: 6 },
      { logProb: -4.125, tokenLogProbs: [-4, -0.125], tokens: [4330, 68], isGreedy: false, promptTokens: 6 },
    ]);
    // The prompt was tokenized once for both continuations.
    assert.equal(s.hits.get("/tokenize"), 2 + 3);
  });
});

describe("faults: one clear line naming the URL, after the retries", () => {
  test("connection refused", async () => {
    const port = await closedPort();
    await assert.rejects(
      ServerRunner.open({ url: `http://127.0.0.1:${port}`, kind: "llama-server", ...fast }),
      (e: Error) =>
        e.message ===
        `llama-server http://127.0.0.1:${port}/tokenize: connection refused (is the server running?) (3 attempts)`,
    );
  });

  test("a 500 is retried, then reported with the server's message", async () => {
    const s = await vllm();
    s.override = (req, res) => {
      if (req.path !== "/v1/completions") return false;
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "CUDA out of memory\n(tried 2 GiB)" } }));
      return true;
    };
    const r = await ServerRunner.open({ url: s.url, kind: "vllm", lora: "merged-ties", ...fast });
    await assert.rejects(
      r.generate([{ prompt: "Review: dull\nSentiment:", maxTokens: 4, stop: ["\n"] }]),
      (e: Error) =>
        e.message ===
        `vllm ${s.url}/v1/completions: HTTP 500: CUDA out of memory\\n(tried 2 GiB) (3 attempts)`,
    );
    assert.equal(s.hits.get("/v1/completions"), 3);
  });

  test("a 429 that clears is retried until it succeeds", async () => {
    const s = await vllm();
    s.override = (req, res) => {
      if (req.path !== "/v1/completions" || req.seen >= 2) return false;
      res.writeHead(429, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "too many requests" } }));
      return true;
    };
    const r = await ServerRunner.open({ url: s.url, kind: "vllm", lora: "merged-ties", ...fast });
    const [g] = await r.generate([{ prompt: "Review: dull\nSentiment:", maxTokens: 4, stop: ["\n"] }]);
    assert.equal(g!.text, " negative");
    assert.equal(s.hits.get("/v1/completions"), 3);
  });

  test("a 400 is the request's fault: not retried", async () => {
    const s = await vllm();
    s.override = (req, res) => {
      if (req.path !== "/v1/completions") return false;
      res.writeHead(400, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ object: "error", message: "This model's maximum context length is 8192 tokens" }),
      );
      return true;
    };
    const r = await ServerRunner.open({ url: s.url, kind: "vllm", lora: "merged-ties", ...fast });
    await assert.rejects(
      r.generate([{ prompt: "Review: dull\nSentiment:", maxTokens: 4 }]),
      (e: Error) =>
        e.message ===
        `vllm ${s.url}/v1/completions: HTTP 400: This model's maximum context length is 8192 tokens`,
    );
    assert.equal(s.hits.get("/v1/completions"), 1);
  });

  test("malformed JSON, and JSON of the wrong shape", async () => {
    const s = await vllm();
    let shape = false;
    s.override = (req, res) => {
      if (req.path !== "/v1/completions") return false;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(shape ? JSON.stringify({ choices: [{ text: 42 }] }) : '{"choices": [');
      return true;
    };
    const r = await ServerRunner.open({ url: s.url, kind: "vllm", lora: "merged-ties", ...fast });
    const q = [{ prompt: "Review: dull\nSentiment:", maxTokens: 4 }];
    await assert.rejects(
      r.generate(q),
      (e: Error) =>
        e.message === `vllm ${s.url}/v1/completions: malformed response (not JSON: {"choices": [)`,
    );
    shape = true;
    await assert.rejects(
      r.generate(q),
      (e: Error) =>
        e.message === `vllm ${s.url}/v1/completions: malformed response (choices[0].text is not a string)`,
    );
  });

  test("a stalled server: each attempt times out, then one line", async () => {
    const s = await vllm();
    s.override = (req) => req.path === "/v1/completions"; // never answers
    const r = await ServerRunner.open({
      url: s.url,
      kind: "vllm",
      lora: "merged-ties",
      ...fast,
      timeoutMs: 200,
    });
    await assert.rejects(
      r.generate([{ prompt: "Review: dull\nSentiment:", maxTokens: 4 }]),
      (e: Error) =>
        e.message === `vllm ${s.url}/v1/completions: no answer within 0.2 s (--timeout) (3 attempts)`,
    );
    assert.equal(s.hits.get("/v1/completions"), 3);
  });

  test("a dropped connection is retried", async () => {
    const s = await vllm();
    s.override = (req, res) => {
      if (req.path !== "/v1/completions" || req.seen >= 1) return false;
      res.socket?.destroy();
      return true;
    };
    const r = await ServerRunner.open({ url: s.url, kind: "vllm", lora: "merged-ties", ...fast });
    const [g] = await r.generate([{ prompt: "Review: dull\nSentiment:", maxTokens: 4, stop: ["\n"] }]);
    assert.equal(g!.text, " negative");
  });

  test("bad URLs and options are refused before any request", async () => {
    await assert.rejects(ServerRunner.open({ url: "localhost:8000", kind: "vllm" }), /expected an http/);
    await assert.rejects(ServerRunner.open({ url: "not a url", kind: "vllm" }), /not a URL/);
    await assert.rejects(
      ServerRunner.open({ url: "http://127.0.0.1:1", kind: "llama-server", lora: "merged" }),
      /llama-server chooses adapters by id/,
    );
    assert.deepEqual(parseServerLoras("0,1:0.5"), [
      { id: 0, scale: 1 },
      { id: 1, scale: 0.5 },
    ]);
    assert.throws(() => parseServerLoras("x"), /--server-lora: expected ID or ID:SCALE/);
  });
});

describe("evaluation through a server", () => {
  const sentiment: Example[] = [
    { id: "a", lang: "en", text: "lovely", label: "positive" },
    { id: "b", lang: "en", text: "awful", label: "negative" },
  ];

  test("llama-server: text decoded locally from the served ids; the end-of-generation id is not generated", async () => {
    // What the real llama-server (the node-llama-cpp bundle's) answered in the integration check: its content
    // joins token pieces (" Reden ,,"), llama.cpp's detokenizer cleans the space; at stop_type eos its `tokens`
    // end with the end-of-generation id (it records each sampled token before checking for the end).
    const PIECES: Record<number, string> = { 7: " Reden", 8: " ,", 9: ",", 2: "<|end|>" };
    const local = (ids: readonly number[]) =>
      ids
        .map((i) => PIECES[i]!)
        .join("")
        .replace(/ ,/g, ",");
    const s = await replayServer([]);
    servers.push(s);
    s.override = (req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const body = req.body as { add_special?: boolean; stop?: string[] } | undefined;
      if (req.path === "/tokenize") res.end(JSON.stringify({ tokens: body?.add_special ? [1, 5] : [5] }));
      else if (body?.stop?.length)
        res.end(
          JSON.stringify({ content: " Reden ,", tokens: [7, 8, 9], stop_type: "word", tokens_evaluated: 4 }),
        );
      else
        res.end(
          JSON.stringify({
            content: " Reden ,,",
            tokens: [7, 8, 9, 2],
            stop_type: "eos",
            tokens_evaluated: 4,
          }),
        );
      return true;
    };
    const withLocal = await ServerRunner.open({ url: s.url, kind: "llama-server", detokenize: local });
    const [eos, word] = await withLocal.generate([
      { prompt: "p", maxTokens: 8 },
      { prompt: "p", maxTokens: 8, stop: [",,"] },
    ]);
    assert.deepEqual(eos, { text: " Reden,,", tokens: [7, 8, 9], finishReason: "eos", promptTokens: 4 });
    assert.deepEqual(word, { text: " Reden", tokens: [7, 8, 9], finishReason: "stop", promptTokens: 4 });
    await withLocal.close();
    // without a local decoder: the server's own text, still without the end-of-generation id
    const plain = await ServerRunner.open({ url: s.url, kind: "llama-server" });
    const [raw] = await plain.generate([{ prompt: "p", maxTokens: 8 }]);
    assert.deepEqual(raw, { text: " Reden ,,", tokens: [7, 8, 9], finishReason: "eos", promptTokens: 4 });
    await plain.close();
  });

  test("a scored task on llama-server is refused before any request, naming the alternatives", async () => {
    const s = await replayServer([]);
    servers.push(s);
    s.override = (req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          tokens: req.body && (req.body as { add_special?: boolean }).add_special ? [1, 5] : [5],
        }),
      );
      return true;
    };
    const r = await ServerRunner.open({ url: s.url, kind: "llama-server" });
    const out = join(root, "refused");
    await assert.rejects(
      evaluate({
        model: join(process.cwd(), "data/demo/model"),
        task: "sentiment",
        lang: "en",
        examples: sentiment,
        runner: r,
        outDir: out,
      }),
      (e: Error) =>
        e.message ===
        `task sentiment is scored by the log-probabilities of its choices, which llama-server (${s.url}) cannot return: ` +
          `its /completion gives log-probs of generated tokens only; use the llamacpp or engine runner ` +
          `(--runner llamacpp|engine), or --mode generate (task sentiment has generation settings)`,
    );
    assert.equal(s.hits.get("/completion"), undefined);
    assert.equal(existsSync(out), false);
  });

  test("a server that fails in the middle of an evaluation: one line, no output folder", async () => {
    const s = await vllm();
    // Valid completions for the first three requests, then a 500 for every other one.
    s.override = (req, res) => {
      if (req.path !== "/v1/completions") return false;
      if (req.seen < 3) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            choices: [
              {
                index: 0,
                text: " A summary",
                logprobs: {
                  tokens: ["token_id:5", "token_id:6"],
                  token_logprobs: [-1, -1],
                  top_logprobs: [{}, {}],
                },
                finish_reason: "length",
                stop_reason: null,
              },
            ],
            usage: { prompt_tokens: 30, completion_tokens: 2, total_tokens: 32 },
          }),
        );
        return true;
      }
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "engine died" } }));
      return true;
    };
    const r = await ServerRunner.open({
      url: s.url,
      kind: "vllm",
      lora: "merged-ties",
      ...fast,
      concurrency: 2,
    });
    const out = join(root, "midway");
    const examples: Example[] = Array.from({ length: 8 }, (_, i) => ({
      id: `d${i}`,
      lang: "en",
      document: `Document number ${i}.`,
      summary: `Summary ${i}`,
    }));
    await assert.rejects(
      evaluate({
        model: join(process.cwd(), "data/demo/model"),
        task: "summarization",
        lang: "en",
        examples,
        runner: r,
        batch: 4,
        outDir: out,
      }),
      (e: Error) => e.message === `vllm ${s.url}/v1/completions: HTTP 500: engine died (3 attempts)`,
    );
    assert.equal(existsSync(out), false);
    await r.close();
  });

  test("CLI: a server that is down is one line and exit 1, nothing written", async () => {
    const port = await closedPort();
    const out = join(root, "down");
    const r = spawnSync(
      process.execPath,
      [
        CLI,
        "eval",
        ...["--model", join(process.cwd(), "data/demo/model"), "--task", "summarization", "--lang", "en"],
        ...["--data", join(process.cwd(), "data/demo/tasks/summarization/en/test.jsonl"), "--limit", "2"],
        ...[
          "--runner",
          "server",
          "--server-url",
          `http://127.0.0.1:${port}`,
          "--server-kind",
          "llama-server",
        ],
        ...["--retries", "1", "-o", out],
      ],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      `merglot: llama-server http://127.0.0.1:${port}/tokenize: connection refused (is the server running?) (2 attempts)\n`,
    );
    assert.equal(existsSync(out), false);
  });

  test("CLI: server flags without --runner server, and --adapter with it, are refused", () => {
    const base = [
      CLI,
      "eval",
      ...["--model", join(process.cwd(), "data/demo/model"), "--task", "summarization", "--lang", "en"],
      ...["--data", join(process.cwd(), "data/demo/tasks/summarization/en/test.jsonl")],
    ];
    let r = spawnSync(process.execPath, [...base, "--server-url", "http://127.0.0.1:1"], {
      encoding: "utf8",
    });
    assert.equal(r.stderr, "merglot: --server-url needs --runner server\n");
    r = spawnSync(
      process.execPath,
      [...base, "--runner", "server", "--server-url", "http://127.0.0.1:1", "--server-kind", "tgi"],
      { encoding: "utf8" },
    );
    assert.equal(r.stderr, 'merglot: --server-kind: expected vllm or llama-server, got "tgi"\n');
    r = spawnSync(
      process.execPath,
      [
        ...base,
        ...["--runner", "server", "--server-url", "http://127.0.0.1:1", "--server-kind", "vllm"],
        ...["--adapter", join(process.cwd(), "data/demo/adapters/en")],
      ],
      { encoding: "utf8" },
    );
    assert.equal(
      r.stderr,
      "merglot: --adapter: the server applies the adapter; load it there and name it with --server-lora\n",
    );
  });
});
