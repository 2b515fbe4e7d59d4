import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseModelConfig } from "../../src/engine/config.js";
import { applyRope, inverseFrequencies, RopeTable } from "../../src/engine/rope.js";

describe("RoPE", () => {
  test("rotates each (x_i, x_{i+d/2}) pair by position·inv_freq_i (hand case)", () => {
    // d = 4, theta = 100: inv_freq = [1, 1/10]
    const inv = inverseFrequencies({ headDim: 4, ropeTheta: 100, ropeScaling: null });
    assert.deepEqual(Array.from(inv), [1, 0.1]);
    const table = new RopeTable(inv, 8);
    // two rows (positions 0 and 3), one head: x = [1, 2, 0, 1]
    const x = Float64Array.of(1, 2, 0, 1, 1, 2, 0, 1);
    applyRope(x, Int32Array.of(0, 3), 2, 1, table, false);
    assert.deepEqual(Array.from(x.subarray(0, 4)), [1, 2, 0, 1]);
    const a0 = 3;
    const a1 = 0.3;
    const want = [
      1 * Math.cos(a0) - 0 * Math.sin(a0), // x1·cos − x3·sin
      2 * Math.cos(a1) - 1 * Math.sin(a1),
      0 * Math.cos(a0) + 1 * Math.sin(a0), // x3·cos + x1·sin
      1 * Math.cos(a1) + 2 * Math.sin(a1),
    ];
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(x[4 + i] - want[i]) < 1e-15, `x[${i}]`);
  });

  test("the inverse rotation is the transpose (the backward pass)", () => {
    const table = new RopeTable(inverseFrequencies({ headDim: 6, ropeTheta: 10000, ropeScaling: null }), 16);
    const pos = Int32Array.of(5, 11);
    const x = Float64Array.from({ length: 24 }, (_, i) => Math.sin(i + 1));
    const y = Float64Array.from({ length: 24 }, (_, i) => Math.cos(3 * i));
    const rx = Float64Array.from(x);
    applyRope(rx, pos, 2, 2, table, false);
    const rty = Float64Array.from(y);
    applyRope(rty, pos, 2, 2, table, true);
    let a = 0;
    let b = 0;
    for (let i = 0; i < 24; i++) {
      a += rx[i] * y[i];
      b += x[i] * rty[i];
    }
    assert.ok(Math.abs(a - b) < 1e-12);
    applyRope(rx, pos, 2, 2, table, true);
    for (let i = 0; i < 24; i++) assert.ok(Math.abs(rx[i] - x[i]) < 1e-14);
  });

  test("llama3 rope_scaling: high frequencies kept, low divided by factor, the band between interpolated", () => {
    const c = parseModelConfig(
      {
        vocab_size: 8,
        hidden_size: 12,
        intermediate_size: 8,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        rope_theta: 100,
        rope_scaling: {
          rope_type: "llama3",
          factor: 8,
          low_freq_factor: 1,
          high_freq_factor: 8,
          original_max_position_embeddings: 64,
        },
      },
      "config.json",
    );
    // head_dim 6: base inv_freq = [1, 100^(-1/3), 100^(-2/3)]; wavelengths 2π/inv = 6.28, 29.2, 135.4
    // high_freq_wavelen = 64/8 = 8, low_freq_wavelen = 64/1 = 64
    const inv = inverseFrequencies(c);
    const f1 = Math.pow(100, -1 / 3);
    const f2 = Math.pow(100, -2 / 3);
    const smooth = (64 / ((2 * Math.PI) / f1) - 1) / (8 - 1);
    const want = [1, (1 - smooth) * (f1 / 8) + smooth * f1, f2 / 8];
    for (let i = 0; i < 3; i++)
      assert.ok(Math.abs(inv[i] - want[i]) < 1e-15, `inv_freq[${i}] = ${inv[i]}, want ${want[i]}`);
  });

  test("unsupported rope types are refused with the field named", () => {
    assert.throws(
      () =>
        parseModelConfig(
          {
            vocab_size: 8,
            hidden_size: 8,
            intermediate_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            rope_scaling: { type: "yarn", factor: 2 },
          },
          "cfg.json",
        ),
      /cfg\.json: rope_scaling type "yarn" is not supported/,
    );
  });
});
