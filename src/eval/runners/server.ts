/**
 * A runner that sends evaluation requests to a serving engine over HTTP: vLLM's OpenAI-compatible
 * `/v1/completions` (the adapter chosen by its LoRA module name as `model`) or llama.cpp's llama-server
 * `/completion` (the adapter chosen per request with its `lora` field, `[{id, scale}]`).
 *
 * Decoding is greedy and follows the other runners: the same prompt text (the server adds BOS when the model
 * wants it, as the runners do), the same token budget and stop strings (the text before the first stop string
 * is kept). Requests run `concurrency` at a time; each has a timeout and is retried with exponential backoff
 * on connection errors, timeouts, 5xx and 429 (a 4xx other than 429 is the request's fault and is not
 * retried). The first request that fails for good cancels the others, and the error is one line naming the
 * URL.
 *
 * Scored tasks need the log-probs of prompt tokens. vLLM returns them (`echo: true` with `logprobs`); the
 * continuation is split from the prompt the same way the token runners do it (`encodeScoreRequest`), with the
 * server's own tokenizer (`/tokenize`), and sent as token ids so that the server scores exactly those tokens.
 * llama-server has no echo (its /completion reports log-probs of generated tokens only), so `cannotScore`
 * says so and evaluation refuses a scored task before any request.
 */
import { MerglotError } from "../../errors.js";
import { escapeControl } from "../../escape.js";
import {
  encodeScoreRequest,
  type EvalRunner,
  type GenerateRequest,
  type GenerateResult,
  type ScoreRequest,
  type TextScoreResult,
} from "./runner.js";

export type ServerKind = "vllm" | "llama-server";
export const SERVER_KINDS: readonly ServerKind[] = ["vllm", "llama-server"];

/** A llama-server LoRA adapter (its index in the server's --lora list, see GET /lora-adapters) and scale. */
export interface ServerLora {
  id: number;
  scale: number;
}

export interface ServerRunnerOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8000 (a path prefix is kept: http://host/proxy/). */
  url: string;
  kind: ServerKind;
  /**
   * vLLM: the served model name to send as `model` (default: the one base model /v1/models lists).
   * Ignored by llama-server, which serves one model.
   */
  model?: string;
  /**
   * The adapter: for vLLM a LoRA module name (`--lora-modules NAME=PATH`), sent as `model`; for llama-server
   * a list of loaded adapters with scales (the others are applied at scale 0, so without it the base model
   * answers).
   */
  lora?: string | readonly ServerLora[];
  /** Requests in flight at once. Default 8. */
  concurrency?: number;
  /** Per-request timeout in milliseconds. Default 300 000. */
  timeoutMs?: number;
  /** Retries after a failed attempt (connection error, timeout, 5xx, 429). Default 3. */
  retries?: number;
  /** The first backoff in milliseconds; it doubles with each retry, up to 30 s. Default 500. */
  backoffMs?: number;
  /**
   * The local copy of the model's decoder. When given, a generation's text is the local decoding of the token
   * ids the server returns (cut at the first stop string), as the in-process runners produce it; a server's
   * own text joins token pieces as they are (llama-server writes " Reden ," where llama.cpp decodes
   * " Reden,"). Without it, the server's text.
   */
  detokenize?: (tokens: readonly number[]) => string;
}

/** A server's JSON answer, not yet trusted. */
type Json = unknown;

/** A failed HTTP attempt: whether another attempt may succeed, and the one-line reason. */
class AttemptError extends Error {
  constructor(
    message: string,
    readonly retriable: boolean,
  ) {
    super(message);
  }
}

const MAX_BACKOFF_MS = 30_000;
/** How much of a server's error body goes into a message. */
const MAX_QUOTE = 200;

function quote(text: string): string {
  const one = escapeControl(text.trim());
  return one.length > MAX_QUOTE ? `${one.slice(0, MAX_QUOTE)}…` : one;
}

/** The error text of an error response: OpenAI's and llama-server's {error: {message}} or the raw body. */
function errorText(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof j.error === "string") return quote(j.error);
    if (typeof j.error?.message === "string") return quote(j.error.message);
    if (typeof j.message === "string") return quote(j.message);
  } catch {
    // Not JSON: quote the body itself.
  }
  return quote(body);
}

