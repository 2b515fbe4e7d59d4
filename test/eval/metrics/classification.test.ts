import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { accuracy, classificationReport, confusionMatrix } from "../../../src/eval/metrics/classification.js";
import { MerglotError } from "../../../src/errors.js";

const close = (a: number, b: number, eps = 1e-12): void => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);

// The brief's hand-computed case. Classes sorted: neg, neu, pos.
//   neg: TP 1, FP 0, FN 1 → P 1,   R 1/2, F 2/3
//   neu: TP 1, FP 2, FN 0 → P 1/3, R 1,   F 1/2
//   pos: TP 2, FP 0, FN 1 → P 1,   R 2/3, F 4/5
const yTrue = ["pos", "pos", "pos", "neu", "neg", "neg"];
const yPred = ["pos", "pos", "neu", "neu", "neu", "neg"];

describe("classification (scikit-learn semantics)", () => {
  test("macro F1 of the sentiment example is 59/90", () => {
    const r = classificationReport(yPred, yTrue);
    assert.deepEqual(r.labels, ["neg", "neu", "pos"]);
    close(r.macro.f, 59 / 90);
    close(r.macro.precision, (1 + 1 / 3 + 1) / 3);
    close(r.macro.recall, (1 / 2 + 1 + 2 / 3) / 3);
    const f = r.perClass.map((c) => c.f);
    [2 / 3, 1 / 2, 4 / 5].forEach((x, i) => close(f[i], x));
    assert.deepEqual(
      r.perClass.map((c) => c.support),
      [2, 1, 3],
    );
  });

  test("micro equals accuracy, weighted uses support", () => {
    const r = classificationReport(yPred, yTrue);
    close(r.accuracy, 4 / 6);
    close(r.micro.f, 4 / 6);
    close(r.micro.precision, 4 / 6);
    close(r.weighted.f, (2 * (2 / 3) + 1 * (1 / 2) + 3 * (4 / 5)) / 6);
    close(r.weighted.recall, (2 * (1 / 2) + 1 * 1 + 3 * (2 / 3)) / 6);
    close(accuracy(yPred, yTrue), 4 / 6);
  });

  test("F is computed from counts and F-beta follows (1+β²)TP / ((1+β²)TP + β²FN + FP)", () => {
    const r = classificationReport(yPred, yTrue, { beta: 2 });
    // neu: TP 1, FN 0, FP 2 → 5 / (5 + 0 + 2)
    close(r.perClass[1].f, 5 / 7);
  });

  test("confusion matrix: rows are references, columns predictions", () => {
    assert.deepEqual(confusionMatrix(yPred, yTrue), [
      [1, 1, 0],
      [0, 1, 0],
      [0, 1, 2],
    ]);
    assert.deepEqual(classificationReport(yPred, yTrue).confusion, confusionMatrix(yPred, yTrue));
  });

  test("a stray prediction outside explicit labels is wrong, never a class", () => {
    const r = classificationReport(["pos", "maybe", "neg"], ["pos", "neg", "neg"], {
      labels: ["neg", "pos"],
    });
    assert.deepEqual(r.labels, ["neg", "pos"]);
    assert.equal(r.strayPredictions, 1);
    // neg: TP 1, FP 0, FN 1 → P 1, R 1/2, F 2/3; pos: P 1, R 1, F 1
    close(r.perClass[0].recall, 1 / 2);
    close(r.perClass[0].precision, 1);
    close(r.macro.f, (2 / 3 + 1) / 2);
    close(r.accuracy, 2 / 3);
    // micro: TP 2, predicted (within labels) 2, true 3
    close(r.micro.precision, 1);
    close(r.micro.recall, 2 / 3);
    assert.deepEqual(r.confusion, [
      [1, 0],
      [0, 1],
    ]);
    // Without explicit labels the stray prediction becomes a class of its own, as in scikit-learn.
    assert.deepEqual(classificationReport(["pos", "maybe", "neg"], ["pos", "neg", "neg"]).labels, [
      "maybe",
      "neg",
      "pos",
    ]);
  });

  test("zero_division: a class never predicted nor present takes the given value", () => {
    const labels = ["a", "b", "c"];
    const r0 = classificationReport(["a", "b"], ["a", "b"], { labels });
    assert.equal(r0.perClass[2].precision, 0);
    assert.equal(r0.perClass[2].f, 0);
    close(r0.macro.f, 2 / 3);
    const r1 = classificationReport(["a", "b"], ["a", "b"], { labels, zeroDivision: 1 });
    assert.equal(r1.perClass[2].f, 1);
    close(r1.macro.f, 1);
    // NaN is left out of the macro mean (scikit-learn's _nanaverage).
    const rn = classificationReport(["a", "b"], ["a", "b"], { labels, zeroDivision: NaN });
    assert.ok(Number.isNaN(rn.perClass[2].f));
    close(rn.macro.f, 1);
  });

  test("a class predicted but never true has recall = zero_division and F = 0 from counts", () => {
    const r = classificationReport(["a", "b"], ["a", "a"], { zeroDivision: 1 });
    // b: TP 0, FP 1, FN 0 → P 0, R 0/0 → 1, F 0 / (0 + 0 + 1) = 0
    assert.equal(r.perClass[1].precision, 0);
    assert.equal(r.perClass[1].recall, 1);
    assert.equal(r.perClass[1].f, 0);
  });

  test("numeric labels sort numerically; code points order strings", () => {
    assert.deepEqual(classificationReport([10, 9, 2], [2, 9, 10]).labels, [2, 9, 10]);
    assert.deepEqual(classificationReport(["b", "B", "a"], ["a", "b", "B"]).labels, ["B", "a", "b"]);
  });

  test("rejects mismatched lengths, empty input, unknown reference labels and mixed types", () => {
    assert.throws(
      () => classificationReport(["a"], ["a", "b"]),
      (e: unknown) => e instanceof MerglotError && /1 predictions but 2 references/.test(e.message),
    );
    assert.throws(
      () => accuracy([], []),
      (e: unknown) => e instanceof MerglotError && /empty/.test(e.message),
    );
    assert.throws(
      () => classificationReport(["a", "b"], ["a", "z"], { labels: ["a", "b"] }),
      (e: unknown) => e instanceof MerglotError && /reference 2 has label "z"/.test(e.message),
    );
    assert.throws(() => classificationReport([1, "a"], [1, "a"]), /mix numbers and strings/);
    assert.throws(() => classificationReport(["a"], ["a"], { labels: ["a", "a"] }), /listed twice/);
    assert.throws(() => classificationReport(["a"], ["a"], { zeroDivision: 0.5 }), /zeroDivision/);
    assert.throws(() => classificationReport([null as unknown as string], ["a"]), /prediction 1 is null/);
  });
});
