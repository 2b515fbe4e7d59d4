import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { argmaxFirst, multipleChoiceAccuracy } from "../../../src/eval/metrics/multiple-choice.js";
import { MerglotError } from "../../../src/errors.js";

describe("multiple choice (lm-evaluation-harness acc / acc_norm / acc_bytes)", () => {
  test("ties go to the first choice, as numpy.argmax", () => {
    assert.equal(argmaxFirst([-1, -0.5, -0.5]), 1);
    assert.equal(argmaxFirst([-2, -2]), 0);
  });

  test("acc picks the largest log-likelihood; acc_norm divides by characters; acc_bytes by UTF-8 bytes", () => {
    // Item 1: raw picks choice 0 (-4 > -5). Per character: -4/2 = -2 vs -5/10 = -0.5 → choice 1.
    //         Per byte the same lengths (ASCII) → choice 1.
    // Item 2: choices "über" (4 chars, 5 bytes) and "ab" (2 chars, 2 bytes), log-likelihoods -4.4 and -2.
    //         Raw: choice 1. Per char: -1.1 vs -1 → choice 1. Per byte: -0.88 vs -1 → choice 0.
    const items = [
      { logprobs: [-4, -5], choices: ["ab", "abcdefghij"], gold: 1 },
      { logprobs: [-4.4, -2], choices: ["über", "ab"], gold: 0 },
    ];
    const r = multipleChoiceAccuracy(items);
    assert.equal(r.acc, 0);
    assert.equal(r.acc_norm, 0.5);
    assert.equal(r.acc_bytes, 1);
    assert.deepEqual(r.perItem.acc_norm, [1, 0]);
    assert.deepEqual(r.perItem.acc_bytes, [1, 1]);
  });

  test("characters are code points, not UTF-16 units", () => {
    // "𝒜" is one code point (two UTF-16 units, four bytes). -3/1 = -3 vs -2.5/1 = -2.5 → choice 1 by chars;
    // if it counted 2 units: -1.5 > -2.5 → choice 0.
    const r = multipleChoiceAccuracy([{ logprobs: [-3, -2.5], choices: ["𝒜", "b"], gold: 1 }]);
    assert.equal(r.acc_norm, 1);
  });

  test("several gold indices: any counts", () => {
    assert.equal(multipleChoiceAccuracy([{ logprobs: [-1, -2, -0.5], gold: [0, 2] }]).acc, 1);
  });

  test("without choice strings only acc is reported", () => {
    const r = multipleChoiceAccuracy([{ logprobs: [-1, -2], gold: 0 }]);
    assert.equal(r.acc, 1);
    assert.equal(r.acc_norm, undefined);
  });

  test("rejects bad input with the item named", () => {
    assert.throws(
      () => multipleChoiceAccuracy([]),
      (e: unknown) => e instanceof MerglotError && /empty/.test(e.message),
    );
    assert.throws(() => multipleChoiceAccuracy([{ logprobs: [-1, -2], gold: 2 }]), /item 1 has gold index 2/);
    assert.throws(
      () => multipleChoiceAccuracy([{ logprobs: [-1, NaN], gold: 0 }]),
      /log-likelihood 1 must be a finite number/,
    );
    assert.throws(
      () => multipleChoiceAccuracy([{ logprobs: [-1, -2], choices: ["a"], gold: 0 }]),
      /2 log-likelihoods but 1 choice strings/,
    );
    assert.throws(
      () => multipleChoiceAccuracy([{ logprobs: [-1, -2], choices: ["a", ""], gold: 0 }]),
      /choice 1 is an empty string/,
    );
    assert.throws(
      () =>
        multipleChoiceAccuracy([
          { logprobs: [-1], choices: ["a"], gold: 0 },
          { logprobs: [-1], gold: 0 },
        ]),
      /item 2 has no choice strings/,
    );
  });
});
