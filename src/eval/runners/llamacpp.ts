/**
 * A runner over llama.cpp (through node-llama-cpp, prebuilt binaries, never downloading or compiling
 * anything): a base-model GGUF plus zero or more LoRA GGUFs with their scales. CPU by default; `gpu` picks
 * node-llama-cpp's CUDA or Vulkan binary when it is installed (README "GPUs for the llama.cpp runner").
 *
 * Requests are spread over the context's parallel sequences, which llama.cpp decodes in shared batches. Each
 * sequence keeps its KV cache between requests and only re-evaluates what differs from its previous request,
 * so that multiple-choice questions (one prompt, several continuations) pay for the prompt about once.
 *
 * `exact: true` is parity mode: no flash attention and an F32 KV cache (llama.cpp's defaults, flash
 * attention and an F16 cache, move log-probs by up to ~1e-2), and log-softmax computed in float64 from the
 * full logits row. Without it, only the logits needed are fetched and llama.cpp's float32 normaliser is used.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename } from "node:path";
// Types only: node-llama-cpp is an optional peer dependency, imported at first use (backends.ts).
import type {
  ControlledEvaluateInputItem,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaModel,
  Token,
} from "node-llama-cpp";
import { importBackend } from "../../backends.js";
import { MerglotError } from "../../errors.js";
import { GgufReader } from "../../formats/gguf.js";
import {
  argmax,
  logSoftmax,
  mapPool,
  TokenRunner,
  type ScoreResult,
  type TokenGenerateRequest,
  type TokenGenerateResult,
  type TokenScoreRequest,
} from "./runner.js";

export interface LlamaCppLora {
  /** A LoRA GGUF (see `convertAdapterToGguf`). */
  path: string;
  /** Multiplier on the adapter's own scale. Default 1. */
  scale?: number;
}

/** Which llama.cpp backend: the CPU ("off", the default), CUDA, Vulkan, or the best one installed ("auto"). */
export type LlamaGpu = "auto" | "cuda" | "vulkan" | "off";
export const LLAMA_GPUS: readonly LlamaGpu[] = ["auto", "cuda", "vulkan", "off"];

export interface LlamaCppRunnerOptions {
  /** Base-model GGUF. */
  model: string;
  loras?: readonly LlamaCppLora[];
  /** Parity mode (see the module comment). Default false. */
  exact?: boolean;
  /** Tokens per sequence. Default: the model's training context, at most 2048. */
  contextSize?: number;
  /** Parallel sequences (requests decoded together). Default 4. */
  sequences?: number;
  /**
   * CPU threads for llama.cpp. Default: one less than the cores, at least 1. llama.cpp's workers spin while
   * they wait, so its own default (at least 4) oversubscribes small machines, and on a loaded machine extra
   * threads can cost several times their gain (bench/llamacpp.ts prints both).
   */
  threads?: number;
  /**
   * The llama.cpp backend (node-llama-cpp's `getLlama({ gpu })`). Default "off": the CPU binary, all layers on
   * the CPU. Otherwise every layer that fits goes to the GPU ("auto" falls back to the CPU when no GPU
   * binary works; "cuda" and "vulkan" fail with the install step when theirs is missing).
   */
  gpu?: LlamaGpu;
}

/** Rows of the logits: the token embedding's row count (the exporter pads the vocabulary to it). */
function ggufVocabSize(path: string): number {
  const r = GgufReader.open(path);
  try {
    const emb = r.get("token_embd.weight");
    if (!emb) throw new MerglotError("llamacpp.model", `${path}: no token_embd.weight tensor`);
    return emb.shape[0]!;
  } finally {
    r.close();
  }
}

/**
 * node-llama-cpp's `Llama["gpu"]`, spelled out: public declarations must not name node-llama-cpp's types, since
 * a consumer without the optional peer dependency compiles against them too (the pack test checks this).
 */
export type LlamaGpuBackend = false | "cuda" | "vulkan" | "metal";

/** One binding per backend for the process (node-llama-cpp loads each binary once). */
const shared = new Map<LlamaGpu, Promise<Llama>>();
/** llama.cpp's last error log line: its exceptions often say only "failed", the log says why. */
let lastLlamaError: string | undefined;

function reason(e: unknown): string {
  const msg = (e as Error).message ?? String(e);
  return lastLlamaError && !msg.includes(lastLlamaError) ? `${msg}: ${lastLlamaError}` : msg;
}

/** node-llama-cpp's module, loaded at first use; a clear MerglotError when it is not installed. */
function nodeLlamaCpp(): Promise<typeof import("node-llama-cpp")> {
  return importBackend<typeof import("node-llama-cpp")>("node-llama-cpp");
}