/** The system error code behind a failed fetch (undici puts it on `cause`). */
function connectionReason(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  const known: Record<string, string> = {
    ECONNREFUSED: "connection refused (is the server running?)",
    ECONNRESET: "connection reset by the server",
    ENOTFOUND: "host not found",
    EAI_AGAIN: "host name lookup failed",
    EHOSTUNREACH: "host unreachable",
    UND_ERR_SOCKET: "the server closed the connection",
  };
  if (code && known[code]) return known[code]!;
  const msg = typeof cause?.message === "string" ? cause.message : (e as Error).message;
  return `connection failed (${quote(code ? `${code}: ${msg}` : msg)})`;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1)
    throw new MerglotError("server.option", `${name} must be a positive integer, got ${v}`);
  return v;
}

/** Field readers for a server's JSON: a missing or mistyped field is a malformed response naming the field. */
class Reader {
  constructor(private readonly where: string) {}
  fail(what: string): never {
    throw new MerglotError("server.response", `${this.where}: malformed response (${what})`);
  }
  object(v: Json, field: string): Record<string, Json> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(`${field} is not an object`);
    return v as Record<string, Json>;
  }
  array(v: Json, field: string): Json[] {
    if (!Array.isArray(v)) this.fail(`${field} is not an array`);
    return v;
  }
  string(v: Json, field: string): string {
    if (typeof v !== "string") this.fail(`${field} is not a string`);
    return v;
  }
  int(v: Json, field: string): number {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
      this.fail(`${field} is not a non-negative integer`);
    return v;
  }
  number(v: Json, field: string): number {
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(`${field} is not a finite number`);
    return v;
  }
  ints(v: Json, field: string): number[] {
    return this.array(v, field).map((x, i) => this.int(x, `${field}[${i}]`));
  }
}

/** vLLM's `return_tokens_as_token_ids` spelling of a token: "token_id:123". */
function tokenIdOf(s: Json): number | null {
  if (typeof s !== "string") return null;
  const m = /^token_id:(\d+)$/.exec(s);
  return m ? Number(m[1]) : null;
}

export class ServerRunner implements EvalRunner {
  readonly name: string;
  readonly cannotScore: string | null;
  readonly kind: ServerKind;
  /** The base URL without a trailing slash. */
  readonly url: string;
  private readonly model: string | undefined;
  private readonly loras: readonly ServerLora[];
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly detokenize: ((tokens: readonly number[]) => string) | undefined;
  private bosToken: number | null = null;
  private closed = false;
  /** Cancels every request in flight (a failure elsewhere, or close()). */
  private abort = new AbortController();

  private constructor(o: ServerRunnerOptions, model: string | undefined) {
    this.kind = o.kind;
    this.url = o.url.replace(/\/+$/, "");
    this.model = model;
    this.loras = typeof o.lora === "string" || o.lora === undefined ? [] : o.lora;
    this.concurrency = positiveInt("concurrency", o.concurrency ?? 8);
    this.timeoutMs = positiveInt("timeout", o.timeoutMs ?? 300_000);
    const retries = o.retries ?? 3;
    if (!Number.isInteger(retries) || retries < 0)
      throw new MerglotError("server.option", `retries must be a non-negative integer, got ${retries}`);
    this.retries = retries;
    this.backoffMs = o.backoffMs ?? 500;
    this.detokenize = o.detokenize;
    const adapter =
      this.kind === "vllm"
        ? ""
        : this.loras.length
          ? ` + LoRA ${this.loras.map((l) => `${l.id}×${l.scale}`).join(" + ")}`
          : "";
    this.name = `${this.kind} ${this.url}${model ? ` ${model}` : ""}${adapter}`;
    this.cannotScore =
      this.kind === "llama-server"
        ? `llama-server (${this.url}) cannot return: its /completion gives log-probs of generated tokens only`
        : null;
  }

  get bos(): number | null {
    return this.bosToken;
  }

