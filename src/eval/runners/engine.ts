/**
 * A runner over merglot's own TypeScript engine (src/engine): an HF model folder plus zero or more PEFT
 * adapters, each merged into the weights with its scale (W += scale · s · B·A, s the adapter's own scaling).
 *
 * Requests are batched by length into padded causal batches (right padding cannot leak into earlier
 * positions of a causal model). Generation is batched the same way: one prefill over the padded prompts,
 * then one token per running sequence per step with a KV cache (engine/kv-cache.ts).
 */
import { basename } from "node:path";
import { MerglotError } from "../../errors.js";
import { loadModel } from "../../engine/load.js";
import { loadAdapter, mergeLora } from "../../engine/lora.js";
import { causalBatch, type LlamaModel } from "../../engine/model.js";
import { generateBatch as engineGenerate, logProbRows } from "../../engine/score.js";
import { loadTokenizer, type TextTokenizer } from "../../engine/tokenizer.js";
import {
  TokenRunner,
  type ScoreResult,
  type TokenGenerateRequest,
  type TokenGenerateResult,
  type TokenScoreRequest,
} from "./runner.js";

export interface EngineAdapter {
  /** A PEFT adapter folder. */
  path: string;
  /** Multiplier on the adapter's own scaling. Default 1. */
  scale?: number;
}

export interface EngineRunnerOptions {
  /** HF model folder: config.json, *.safetensors, tokenizer.json. */
  model: string;
  adapters?: readonly EngineAdapter[];
  /** Arithmetic of the engine. Default f32. */
  dtype?: "f32" | "f64";
  /** Tokens per forward batch when scoring (rows are padded to the longest). Default 4096. */
  batchTokens?: number;
}

export class EngineRunner extends TokenRunner {
  readonly name: string;
  readonly vocabSize: number;
  readonly bos: number | null;
  private readonly eos: Set<number>;
  private readonly batchTokens: number;
  private closed = false;

  private constructor(
    private readonly model: LlamaModel,
    private readonly tokenizer: TextTokenizer,
    opts: EngineRunnerOptions,
  ) {
    super();
    this.vocabSize = model.config.vocabSize;
    this.batchTokens = opts.batchTokens ?? 4096;
    // The tokenizer's post-processor decides whether a BOS goes first (as HF's encode does).
    const probe = "a";
    const withSpecial = tokenizer.encode(probe, true);
    const without = tokenizer.encode(probe, false);
    this.bos = withSpecial.length > without.length && withSpecial[0] !== without[0] ? withSpecial[0]! : null;
    this.eos = new Set(model.config.eosTokenIds);
    if (tokenizer.eosTokenId !== null) this.eos.add(tokenizer.eosTokenId);
    const adapters = opts.adapters ?? [];
    this.name =
      `engine (${opts.dtype ?? "f32"}) ${basename(opts.model)}` +
      (adapters.length ? ` + ${adapters.map((a) => `${basename(a.path)}×${a.scale ?? 1}`).join(" + ")}` : "");
  }

  /** Load the model folder and merge the adapters into it. */
  static async open(opts: EngineRunnerOptions): Promise<EngineRunner> {
    const model = loadModel(opts.model, { dtype: opts.dtype ?? "f32" });
    for (const a of opts.adapters ?? []) {
      const scale = a.scale ?? 1;
      if (!Number.isFinite(scale))
        throw new MerglotError("eval.adapter", `${a.path}: scale must be a finite number`);
      loadAdapter(model, a.path);
      for (const lin of model.linears()) if (lin.lora) lin.lora.scaling *= scale;
      mergeLora(model);
    }
    return new EngineRunner(model, loadTokenizer(opts.model), opts);
  }

  tokenize(text: string): number[] {
    return this.tokenizer.encode(text, false);
  }

  detokenize(tokens: readonly number[]): string {
    // tokenizers.js refuses an empty list
    return tokens.length === 0 ? "" : this.tokenizer.decode([...tokens], false);
  }

  isEndOfGeneration(token: number): boolean {
    return this.eos.has(token);
  }

  private checkOpen(): void {
    if (this.closed) throw new MerglotError("engine.closed", `${this.name}: the runner is closed`);
  }

