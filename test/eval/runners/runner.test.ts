import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MerglotError } from "../../../src/errors.js";
import {
  argmax,
  logSoftmax,
  mapPool,
  moveTrailingSpace,
  TokenRunner,
  type ScoreResult,
  type TokenGenerateRequest,
  type TokenGenerateResult,
  type TokenScoreRequest,
} from "../../../src/eval/runners/runner.js";

/**
 * A runner with a character tokenizer in which "ab" is one token (id 1), letters are 2 + (code − 97), space
 * 30; it records the token requests it gets and "generates" a fixed script.
 */
class FakeRunner extends TokenRunner {
  readonly name = "fake";
  readonly vocabSize = 32;
  scored: TokenScoreRequest[] = [];
  constructor(
    readonly bos: number | null,
    private readonly script: number[] = [],
    private readonly eos = 31,
  ) {
    super();
  }
  tokenize(text: string): number[] {
    const out: number[] = [];
    for (let i = 0; i < text.length; i++) {
      if (text[i] === "a" && text[i + 1] === "b") {
        out.push(1);
        i++;
      } else out.push(text[i] === " " ? 30 : 2 + text.charCodeAt(i) - 97);
    }
    return out;
  }
  detokenize(tokens: readonly number[]): string {
    return tokens.map((t) => (t === 1 ? "ab" : t === 30 ? " " : String.fromCharCode(97 + t - 2))).join("");
  }
  isEndOfGeneration(token: number): boolean {
    return token === this.eos;
  }
  async scoreTokens(requests: readonly TokenScoreRequest[]): Promise<ScoreResult[]> {
    this.scored.push(...requests);
    return requests.map((r) => ({
      logProb: -r.continuation.length,
      tokenLogProbs: r.continuation.map(() => -1),
      tokens: [...r.continuation],
      isGreedy: false,
    }));
  }
  async generateTokens(requests: readonly TokenGenerateRequest[]): Promise<TokenGenerateResult[]> {
    return requests.map((r) => {
      const end = this.script.indexOf(this.eos);
      const tokens = (end >= 0 ? this.script.slice(0, end) : this.script).slice(0, r.maxTokens);
      return { tokens, finishReason: end >= 0 && end <= r.maxTokens ? "eos" : "length" };
    });
  }
  async nextTokenLogProbs(): Promise<Float64Array[]> {
    return [];
  }
  async close(): Promise<void> {}
}

const t = (s: string) => new FakeRunner(null).tokenize(s);

describe("text requests → token requests", () => {
  test("trailing whitespace of the prompt moves to the continuation", () => {
    assert.deepEqual(moveTrailingSpace("Answer: ", "yes"), ["Answer:", " yes"]);
    assert.deepEqual(moveTrailingSpace("Q\n \n", "A"), ["Q", "\n \nA"]);
    assert.deepEqual(moveTrailingSpace("Q", " A"), ["Q", " A"]);
  });

  test("BOS goes first; the continuation is what follows the prompt's tokens", async () => {
    const r = new FakeRunner(0);
    const [s] = await r.logProbs([{ prompt: "cd ", continuation: "ef" }]);
    assert.deepEqual(r.scored[0], { context: [0, ...t("cd")], continuation: t(" ef") });
    // The prompt's size is that of the prompt as given: BOS, c, d and the trailing space.
    assert.equal(s!.promptTokens, 4);
  });

  test("when the joint tokenization merges across the boundary, the continuation is tokenized alone", async () => {
    const r = new FakeRunner(null);
    // "ca" + "bd": the joint text "cabd" tokenizes as c, ab, d, which does not start with the prompt's c, a
    await r.logProbs([{ prompt: "ca", continuation: "bd" }]);
    assert.deepEqual(r.scored[0], { context: t("ca"), continuation: t("bd") });
  });

  test("empty continuations, and empty prompts without a BOS, are refused", async () => {
    const r = new FakeRunner(null);
    await assert.rejects(
      r.logProbs([{ prompt: "a", continuation: "" }]),
      (e: unknown) => e instanceof MerglotError && /empty continuation/.test(e.message),
    );
    await assert.rejects(
      r.logProbs([{ prompt: "", continuation: "a" }]),
      /an empty prompt cannot be scored with a model that has no BOS token/,
    );
    await assert.rejects(r.generate([{ prompt: "", maxTokens: 2 }]), /empty prompt cannot be continued/);
    await assert.rejects(
      r.generate([{ prompt: "a", maxTokens: -1 }]),
      /maxTokens must be a non-negative integer/,
    );
  });
});

describe("generation", () => {
  const script = [2, 3, 30, 4, 5, 30, 6, 31];
  test("text is the detokenized tokens; EOS and maxTokens end it", async () => {
    const r = new FakeRunner(0, script);
    const [full] = await r.generate([{ prompt: "x", maxTokens: 10 }]);
    // promptTokens: BOS and the one token of "x".
    assert.deepEqual(full, {
      text: "ab cd e",
      tokens: [2, 3, 30, 4, 5, 30, 6],
      finishReason: "eos",
      promptTokens: 2,
    });
    const [short] = await r.generate([{ prompt: "x", maxTokens: 3 }]);
    assert.deepEqual(short, { text: "ab ", tokens: [2, 3, 30], finishReason: "length", promptTokens: 2 });
  });

  test("the first stop string cuts the text and the tokens that made only what was kept", async () => {
    const r = new FakeRunner(0, script);
    const [g] = await r.generate([{ prompt: "x", maxTokens: 10, stop: ["e", " c"] }]);
    assert.deepEqual(g, { text: "ab", tokens: [2, 3], finishReason: "stop", promptTokens: 2 });
    const [none] = await r.generate([{ prompt: "x", maxTokens: 10, stop: ["zz", ""] }]);
    assert.equal(none!.finishReason, "eos");
  });
});

describe("helpers", () => {
  test("logSoftmax and argmax", () => {
    const lp = logSoftmax([0, Math.log(3)]);
    assert.ok(Math.abs(lp[0]! - Math.log(0.25)) < 1e-15 && Math.abs(lp[1]! - Math.log(0.75)) < 1e-15);
    assert.ok(Math.abs(logSoftmax([1000, 1000])[0]! - Math.log(0.5)) < 1e-12); // no overflow
    assert.equal(argmax([1, 3, 3, 2]), 1);
  });

  test("mapPool keeps input order and never runs more than `width` at once", async () => {
    let running = 0;
    let peak = 0;
    const lanes = new Set<number>();
    const out = await mapPool([5, 1, 4, 2, 3], 2, async (x, i, lane) => {
      running++;
      peak = Math.max(peak, running);
      lanes.add(lane);
      await new Promise((res) => setTimeout(res, x));
      running--;
      return x * 10 + i;
    });
    assert.deepEqual(out, [50, 11, 42, 23, 34]);
    assert.equal(peak, 2);
    assert.deepEqual([...lanes].sort(), [0, 1]);
  });
});