/**
 * The decoder of a GGUF model alone (its vocabulary, no weights): token ids → text exactly as the llama.cpp
 * runner decodes them. A server runner uses it so that served generations read as in-process ones (a server
 * joins token pieces as they are; llama.cpp's detokenizer also applies the vocabulary's space clean-up).
 */
export async function openGgufDetokenizer(path: string): Promise<(tokens: readonly number[]) => string> {
  const llama = await loadLlamaCpp("off");
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 });
  } catch (e) {
    throw new MerglotError(
      "llamacpp.model",
      `${path}: llama.cpp could not read the vocabulary (${reason(e)})`,
      {
        cause: e,
      },
    );
  }
  return (tokens) => model.detokenize(toks(tokens), true);
}

/** How a user gets a GPU flavour's prebuilt binary (README "GPUs for the llama.cpp runner"). */
function gpuInstallHint(gpu: "cuda" | "vulkan"): string {
  return (
    `in a clone of merglot run: npm run llama-gpu -- ${gpu}; where merglot is a dependency, ` +
    `node-llama-cpp installs @node-llama-cpp/*-${gpu} itself unless your package.json overrides remove it`
  );
}

/** The process-wide llama.cpp binding for a backend: prebuilt binary, no download, no build. */
function loadLlamaCpp(gpu: LlamaGpu): Promise<Llama> {
  let llama = shared.get(gpu);
  if (llama) return llama;
  llama = nodeLlamaCpp().then(({ getLlama, LlamaLogLevel }) =>
    getLlama({
      gpu: gpu === "off" ? false : gpu,
      build: "never",
      skipDownload: true,
      usePrebuiltBinaries: true,
      progressLogs: false,
      logLevel: LlamaLogLevel.error,
      logger: (level, message) => {
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) {
          lastLlamaError = message.trim().replace(/^\w+: /, "");
        }
      },
    }).catch((e: unknown) => {
      const msg = (e as Error).message;
      if (gpu === "cuda" || gpu === "vulkan") {
        throw new MerglotError(
          "llamacpp.gpu",
          `llama.cpp could not load its ${gpu} binary (${msg.split("\n")[0]}); ${gpuInstallHint(gpu)}; or use --gpu off`,
          { cause: e },
        );
      }
      throw new MerglotError("llamacpp.binding", `llama.cpp could not be loaded (${msg})`, { cause: e });
    }),
  );
  shared.set(gpu, llama);
  // A failure is not cached: the user may install the package (or free memory) and retry.
  llama.catch(() => shared.delete(gpu));
  return llama;
}

/** node-llama-cpp brands token ids; ours are plain numbers. */
const tok = (n: number): Token => n as Token;
const toks = (a: readonly number[]): Token[] => a as Token[];