  async scoreTokens(requests: readonly TokenScoreRequest[]): Promise<ScoreResult[]> {
    this.checkOpen();
    const rows = requests.map((r, i) => {
      if (r.context.length === 0)
        throw new MerglotError("eval.request", `score request ${i} has an empty context`);
      if (r.continuation.length === 0)
        throw new MerglotError("eval.request", `score request ${i} has an empty continuation`);
      return [...r.context, ...r.continuation];
    });
    const results = new Array<ScoreResult>(requests.length);
    for (const group of lengthGroups(rows, this.batchTokens)) {
      const b = causalBatch(group.map((i) => rows[i]!));
      // Score only the positions that predict a continuation token.
      b.targets.fill(-1);
      group.forEach((req, r) => {
        const all = rows[req]!;
        for (let t = requests[req]!.context.length - 1; t < all.length - 1; t++)
          b.targets[r * b.seq + t] = all[t + 1]!;
      });
      const lp = group.map((req) => new Array<number>(requests[req]!.continuation.length));
      const greedy = group.map(() => true);
      const V = this.vocabSize;
      this.model.forwardLogits(
        b,
        (r0, n, logits) => {
          for (let k = 0; k < n; k++) {
            const pos = r0 + k;
            const target = b.targets[pos]!;
            if (target < 0) continue;
            const row = Math.floor(pos / b.seq);
            const t = pos % b.seq;
            const o = k * V;
            let max = -Infinity;
            let best = 0;
            for (let c = 0; c < V; c++) {
              if (logits[o + c]! > max) {
                max = logits[o + c]!;
                best = c;
              }
            }
            let z = 0;
            for (let c = 0; c < V; c++) z += Math.exp(logits[o + c]! - max);
            lp[row]![t - (requests[group[row]!]!.context.length - 1)] =
              logits[o + target]! - max - Math.log(z);
            if (best !== target) greedy[row] = false;
          }
        },
        false,
      );
      group.forEach((req, r) => {
        results[req] = {
          logProb: lp[r]!.reduce((a, x) => a + x, 0),
          tokenLogProbs: lp[r]!,
          tokens: [...requests[req]!.continuation],
          isGreedy: greedy[r]!,
        };
      });
    }
    return results;
  }

  async generateTokens(requests: readonly TokenGenerateRequest[]): Promise<TokenGenerateResult[]> {
    this.checkOpen();
    const prompts = requests.map((r) => {
      if (r.prompt.length === 0)
        throw new MerglotError("eval.request", `a generation request has an empty prompt`);
      return [...r.prompt];
    });
    // Requests with the same token budget decode together, in groups of similar prompt length.
    const byBudget = new Map<number, number[]>();
    requests.forEach((r, i) => byBudget.set(r.maxTokens, [...(byBudget.get(r.maxTokens) ?? []), i]));
    const results = new Array<TokenGenerateResult>(requests.length);
    for (const [maxTokens, members] of byBudget) {
      const rows = members.map((i) => prompts[i]!);
      for (const group of lengthGroups(rows, this.batchTokens, GENERATE_ROWS)) {
        const outs = engineGenerate(
          this.model,
          group.map((g) => rows[g]!),
          maxTokens,
          { stopTokens: [...this.eos] },
        );
        group.forEach((g, k) => {
          const out = outs[k]!;
          results[members[g]!] =
            out.length > 0 && this.eos.has(out[out.length - 1]!)
              ? { tokens: out.slice(0, -1), finishReason: "eos" }
              : { tokens: out, finishReason: "length" };
        });
      }
    }
    return results;
  }

  async nextTokenLogProbs(tokens: readonly number[]): Promise<Float64Array[]> {
    this.checkOpen();
    if (tokens.length === 0) return [];
    const flat = logProbRows(this.model, [...tokens]);
    const V = this.vocabSize;
    return Array.from({ length: tokens.length }, (_, t) =>
      Float64Array.from(flat.subarray(t * V, (t + 1) * V)),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.model.releaseWorkspace();
  }
}

/** Sequences decoded together at most (bounds the KV cache of one batch). */
const GENERATE_ROWS = 32;

/**
 * Request indices grouped by similar length so that padding stays small, each group fits `budget` tokens
 * and holds at most `maxRows` rows.
 */
function lengthGroups(rows: readonly number[][], budget: number, maxRows = Infinity): number[][] {
  const order = rows.map((_, i) => i).sort((a, b) => rows[a]!.length - rows[b]!.length || a - b);
  const groups: number[][] = [];
  let cur: number[] = [];
  for (const i of order) {
    const longest = rows[i]!.length; // sorted ascending: the newest member is the longest
    if (cur.length > 0 && ((cur.length + 1) * longest > budget || cur.length >= maxRows)) {
      groups.push(cur);
      cur = [];
    }
    cur.push(i);
  }
  if (cur.length) groups.push(cur);
  return groups;
}
