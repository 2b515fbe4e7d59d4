/**
 * What evaluation needs from a model, whichever backend runs it: log-probabilities of continuations (for
 * classification and multiple choice) and greedy generation, both batched. Backends implement the token-level
 * methods; `TokenRunner` turns text requests into token requests the same way for all of them, so that two
 * backends given the same model score exactly the same token sequences.
 *
 * Text → tokens follows lm-evaluation-harness: trailing spaces of the prompt move to the continuation,
 * the continuation's tokens are those of tokenize(prompt + continuation) after the prompt's tokens, and the
 * model's BOS token (when it wants one) goes in front of the prompt.
 */
import { MerglotError } from "../../errors.js";

export interface ScoreRequest {
  prompt: string;
  continuation: string;
}

export interface TokenScoreRequest {
  /** Tokens before the continuation, BOS included when wanted; at least one token. */
  context: readonly number[];
  continuation: readonly number[];
}

export interface ScoreResult {
  /** Σ log p(continuation token | everything before it), natural log. */
  logProb: number;
  /** One log-prob per continuation token. */
  tokenLogProbs: number[];
  /** The continuation's tokens. */
  tokens: number[];
  /** Whether each continuation token was the model's argmax choice (greedy decoding would produce it). */
  isGreedy: boolean;
}

export interface GenerateRequest {
  prompt: string;
  maxTokens: number;
  /** Stop as soon as the generated text contains one of these (the stop text is cut off). */
  stop?: readonly string[];
}

export interface TokenGenerateRequest {
  /** Prompt tokens, BOS included when wanted; at least one token. */
  prompt: readonly number[];
  maxTokens: number;
}

export interface TokenGenerateResult {
  /** Generated tokens, the end-of-generation token excluded. */
  tokens: number[];
  finishReason: "eos" | "length";
}

export interface GenerateResult {
  text: string;
  tokens: number[];
  finishReason: "eos" | "length" | "stop";
  /** Tokens of the prompt as the model saw it, BOS included. */
  promptTokens: number;
}

/** A text request's score, with the size of its prompt (BOS included, the prompt as given, untrimmed). */
export interface TextScoreResult extends ScoreResult {
  promptTokens: number;
}

/**
 * What evaluation needs of a model: text requests in, scores and generations out. The token-level runners
 * (`Runner`) provide it, and so does a client of a serving engine (`ServerRunner`), which has no token-level
 * access to the model.
 */
export interface EvalRunner {
  /** A short description, e.g. "llama.cpp (exact) model.gguf + 1 LoRA". */
  readonly name: string;
  /** The BOS token to put before a prompt, or null when the model wants none. */
  readonly bos: number | null;
  /**
   * Why this runner cannot score continuations (return prompt log-probs), or null when it can. Evaluation
   * checks it before any request so that a scored task fails at once with the reason.
   */
  readonly cannotScore: string | null;
  /** Continuation log-probs for text requests. */
  logProbs(requests: readonly ScoreRequest[]): Promise<TextScoreResult[]>;
  /** Greedy generation for text prompts. */
  generate(requests: readonly GenerateRequest[]): Promise<GenerateResult[]>;
  close(): Promise<void>;
}

export interface Runner extends EvalRunner {
  /** Embedding rows: the size of each log-prob row. */
  readonly vocabSize: number;
  /** Token ids of `text`: no BOS/EOS added; special-token text (e.g. a chat template's markers) becomes those tokens. */
  tokenize(text: string): number[];
  detokenize(tokens: readonly number[]): string;
  isEndOfGeneration(token: number): boolean;
  /** Continuation log-probs for token requests, batched. */
  scoreTokens(requests: readonly TokenScoreRequest[]): Promise<ScoreResult[]>;
  /** Greedy generation for token prompts, batched. */
  generateTokens(requests: readonly TokenGenerateRequest[]): Promise<TokenGenerateResult[]>;
  /** Full log-softmax rows for every position of `tokens` (row t: the token after tokens[0..t]). */
  nextTokenLogProbs(tokens: readonly number[]): Promise<Float64Array[]>;
}

/** lm-evaluation-harness's split: trailing whitespace of the prompt belongs to the continuation. */
export function moveTrailingSpace(prompt: string, continuation: string): [string, string] {
  const trimmed = prompt.replace(/\s+$/u, "");
  return [trimmed, prompt.slice(trimmed.length) + continuation];
}

/**
 * The token request for a text request (see the module comment), given the model's tokenizer (no BOS added,
 * special-token text parsed) and BOS token. Shared by the token runners and the server runner, which
 * tokenizes through its server.
 */
