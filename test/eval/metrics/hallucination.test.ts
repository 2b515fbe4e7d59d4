import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  hallucinationRate,
  normalizeForMatching,
  tokenCoverage,
} from "../../../src/eval/metrics/hallucination.js";
import { MerglotError } from "../../../src/errors.js";

describe("hallucination rate", () => {
  test("share of items not found in the input (micro) and per-example rates (macro)", () => {
    const r = hallucinationRate([
      { input: "Marie Curie was born in Warsaw in 1867.", items: ["Marie Curie", "Warsaw", "Paris"] },
      { input: "The meeting is on Tuesday.", items: ["Tuesday"] },
    ]);
    assert.equal(r.items, 4);
    assert.equal(r.unsupported, 1);
    assert.equal(r.rate, 1 / 4);
    assert.equal(r.macroRate, (1 / 3 + 0) / 2);
    assert.deepEqual(r.perExample[0].unsupportedItems, ["Paris"]);
  });

  test("normalisation: NFKC, whitespace runs, optional case folding", () => {
    assert.equal(normalizeForMatching("  Ｔｏｋｙｏ\u3000 Tower\n", false), "Tokyo Tower");
    const input = "Visit the TOKYO   Tower\nat night";
    assert.equal(hallucinationRate([{ input, items: ["TOKYO Tower"] }]).rate, 0);
    assert.equal(hallucinationRate([{ input, items: ["Tokyo Tower"] }]).rate, 1);
    assert.equal(hallucinationRate([{ input, items: ["Tokyo Tower"] }], { caseFold: true }).rate, 0);
    // NFKC: the "ﬁ" ligature and full-width digits match their plain forms.
    assert.equal(hallucinationRate([{ input: "ﬁnal score ２：１", items: ["final score 2:1"] }]).rate, 0);
  });

  test("fuzzy: token LCS coverage at or above the threshold", () => {
    const input = "the new museum of modern art opened in Berlin";
    // "museum of art Berlin": LCS with the input covers all 4 tokens (in order) → supported.
    assert.equal(tokenCoverage("museum of art Berlin", input), 1);
    // "art museum": LCS is 1 of 2 tokens ("museum" precedes "art" in the input) → 0.5.
    assert.equal(tokenCoverage("art museum", input), 0.5);
    const ex = [{ input, items: ["museum of art Berlin", "art museum"] }];
    assert.equal(hallucinationRate(ex).rate, 1);
    assert.equal(hallucinationRate(ex, { match: "fuzzy" }).rate, 1 / 2);
    assert.equal(hallucinationRate(ex, { match: "fuzzy", threshold: 0.5 }).rate, 0);
    // CJK text is compared character by character.
    assert.equal(tokenCoverage("北京大学", "我在北京的大学"), 1);
  });

  test("empty cases", () => {
    // Empty items are skipped and counted apart; an example without items has rate null.
    const r = hallucinationRate([
      { input: "abc", items: ["", "  "] },
      { input: "abc", items: [] },
    ]);
    assert.deepEqual([r.rate, r.items, r.emptyItems, r.macroRate], [0, 0, 2, null]);
    assert.equal(r.perExample[0].rate, null);
    // An empty input supports nothing.
    assert.equal(hallucinationRate([{ input: "", items: ["x", "y"] }]).rate, 1);
    // No examples at all is an error.
    assert.throws(
      () => hallucinationRate([]),
      (e: unknown) => e instanceof MerglotError && /empty/.test(e.message),
    );
  });

  test("rejects malformed examples and options", () => {
    assert.throws(
      () => hallucinationRate([{ input: "a", items: [3 as unknown as string] }]),
      /example 1 item 1 is not a string/,
    );
    assert.throws(
      () => hallucinationRate([{ input: "a", items: ["a"] }], { threshold: 0 }),
      /threshold must lie in \(0, 1\]/,
    );
    assert.throws(
      () => hallucinationRate([{ input: "a", items: ["a"] }], { match: "regex" as "exact" }),
      /match must be/,
    );
  });
});