  /**
   * Check the options, reach the server and learn what the requests need: vLLM's model name (and that the
   * LoRA module exists), llama-server's adapters (that the ids exist), and the model's BOS token.
   */
  static async open(o: ServerRunnerOptions): Promise<ServerRunner> {
    if (!SERVER_KINDS.includes(o.kind))
      throw new MerglotError("server.option", `server kind must be vllm or llama-server, got "${o.kind}"`);
    let parsed: URL;
    try {
      parsed = new URL(o.url);
    } catch {
      throw new MerglotError(
        "server.url",
        `${quote(o.url)}: not a URL (expected e.g. http://127.0.0.1:8000)`,
      );
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
      throw new MerglotError("server.url", `${quote(o.url)}: expected an http:// or https:// URL`);
    if (parsed.search || parsed.hash)
      throw new MerglotError("server.url", `${quote(o.url)}: the server URL takes no query or fragment`);
    if (o.kind === "vllm" && o.lora !== undefined && typeof o.lora !== "string")
      throw new MerglotError("server.option", `vLLM chooses an adapter by its LoRA module name, not by id`);
    if (o.kind === "llama-server" && typeof o.lora === "string")
      throw new MerglotError("server.option", `llama-server chooses adapters by id (see GET /lora-adapters)`);
    for (const l of typeof o.lora === "object" ? o.lora : []) {
      if (!Number.isInteger(l.id) || l.id < 0 || !Number.isFinite(l.scale))
        throw new MerglotError(
          "server.option",
          `LoRA ${l.id}: expected a non-negative integer id and a finite scale`,
        );
    }
    const probe = new ServerRunner(o, undefined);
    const model =
      o.kind === "vllm" ? await probe.vllmModel(o.model, o.lora as string | undefined) : undefined;
    const runner = model === undefined ? probe : new ServerRunner(o, model);
    if (o.kind === "llama-server") await runner.checkLlamaLoras();
    runner.bosToken = await runner.probeBos();
    return runner;
  }

  // ------------------------------------------------------------------------------------------- HTTP

  /** One request with timeout and retries; the parsed JSON answer. */
  private async request(path: string, body: Json | undefined): Promise<Json> {
    const url = `${this.url}${path}`;
    const signal = this.abort.signal;
    let last: AttemptError | undefined;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await sleep(Math.min(MAX_BACKOFF_MS, this.backoffMs * 2 ** (attempt - 1)), signal);
      if (signal.aborted) throw new MerglotError("server.cancelled", `${url}: cancelled`);
      try {
        return await this.attempt(url, body, signal);
      } catch (e) {
        if (!(e instanceof AttemptError)) throw e;
        last = e;
        if (!e.retriable) break;
      }
    }
    const tries = last!.retriable ? ` (${this.retries + 1} attempt${this.retries ? "s" : ""})` : "";
    throw new MerglotError("server.request", `${this.kind} ${url}: ${last!.message}${tries}`);
  }