/** Tokens in the cache of each sequence we decode into; node-llama-cpp tracks the same list. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class LlamaCppRunner extends TokenRunner {
  readonly name: string;
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly exact: boolean;
  readonly contextSize: number;
  /** The backend llama.cpp actually uses: false for the CPU, else "cuda", "vulkan" or "metal". */
  readonly gpuBackend: LlamaGpuBackend;
  private readonly model: LlamaModel;
  private readonly context: LlamaContext;
  private readonly lanes: LlamaContextSequence[];
  private closed = false;

  private constructor(
    model: LlamaModel,
    context: LlamaContext,
    vocabSize: number,
    opts: LlamaCppRunnerOptions,
    gpuBackend: LlamaGpuBackend,
  ) {
    super();
    this.gpuBackend = gpuBackend;
    this.model = model;
    this.context = context;
    this.exact = opts.exact ?? false;
    this.lanes = Array.from({ length: context.totalSequences }, () => context.getSequence());
    this.contextSize = context.contextSize;
    this.vocabSize = vocabSize;
    this.bos = model.tokens.shouldPrependBosToken && model.tokens.bos !== null ? model.tokens.bos : null;
    const loras = opts.loras ?? [];
    this.name =
      `llama.cpp${this.exact ? " (exact)" : ""}${gpuBackend ? ` (${gpuBackend})` : ""} ${basename(opts.model)}` +
      (loras.length ? ` + ${loras.map((l) => `${basename(l.path)}×${l.scale ?? 1}`).join(" + ")}` : "");
  }

  /** Load the model and its LoRAs from files and create the context. */
  static async open(opts: LlamaCppRunnerOptions): Promise<LlamaCppRunner> {
    // First, so that a missing backend is reported before any file is read.
    await nodeLlamaCpp();
    for (const p of [opts.model, ...(opts.loras ?? []).map((l) => l.path)]) {
      if (!existsSync(p)) throw new MerglotError("llamacpp.missing", `${p}: no such GGUF file`);
    }
    const sequences = opts.sequences ?? 4;
    if (!Number.isInteger(sequences) || sequences < 1) {
      throw new MerglotError("llamacpp.options", `sequences must be a positive integer, got ${sequences}`);
    }
    // Our reader validates the header with bounded allocations before llama.cpp (and node-llama-cpp's own
    // metadata parser, which can run away on a corrupt file) sees it.
    const vocabSize = ggufVocabSize(opts.model);
    for (const l of opts.loras ?? []) GgufReader.open(l.path).close();
    const gpu = opts.gpu ?? "off";
    if (!LLAMA_GPUS.includes(gpu))
      throw new MerglotError("llamacpp.options", `gpu must be one of ${LLAMA_GPUS.join(", ")}, got "${gpu}"`);
    const llama = await loadLlamaCpp(gpu);
    let model: LlamaModel;
    try {
      lastLlamaError = undefined;
      // On a GPU backend, node-llama-cpp offloads as many layers as fit ("auto").
      model = await llama.loadModel({ modelPath: opts.model, gpuLayers: llama.gpu === false ? 0 : "auto" });
    } catch (e) {
      throw new MerglotError(
        "llamacpp.model",
        `${opts.model}: llama.cpp could not load the model (${reason(e)})`,
        {
          cause: e,
        },
      );
    }
    try {
      const exact = opts.exact ?? false;
      const trainCtx = model.trainContextSize;
      const contextSize = opts.contextSize ?? Math.min(2048, trainCtx > 0 ? trainCtx : 2048);
      lastLlamaError = undefined;
      const context = await model.createContext({
        contextSize,
        sequences,
        threads: opts.threads ?? Math.max(1, availableParallelism() - 1),
        ...(exact
          ? { flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" }
          : {}),
        ...(opts.loras?.length
          ? { lora: { adapters: opts.loras.map((l) => ({ filePath: l.path, scale: l.scale ?? 1 })) } }
          : {}),
        failedCreationRemedy: false,
      });
      return new LlamaCppRunner(model, context, vocabSize, opts, llama.gpu);
    } catch (e) {
      await model.dispose();
      if (e instanceof MerglotError) throw e;
      const which = opts.loras?.length ? ` with LoRA ${opts.loras.map((l) => l.path).join(", ")}` : "";
      throw new MerglotError(
        "llamacpp.context",
        `${opts.model}: llama.cpp could not create a context${which} (${reason(e)})`,
        { cause: e },
      );
    }
  }

  tokenize(text: string): number[] {
    this.checkOpen();
    // Special-token text (a chat template's <|im_start|>, …) becomes those tokens, as HF tokenizers (and so the
    // engine runner) do; no BOS is added here.
    return this.model.tokenize(text, true) as number[];
  }

  detokenize(tokens: readonly number[]): string {
    this.checkOpen();
    // Special tokens as their text, as the engine runner (tokenizers.js decode) writes them.
    return this.model.detokenize(toks(tokens), true);
  }

  isEndOfGeneration(token: number): boolean {
    return this.model.isEogToken(tok(token));
  }

  private checkOpen(): void {
    if (this.closed) throw new MerglotError("llamacpp.closed", `${this.name}: the runner is closed`);
  }

  private checkLength(n: number, what: string): void {
    if (n > this.contextSize) {
      throw new MerglotError(
        "eval.context",
        `${what} needs ${n} tokens but the llama.cpp context holds ${this.contextSize}`,
      );
    }
  }

  /**
   * Make the sequence's cache hold a prefix of `tokens` no longer than `limit` tokens, dropping the rest;
   * returns how many tokens of `tokens` are already evaluated.
   */
  private async reuse(seq: LlamaContextSequence, tokens: readonly number[], limit: number): Promise<number> {
    const cached = seq.contextTokens as number[];
    const keep = Math.min(commonPrefix(cached, tokens), limit);
    if (keep < seq.nextTokenIndex)
      await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
    return keep;
  }

  async scoreTokens(requests: readonly TokenScoreRequest[]): Promise<ScoreResult[]> {
    this.checkOpen();
    for (const r of requests) {
      if (r.context.length === 0)
        throw new MerglotError("eval.request", `a score request has an empty context`);
      if (r.continuation.length === 0)
        throw new MerglotError("eval.request", `a score request has an empty continuation`);
      this.checkLength(r.context.length + r.continuation.length, "a score request");
    }
    return mapPool(requests, this.lanes.length, (r, _i, lane) => this.scoreOne(this.lanes[lane]!, r));
  }

  private async scoreOne(seq: LlamaContextSequence, r: TokenScoreRequest): Promise<ScoreResult> {
    const all = [...r.context, ...r.continuation];
    const first = r.context.length - 1; // position whose logits predict the first continuation token
    const keep = await this.reuse(seq, all, first);
    const items: ControlledEvaluateInputItem[] = [];
    for (let i = keep; i < all.length - 1; i++) {
      if (i < first) {
        items.push(tok(all[i]!));
        continue;
      }
      const target = all[i + 1]!;
      items.push([
        tok(all[i]!),
        {
          generateNext: this.exact
            ? { logits: true }
            : {
                logits: { filter: { tokens: [tok(target)], includeSelected: true } },
                totalLogitWeight: true,
                token: true,
              },
        },
      ]);
    }
    const out = await seq.controlledEvaluate(items);
    const tokenLogProbs: number[] = [];
    let isGreedy = true;
    for (let i = first; i < all.length - 1; i++) {
      const next = out[i - keep]?.next;
      const target = all[i + 1]!;
      if (!next?.logits)
        throw new MerglotError("llamacpp.eval", `llama.cpp returned no logits at position ${i}`);
      if (this.exact) {
        const row = new Float64Array(this.vocabSize);
        for (const [tok, v] of next.logits) row[tok] = v;
        const lp = logSoftmax(row);
        tokenLogProbs.push(lp[target]!);
        if (argmax(row) !== target) isGreedy = false;
      } else {
        // The greedy sampler picks the max logit, so the selected token's logit is the row maximum and
        // log p(target) = l_target − l_max − log Σ exp(l − l_max).
        const lt = next.logits.get(tok(target));
        const sel = next.token ?? undefined;
        const lmax = sel !== undefined ? next.logits.get(sel) : undefined;
        if (lt === undefined || lmax === undefined || next.totalLogitWeight === undefined) {
          throw new MerglotError("llamacpp.eval", `llama.cpp returned incomplete logits at position ${i}`);
        }
        tokenLogProbs.push(lt - lmax - Math.log(next.totalLogitWeight));
        if (sel !== target && lt < lmax) isGreedy = false;
      }
    }
    return {
      logProb: tokenLogProbs.reduce((a, b) => a + b, 0),
      tokenLogProbs,
      tokens: [...r.continuation],
      isGreedy,
    };
  }

  async generateTokens(requests: readonly TokenGenerateRequest[]): Promise<TokenGenerateResult[]> {
    this.checkOpen();
    for (const r of requests) {
      if (r.prompt.length === 0)
        throw new MerglotError("eval.request", `a generation request has an empty prompt`);
      this.checkLength(r.prompt.length + r.maxTokens, "a generation request");
    }
    return mapPool(requests, this.lanes.length, (r, _i, lane) => this.generateOne(this.lanes[lane]!, r));
  }

  private async generateOne(
    seq: LlamaContextSequence,
    r: TokenGenerateRequest,
  ): Promise<TokenGenerateResult> {
    if (r.maxTokens === 0) return { tokens: [], finishReason: "length" };
    const keep = await this.reuse(seq, r.prompt, r.prompt.length - 1);
    const step = (t: number): ControlledEvaluateInputItem => [tok(t), { generateNext: { token: true } }];
    let items: ControlledEvaluateInputItem[] = [
      ...toks(r.prompt.slice(keep, -1)),
      step(r.prompt[r.prompt.length - 1]!),
    ];
    const tokens: number[] = [];
    for (;;) {
      const out = await seq.controlledEvaluate(items);
      const t = out[items.length - 1]?.next.token;
      if (t === undefined || t === null)
        throw new MerglotError("llamacpp.eval", `llama.cpp produced no token`);
      if (this.isEndOfGeneration(t)) return { tokens, finishReason: "eos" };
      tokens.push(t);
      if (tokens.length >= r.maxTokens) return { tokens, finishReason: "length" };
      items = [step(t)];
    }
  }

  async nextTokenLogProbs(tokens: readonly number[]): Promise<Float64Array[]> {
    this.checkOpen();
    if (tokens.length === 0) return [];
    this.checkLength(tokens.length, "the token sequence");
    const seq = this.lanes[0]!;
    const keep = await this.reuse(seq, tokens, 0);
    const items: ControlledEvaluateInputItem[] = tokens
      .slice(keep)
      .map((t): ControlledEvaluateInputItem => [tok(t), { generateNext: { logits: true } }]);
    const out = await seq.controlledEvaluate(items);
    return out.map((o, i) => {
      if (!o?.next.logits)
        throw new MerglotError("llamacpp.eval", `llama.cpp returned no logits at position ${i}`);
      const row = new Float64Array(this.vocabSize);
      for (const [tok, v] of o.next.logits) row[tok] = v;
      return logSoftmax(row);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.context.dispose();
    await this.model.dispose();
  }
}
