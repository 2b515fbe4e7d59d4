/**
 * DELLA's magprune on its WebAssembly kernel (source: wasm/della.ts, built into dist/src/wasm/della.wasm by
 * `npm run build`): the row ranking, keep probabilities and seeded draws of `magprune` (operators.ts, the
 * JavaScript twin it is tested against) with the same bits, ~3× faster — the ranking's scatter passes and the
 * generator are what V8's code spends most of a DELLA merge on (bench: 8B knots_della).
 *
 * The generator's state goes into kernel memory and comes back, so the stream continues exactly as if the
 * JavaScript generator had drawn. `MERGLOT_WASM=js` or a missing module keeps the JavaScript function.
 */
import { Rng } from "../tensor/rng.js";
import { growMemory, lazyInstance } from "../tensor/wasm.js";
import { magprune, type Tensor, type UniformStream } from "./operators.js";

interface Exports {
  memory: WebAssembly.Memory;
  magprune(
    state: number,
    count: number,
    keyA: number,
    keyB: number,
    q: number,
    x: number,
    out: number,
    len: number,
    cols: number,
    density: number,
    epsilon: number,
    rescale: number,
  ): void;
}

const kernel = lazyInstance<Exports>("della");

/** `magprune(x, density, epsilon, cols, rng, rescale, out)`, on the kernel when it can run. */
export function magpruneFast(
  x: Tensor,
  density: number,
  epsilon: number,
  cols: number,
  rng: UniformStream,
  rescale: boolean,
  out: Tensor = new Float32Array(x.length),
): Tensor {
  if (density >= 1 || !(rng instanceof Rng)) return magprune(x, density, epsilon, cols, rng, rescale, out);
  const k = kernel();
  const state = 0;
  const count = 16;
  const keyA = count + 3 * 2048 * 4;
  const keyB = keyA + 8 * cols;
  const q = keyB + 8 * cols;
  const xOff = q + 8 * cols;
  const outOff = xOff + 4 * x.length;
  if (k === null || !growMemory(k.memory, outOff + 4 * x.length))
    return magprune(x, density, epsilon, cols, rng, rescale, out);
  const buf = k.memory.buffer;
  const words = new Uint32Array(buf, state, 4);
  rng.saveState(words);
  new Float32Array(buf, xOff, x.length).set(x);
  k.magprune(state, count, keyA, keyB, q, xOff, outOff, x.length, cols, density, epsilon, rescale ? 1 : 0);
  rng.loadState(words);
  out.set(new Float32Array(buf, outOff, x.length));
  return out;
}