export function encodeScoreRequest(
  r: ScoreRequest,
  tokenize: (text: string) => number[],
  bos: number | null,
): TokenScoreRequest {
  const [prompt, continuation] = moveTrailingSpace(r.prompt, r.continuation);
  if (continuation.length === 0) {
    throw new MerglotError(
      "eval.request",
      `a score request has an empty continuation (prompt ${JSON.stringify(r.prompt.slice(0, 40))})`,
    );
  }
  const whole = tokenize(prompt + continuation);
  const ctx = tokenize(prompt);
  // Tokenizing the joined text can merge across the boundary; the continuation is what follows the
  // prompt's own tokens (as lm-evaluation-harness does), or failing a common prefix, its own tokenization.
  const aligned = ctx.every((t, i) => whole[i] === t) && whole.length > ctx.length;
  const context = bos === null ? ctx : [bos, ...ctx];
  const cont = aligned ? whole.slice(ctx.length) : tokenize(continuation);
  if (context.length === 0) {
    throw new MerglotError(
      "eval.request",
      `an empty prompt cannot be scored with a model that has no BOS token`,
    );
  }
  return { context, continuation: cont };
}

/** The base of every runner: text requests in terms of the backend's token-level methods. */
export abstract class TokenRunner implements Runner {
  abstract readonly name: string;
  abstract readonly vocabSize: number;
  abstract readonly bos: number | null;
  abstract tokenize(text: string): number[];
  abstract detokenize(tokens: readonly number[]): string;
  abstract isEndOfGeneration(token: number): boolean;
  abstract scoreTokens(requests: readonly TokenScoreRequest[]): Promise<ScoreResult[]>;
  abstract generateTokens(requests: readonly TokenGenerateRequest[]): Promise<TokenGenerateResult[]>;
  abstract nextTokenLogProbs(tokens: readonly number[]): Promise<Float64Array[]>;
  abstract close(): Promise<void>;

  /** Prompt tokens with BOS in front when the model wants it. */
  encodePrompt(prompt: string): number[] {
    const tokens = this.tokenize(prompt);
    return this.bos === null ? tokens : [this.bos, ...tokens];
  }

  /** The token request for a text request (see the module comment). */
  encodeScoreRequest(r: ScoreRequest): TokenScoreRequest {
    return encodeScoreRequest(r, (text) => this.tokenize(text), this.bos);
  }

  /** Token runners compute log-probs of any tokens. */
  readonly cannotScore: string | null = null;

  async logProbs(requests: readonly ScoreRequest[]): Promise<TextScoreResult[]> {
    const scores = await this.scoreTokens(requests.map((r) => this.encodeScoreRequest(r)));
    return scores.map((s, i) => ({ ...s, promptTokens: this.encodePrompt(requests[i]!.prompt).length }));
  }

  async generate(requests: readonly GenerateRequest[]): Promise<GenerateResult[]> {
    const prompts = requests.map((r) => {
      if (!Number.isInteger(r.maxTokens) || r.maxTokens < 0) {
        throw new MerglotError(
          "eval.request",
          `maxTokens must be a non-negative integer, got ${r.maxTokens}`,
        );
      }
      const prompt = this.encodePrompt(r.prompt);
      if (prompt.length === 0) {
        throw new MerglotError(
          "eval.request",
          `an empty prompt cannot be continued by a model that has no BOS token`,
        );
      }
      return { prompt, maxTokens: r.maxTokens };
    });
    const raw = await this.generateTokens(prompts);
    return raw.map((g, i) => ({
      ...this.applyStops(g, requests[i]!.stop ?? []),
      promptTokens: prompts[i]!.prompt.length,
    }));
  }

  /** Cut a generation at the first stop string, keeping the tokens that produced the text before it. */
  private applyStops(g: TokenGenerateResult, stops: readonly string[]): Omit<GenerateResult, "promptTokens"> {
    const text = this.detokenize(g.tokens);
    let cut = -1;
    for (const s of stops) {
      if (s.length === 0) continue;
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut < 0) return { text, tokens: g.tokens, finishReason: g.finishReason };
    let n = 0;
    while (n < g.tokens.length && this.detokenize(g.tokens.slice(0, n + 1)).length <= cut) n++;
    return { text: text.slice(0, cut), tokens: g.tokens.slice(0, n), finishReason: "stop" };
  }
}

/** Log-softmax of one logits row, in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i]! - max);
  const lse = max + Math.log(z);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}

/** Index of the largest value, the lowest index on ties (llama.cpp's greedy sampler does the same). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** Run `work` over `items` with at most `width` in flight; results in input order. */
export async function mapPool<T, R>(
  items: readonly T[],
  width: number,
  work: (item: T, index: number, lane: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(width, items.length)) }, async (_, lane) => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!, i, lane);
    }
  });
  await Promise.all(lanes);
  return out;
}
