import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AdamW, clipGradNorm, learningRate } from "../../src/train/optim.js";

describe("AdamW", () => {
  test("two steps match the published update rule computed by hand", () => {
    const data = Float32Array.of(1, -2);
    const grad = Float32Array.of(0.5, 0.25);
    const opt = new AdamW([{ name: "p", data, grad }], {
      beta1: 0.9,
      beta2: 0.99,
      eps: 1e-8,
      weightDecay: 0.1,
    });
    const x = [1, -2];
    const m = [0, 0];
    const v = [0, 0];
    const g = [
      [0.5, 0.25],
      [-1, 2],
    ];
    for (let t = 1; t <= 2; t++) {
      grad.set(g[t - 1]);
      opt.step(0.01);
      for (let i = 0; i < 2; i++) {
        x[i] *= 1 - 0.01 * 0.1;
        m[i] = 0.9 * m[i] + 0.1 * g[t - 1][i];
        v[i] = 0.99 * v[i] + 0.01 * g[t - 1][i] ** 2;
        const mh = m[i] / (1 - 0.9 ** t);
        const vh = v[i] / (1 - 0.99 ** t);
        x[i] -= (0.01 * mh) / (Math.sqrt(vh) + 1e-8);
        assert.ok(Math.abs(data[i] - x[i]) < 1e-6, `t=${t} x[${i}] ${data[i]} vs ${x[i]}`);
      }
    }
  });

  test("clipping scales the global norm down to the limit and reports the norm before", () => {
    const a = Float32Array.of(3, 0);
    const b = Float32Array.of(4);
    const params = [
      { name: "a", data: new Float32Array(2), grad: a },
      { name: "b", data: new Float32Array(1), grad: b },
    ];
    assert.ok(Math.abs(clipGradNorm(params, 1) - 5) < 1e-12);
    assert.ok(Math.abs(Math.hypot(a[0], b[0]) - 1) < 1e-5);
    assert.ok(Math.abs(a[0] / b[0] - 0.75) < 1e-6);
  });
});

describe("learning-rate schedules (HF semantics)", () => {
  test("warm-up then linear, cosine or constant", () => {
    // 10 steps, 2 warm-up, base 1
    assert.equal(learningRate("linear", 1, 0, 10, 2), 0);
    assert.equal(learningRate("linear", 1, 1, 10, 2), 0.5);
    assert.equal(learningRate("linear", 1, 2, 10, 2), 1);
    assert.equal(learningRate("linear", 1, 6, 10, 2), 0.5);
    assert.ok(Math.abs(learningRate("cosine", 1, 6, 10, 2) - 0.5) < 1e-15);
    assert.ok(Math.abs(learningRate("cosine", 1, 4, 10, 2) - 0.5 * (1 + Math.cos(Math.PI / 4))) < 1e-15);
    assert.equal(learningRate("constant", 1, 9, 10, 2), 1);
    assert.equal(learningRate("linear", 1, 0, 10, 0), 1);
  });
});
