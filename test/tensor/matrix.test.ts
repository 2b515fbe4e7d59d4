import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  eye,
  frobenius,
  fromRows,
  hcat,
  mat,
  powerOfTwoScale,
  scaleCols,
  sliceCols,
  sliceRows,
  transpose,
  vcat,
} from "../../src/tensor/matrix.js";
import { naiveTranspose, randomMatrix } from "./reference.js";

describe("matrix helpers", () => {
  test("mat checks its shape against the data", () => {
    assert.equal(mat(2, 3).data.length, 6);
    assert.throws(() => mat(2, 3, new Float64Array(5)), /5 elements/);
    assert.throws(() => mat(-1, 3), RangeError);
  });

  test("transpose matches the definition across tile boundaries", () => {
    for (const [r, c] of [
      [1, 1],
      [1, 40],
      [17, 33],
      [50, 20],
    ]) {
      const a = randomMatrix(r, c, r * c);
      assert.deepEqual(transpose(a), naiveTranspose(a));
    }
  });

  test("slicing and concatenation", () => {
    const a = fromRows([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(Array.from(sliceCols(a, 1, 3).data), [2, 3, 5, 6]);
    assert.deepEqual(Array.from(sliceRows(a, 1, 2).data), [4, 5, 6]);
    assert.deepEqual(Array.from(hcat([a, sliceCols(a, 0, 1)]).data), [1, 2, 3, 1, 4, 5, 6, 4]);
    assert.deepEqual(Array.from(vcat([a, sliceRows(a, 0, 1)]).data), [1, 2, 3, 4, 5, 6, 1, 2, 3]);
    assert.deepEqual(Array.from(scaleCols(a, [1, 0, -1]).data), [1, 0, -3, 4, 0, -6]);
    assert.deepEqual(Array.from(eye(2).data), [1, 0, 0, 1]);
    assert.throws(() => hcat([a, mat(3, 1)]), /row counts differ/);
  });

  test("frobenius norm without overflow or underflow", () => {
    assert.equal(frobenius(fromRows([[3, 4]])), 5);
    assert.ok(Math.abs(frobenius(fromRows([[3e200, 4e200]])) / 5e200 - 1) < 1e-15);
    assert.ok(Math.abs(frobenius(fromRows([[3e-200, 4e-200]])) / 5e-200 - 1) < 1e-15);
    assert.equal(frobenius(mat(2, 2)), 0);
  });

  test("powerOfTwoScale brings the largest entry into [½, 1)", () => {
    for (const x of [1, 3, 0.75, 1e300, 1e-300, 5e-324]) {
      const s = powerOfTwoScale(x);
      assert.ok(Number.isInteger(Math.log2(s)));
      if (x > 1e-290) assert.ok(x / s >= 0.5 && x / s < 1, `${x}`);
    }
    assert.equal(powerOfTwoScale(0), 1);
  });
});
