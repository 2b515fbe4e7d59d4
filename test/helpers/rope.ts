/**
 * HF rows → llama.cpp rows by numpy index arithmetic (reshape(n_head, 2, half, cols).swapaxes(1, 2)): the test
 * reference for llama.cpp's q/k permutation, independent of src/formats/llama-names.ts.
 */
export function naivePermute(w: ArrayLike<number>, rows: number, cols: number, nHead: number): Float32Array {
  const half = rows / nHead / 2;
  const out = new Float32Array(rows * cols);
  for (let h = 0; h < nHead; h++)
    for (let i = 0; i < half; i++)
      for (let t = 0; t < 2; t++)
        for (let c = 0; c < cols; c++)
          out[((h * half + i) * 2 + t) * cols + c] = w[((h * 2 + t) * half + i) * cols + c]!;
  return out;
}