  private async attempt(url: string, body: Json | undefined, cancel: AbortSignal): Promise<Json> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method: body === undefined ? "GET" : "POST",
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any([cancel, timeout]),
      });
      text = await res.text();
    } catch (e) {
      if (cancel.aborted) throw new MerglotError("server.cancelled", `${url}: cancelled`);
      if (timeout.aborted)
        throw new AttemptError(`no answer within ${this.timeoutMs / 1000} s (--timeout)`, true);
      throw new AttemptError(connectionReason(e), true);
    }
    if (!res.ok) {
      const retriable = res.status >= 500 || res.status === 429;
      throw new AttemptError(`HTTP ${res.status}: ${errorText(text) || res.statusText}`, retriable);
    }
    try {
      return JSON.parse(text) as Json;
    } catch {
      throw new AttemptError(`malformed response (not JSON: ${quote(text.slice(0, 60))})`, false);
    }
  }

  /** Run `work` over `items`, `concurrency` at a time, in input order; the first failure cancels the rest. */
  private async pool<T, R>(items: readonly T[], work: (item: T, index: number) => Promise<R>): Promise<R[]> {
    this.checkOpen();
    const out = new Array<R>(items.length);
    let next = 0;
    let failure: unknown;
    const lane = async () => {
      while (next < items.length && failure === undefined) {
        const i = next++;
        try {
          out[i] = await work(items[i]!, i);
        } catch (e) {
          if (failure === undefined) {
            failure = e;
            this.abort.abort();
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, items.length) }, lane));
    if (failure !== undefined) {
      this.abort = new AbortController();
      throw failure;
    }
    return out;
  }

  private checkOpen(): void {
    if (this.closed) throw new MerglotError("server.closed", `${this.name}: the runner is closed`);
  }

  // ------------------------------------------------------------------------------------------- probes

  /** vLLM: the model name to send (the LoRA module when given), checked against /v1/models. */
  private async vllmModel(model: string | undefined, lora: string | undefined): Promise<string> {
    const where = `vllm ${this.url}/v1/models`;
    const r: Reader = new Reader(where);
    const list = r.array(r.object(await this.request("/v1/models", undefined), "the answer").data, "data");
    const entries = list.map((e, i) => {
      const o = r.object(e, `data[${i}]`);
      return { id: r.string(o.id, `data[${i}].id`), parent: typeof o.parent === "string" ? o.parent : null };
    });
    const names = entries.map((e) => e.id).join(", ");
    const want = lora ?? model;
    if (want !== undefined) {
      if (!entries.some((e) => e.id === want))
        throw new MerglotError(
          "server.model",
          `${where}: the server has no ${lora !== undefined ? "LoRA module" : "model"} "${quote(want)}" (it serves ${quote(names)})`,
        );
      return want;
    }
    const bases = entries.filter((e) => e.parent === null);
    if (bases.length !== 1)
      throw new MerglotError(
        "server.model",
        `${where}: the server serves ${quote(names) || "no model"}; name one with --server-model`,
      );
    return bases[0]!.id;
  }

  /** llama-server: every requested adapter id is loaded (GET /lora-adapters). */
  private async checkLlamaLoras(): Promise<void> {
    if (this.loras.length === 0) return;
    const where = `llama-server ${this.url}/lora-adapters`;
    const r: Reader = new Reader(where);
    const list = r.array(await this.request("/lora-adapters", undefined), "the answer");
    const ids = new Set(list.map((a, i) => r.int(r.object(a, `[${i}]`).id, `[${i}].id`)));
    for (const l of this.loras) {
      if (!ids.has(l.id))
        throw new MerglotError(
          "server.lora",
          `${where}: no LoRA adapter with id ${l.id} (the server has ${ids.size ? [...ids].join(", ") : "none"}; start it with --lora FILE.gguf)`,
        );
    }
  }

  /** Token ids of `text` by the server's tokenizer: special-token text parsed, BOS added only if asked. */
  async tokenize(text: string, addSpecial = false): Promise<number[]> {
    if (this.kind === "llama-server") {
      const r: Reader = new Reader(`llama-server ${this.url}/tokenize`);
      const a = await this.request("/tokenize", {
        content: text,
        add_special: addSpecial,
        parse_special: true,
      });
      return r.ints(r.object(a, "the answer").tokens, "tokens");
    }
    const r: Reader = new Reader(`vllm ${this.url}/tokenize`);
    const a = await this.request("/tokenize", {
      model: this.model,
      prompt: text,
      add_special_tokens: addSpecial,
    });
    return r.ints(r.object(a, "the answer").tokens, "tokens");
  }

  /** The BOS token the server puts before a text prompt, found as the token runners find it. */
  private async probeBos(): Promise<number | null> {
    const [withSpecial, without] = await Promise.all([this.tokenize("a", true), this.tokenize("a", false)]);
    return withSpecial.length > without.length && withSpecial[0] !== without[0] ? withSpecial[0]! : null;
  }

  // ------------------------------------------------------------------------------------------- generate

  async generate(requests: readonly GenerateRequest[]): Promise<GenerateResult[]> {
    for (const r of requests) {
      if (!Number.isInteger(r.maxTokens) || r.maxTokens < 0)
        throw new MerglotError(
          "eval.request",
          `maxTokens must be a non-negative integer, got ${r.maxTokens}`,
        );
    }
    return this.pool(requests, (r) =>
      this.kind === "llama-server" ? this.llamaGenerate(r) : this.vllmGenerate(r),
    );
  }

  /** The text before the first stop string (servers cut there too; this also covers a partial cut). */
  private static cut(text: string, stops: readonly string[]): { text: string; stopped: boolean } {
    let at = -1;
    for (const s of stops) {
      if (s.length === 0) continue;
      const i = text.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    return at < 0 ? { text, stopped: false } : { text: text.slice(0, at), stopped: true };
  }

  private async llamaGenerate(q: GenerateRequest): Promise<GenerateResult> {
    const stop = (q.stop ?? []).filter((s) => s.length > 0);
    if (q.maxTokens === 0) {
      const promptTokens = (await this.tokenize(q.prompt)).length + (this.bos === null ? 0 : 1);
      return { text: "", tokens: [], finishReason: "length", promptTokens };
    }
    const where = `llama-server ${this.url}/completion`;
    const a = await this.request("/completion", {
      prompt: q.prompt,
      n_predict: q.maxTokens,
      // Greedy: only the top-1 candidate survives the sampler chain.
      samplers: ["top_k"],
      top_k: 1,
      temperature: 0,
      stop,
      // Reusing a slot's cache can change logits (batch sizes differ); results must not depend on history.
      cache_prompt: false,
      return_tokens: true,
      lora: this.loras.map((l) => ({ id: l.id, scale: l.scale })),
    });
    const r: Reader = new Reader(where);
    const o = r.object(a, "the answer");
    const content = r.string(o.content, "content");
    const tokens = r.ints(o.tokens, "tokens");
    const stopType = r.string(o.stop_type, "stop_type");
    const promptTokens = r.int(o.tokens_evaluated, "tokens_evaluated");
    const finish = { eos: "eos", limit: "length", word: "stop" } as const;
    if (!(stopType in finish)) r.fail(`stop_type "${quote(stopType)}" is not eos, limit or word`);
    // At stop_type eos the returned ids end with the end-of-generation token (llama-server records each sampled
    // token before it checks for the end); the other runners leave it out of the generation.
    const generated = stopType === "eos" ? tokens.slice(0, -1) : tokens;
    const { text, stopped } = ServerRunner.cut(this.detokenize ? this.detokenize(generated) : content, stop);
    return {
      text,
      tokens: generated,
      finishReason: stopped ? "stop" : finish[stopType as keyof typeof finish],
      promptTokens,
    };
  }

  private async vllmGenerate(q: GenerateRequest): Promise<GenerateResult> {
    const stop = (q.stop ?? []).filter((s) => s.length > 0);
    if (q.maxTokens === 0) {
      const promptTokens = (await this.tokenize(q.prompt, true)).length;
      return { text: "", tokens: [], finishReason: "length", promptTokens };
    }
    const where = `vllm ${this.url}/v1/completions`;
    const a = await this.request("/v1/completions", {
      model: this.model,
      prompt: q.prompt,
      max_tokens: q.maxTokens,
      temperature: 0,
      ...(stop.length ? { stop } : {}),
      // The generated token ids, as "token_id:N" strings in logprobs.tokens.
      logprobs: 1,
      return_tokens_as_token_ids: true,
    });
    const r: Reader = new Reader(where);
    const o = r.object(a, "the answer");
    const choice = r.object(r.array(o.choices, "choices")[0], "choices[0]");
    const content = r.string(choice.text, "choices[0].text");
    const finishReason = r.string(choice.finish_reason, "choices[0].finish_reason");
    const logprobs = r.object(choice.logprobs, "choices[0].logprobs");
    const tokens = r.array(logprobs.tokens, "choices[0].logprobs.tokens").map((t, i) => {
      const id = tokenIdOf(t);
      if (id === null) r.fail(`choices[0].logprobs.tokens[${i}] is not "token_id:N"`);
      return id;
    });
    const usage = r.object(o.usage, "usage");
    const promptTokens = r.int(usage.prompt_tokens, "usage.prompt_tokens");
    const { text, stopped } = ServerRunner.cut(this.detokenize ? this.detokenize(tokens) : content, stop);
    let finish: GenerateResult["finishReason"];
    if (finishReason === "length") finish = "length";
    else if (finishReason === "stop")
      // vLLM: stop_reason is the matched stop string, or null at the end-of-sequence token.
      finish = typeof choice.stop_reason === "string" ? "stop" : "eos";
    else r.fail(`choices[0].finish_reason "${quote(finishReason)}" is not stop or length`);
    return { text, tokens, finishReason: stopped ? "stop" : finish, promptTokens };
  }

  // ------------------------------------------------------------------------------------------- score

  async logProbs(requests: readonly ScoreRequest[]): Promise<TextScoreResult[]> {
    if (this.cannotScore)
      throw new MerglotError("eval.runner", `scoring needs prompt log-probs, which ${this.cannotScore}`);
    // Tokenize through the server, once per distinct text, then split each request exactly as the token
    // runners do; a continuation tokenized on its own is only needed when the boundary merges tokens.
    const known = new Map<string, number[]>();
    const fetchAll = async (texts: Iterable<string>) => {
      const todo = [...new Set(texts)].filter((t) => !known.has(t));
      const got = await this.pool(todo, (t) => this.tokenize(t));
      todo.forEach((t, i) => known.set(t, got[i]!));
    };
    const lookup = (missing: Set<string>) => (text: string) => {
      const t = known.get(text);
      if (t === undefined) {
        missing.add(text);
        return [];
      }
      return t;
    };
    const firstPass = new Set<string>();
    for (const r of requests) {
      const trimmed = r.prompt.replace(/\s+$/u, "");
      firstPass
        .add(r.prompt)
        .add(trimmed)
        .add(trimmed + r.prompt.slice(trimmed.length) + r.continuation);
    }
    await fetchAll(firstPass);
    const missing = new Set<string>();
    requests.forEach((r) => encodeScoreRequest(r, lookup(missing), this.bos));
    await fetchAll(missing);
    const encoded = requests.map((r) => encodeScoreRequest(r, lookup(new Set()), this.bos));
    const bos = this.bos === null ? 0 : 1;
    return this.pool(encoded, async (req, i): Promise<TextScoreResult> => {
      const s = await this.vllmScore(req.context, req.continuation);
      return { ...s, promptTokens: known.get(requests[i]!.prompt)!.length + bos };
    });
  }

  /** vLLM: log-probs of the prompt tokens (echo), read at the continuation's positions. */
  private async vllmScore(
    context: readonly number[],
    continuation: readonly number[],
  ): Promise<Omit<TextScoreResult, "promptTokens">> {
    const ids = [...context, ...continuation];
    const where = `vllm ${this.url}/v1/completions`;
    const a = await this.request("/v1/completions", {
      model: this.model,
      prompt: ids,
      // One generated token (ignored): vLLM needs max_tokens ≥ 1.
      max_tokens: 1,
      temperature: 0,
      echo: true,
      logprobs: 1,
      return_tokens_as_token_ids: true,
    });
    const r: Reader = new Reader(where);
    const choice = r.object(r.array(r.object(a, "the answer").choices, "choices")[0], "choices[0]");
    const lp = r.object(choice.logprobs, "choices[0].logprobs");
    const tokens = r.array(lp.tokens, "choices[0].logprobs.tokens");
    const values = r.array(lp.token_logprobs, "choices[0].logprobs.token_logprobs");
    const tops = r.array(lp.top_logprobs, "choices[0].logprobs.top_logprobs");
    if (tokens.length < ids.length || values.length < ids.length || tops.length < ids.length)
      r.fail(
        `the echoed prompt has ${Math.min(tokens.length, values.length, tops.length)} of ${ids.length} tokens`,
      );
    const tokenLogProbs: number[] = [];
    let isGreedy = true;
    for (let i = context.length; i < ids.length; i++) {
      if (tokenIdOf(tokens[i]) !== ids[i])
        r.fail(`echoed token ${i} is ${quote(String(tokens[i]))}, not token_id:${ids[i]}`);
      const v = r.number(values[i], `choices[0].logprobs.token_logprobs[${i}]`);
      tokenLogProbs.push(v);
      const top = r.object(tops[i], `choices[0].logprobs.top_logprobs[${i}]`);
      // The continuation token is the greedy choice unless some token is more likely (ties count as greedy).
      for (const [k, x] of Object.entries(top))
        if (r.number(x, `top_logprobs[${i}].${quote(k)}`) > v) isGreedy = false;
    }
    return {
      logProb: tokenLogProbs.reduce((s, x) => s + x, 0),
      tokenLogProbs,
      tokens: [...continuation],
      isGreedy,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
  }
}

/** Parse llama-server adapters as the CLI spells them: "0", "0,1", "1:0.5". */
export function parseServerLoras(spec: string): ServerLora[] {
  return spec.split(",").map((part) => {
    const m = /^\s*(\d+)\s*(?::\s*([-+0-9.eE]+)\s*)?$/.exec(part);
    const scale = m?.[2] === undefined ? 1 : Number(m[2]);
    if (!m || !Number.isFinite(scale))
      throw new MerglotError(
        "cli.flag",
        `--server-lora: expected ID or ID:SCALE (comma-separated), got "${quote(part)}"`,
      );
    return { id: Number(m[1]), scale };
  });
}
