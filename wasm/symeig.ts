/**
 * AssemblyScript source of the WebAssembly kernel of the symmetric eigensolver's Householder tridiagonalization
 * (built by `npm run build` into dist/src/wasm/symeig.wasm; used by src/tensor/symeig.ts, whose JavaScript loop
 * stays the fallback). Not TypeScript for tsc: i32, usize, f64, v128 and load/store are AssemblyScript built-ins.
 *
 * tridiagStep is everything of step k after the reflector is made, in the JavaScript loop's exact order of
 * float64 operations (no reassociation, no fused multiply-add), so both give the same bits: the symmetric
 * matrix–vector product keeps its sequential row sums (the element products and the column updates of p go
 * two at a time), and the rank-2 update is element-wise (two at a time).
 *
 * Memory (byte offsets, laid out by the caller): w f64[n·n] (upper triangle valid), v f64[n], p f64[n].
 */
export function tridiagStep(w: usize, n: i32, k: i32, L: i32, v: usize, p: usize, tau: f64): void {
  memory.fill(p, 0, (<usize>L) << 3);
  // p = A22·v from the upper triangle: row i adds a_ij·v_j to its own sum and a_ij·v_i to p_j (j > i)
  for (let i: i32 = 0; i < L; i++) {
    const ri = w + ((<usize>((k + 1 + i) * n + k + 1)) << 3);
    const vi = load<f64>(v + ((<usize>i) << 3));
    const vi2 = f64x2.splat(vi);
    let acc = load<f64>(ri + ((<usize>i) << 3)) * vi;
    let j = i + 1;
    for (; j + 2 <= L; j += 2) {
      const a = v128.load(ri + ((<usize>j) << 3));
      const prod = f64x2.mul(a, v128.load(v + ((<usize>j) << 3)));
      acc += f64x2.extract_lane(prod, 0);
      acc += f64x2.extract_lane(prod, 1);
      const pj = p + ((<usize>j) << 3);
      v128.store(pj, f64x2.add(v128.load(pj), f64x2.mul(a, vi2)));
    }
    for (; j < L; j++) {
      const aij = load<f64>(ri + ((<usize>j) << 3));
      acc += aij * load<f64>(v + ((<usize>j) << 3));
      const pj = p + ((<usize>j) << 3);
      store<f64>(pj, load<f64>(pj) + aij * vi);
    }
    const pi = p + ((<usize>i) << 3);
    store<f64>(pi, load<f64>(pi) + acc);
  }
  let pv: f64 = 0;
  for (let i: i32 = 0; i < L; i++) {
    const pi = p + ((<usize>i) << 3);
    const x = load<f64>(pi) * tau;
    store<f64>(pi, x);
    pv += x * load<f64>(v + ((<usize>i) << 3));
  }
  // w = p − (τ/2)(pᵀv)·v, then A22 ← A22 − v·wᵀ − w·vᵀ (upper triangle)
  const kk = 0.5 * tau * pv;
  for (let i: i32 = 0; i < L; i++) {
    const pi = p + ((<usize>i) << 3);
    store<f64>(pi, load<f64>(pi) - kk * load<f64>(v + ((<usize>i) << 3)));
  }
  for (let i: i32 = 0; i < L; i++) {
    const ri = w + ((<usize>((k + 1 + i) * n + k + 1)) << 3);
    const vi = load<f64>(v + ((<usize>i) << 3));
    const wi = load<f64>(p + ((<usize>i) << 3));
    const vi2 = f64x2.splat(vi);
    const wi2 = f64x2.splat(wi);
    let j = i;
    for (; j + 2 <= L; j += 2) {
      const a = ri + ((<usize>j) << 3);
      const upd = f64x2.add(
        f64x2.mul(vi2, v128.load(p + ((<usize>j) << 3))),
        f64x2.mul(wi2, v128.load(v + ((<usize>j) << 3))),
      );
      v128.store(a, f64x2.sub(v128.load(a), upd));
    }
    for (; j < L; j++) {
      const a = ri + ((<usize>j) << 3);
      store<f64>(
        a,
        load<f64>(a) - (vi * load<f64>(p + ((<usize>j) << 3)) + wi * load<f64>(v + ((<usize>j) << 3))),
      );
    }
  }
}
