/**
 * AssemblyScript source of the WebAssembly kernels of the SVD's Golub–Kahan bidiagonalization (built by
 * `npm run build` into dist/src/wasm/bidiag.wasm; used by src/tensor/svd.ts, whose JavaScript loop stays the
 * fallback). Not TypeScript for tsc: i32, usize, f64, v128 and load/store are AssemblyScript built-ins.
 *
 * Step j of the JavaScript loop, after its left reflector u (col, u[0] = 1) is made, in that loop's exact order
 * of float64 operations (no reassociation, no fused multiply-add), so both give the same bits; the column
 * index c runs two at a time, and the dot products that sum along c keep their sequential order.
 *
 * Memory (byte offsets, laid out by the caller): w f64[n·n] (row-major), col f64[n], acc f64[n], v f64[n].
 */

/**
 * acc[c] = τ_L·Σ_i u_i·w[j+i][c] for c = j+1…n−1 (rows four at a time, then one at a time, as the JavaScript
 * loop), then row j's left update w[j][c] −= acc[c].
 */
export function bidiagLeft(w: usize, n: i32, j: i32, L: i32, col: usize, acc: usize, tl: f64): void {
  const c0 = j + 1;
  const a0 = acc + ((<usize>c0) << 3);
  const cn = n - c0;
  memory.fill(a0, 0, (<usize>cn) << 3);
  let i: i32 = 0;
  for (; i + 3 < L; i += 4) {
    const u0 = load<f64>(col + ((<usize>i) << 3));
    const u1 = load<f64>(col + ((<usize>(i + 1)) << 3));
    const u2 = load<f64>(col + ((<usize>(i + 2)) << 3));
    const u3 = load<f64>(col + ((<usize>(i + 3)) << 3));
    const v0 = f64x2.splat(u0);
    const v1 = f64x2.splat(u1);
    const v2 = f64x2.splat(u2);
    const v3 = f64x2.splat(u3);
    const r0 = w + ((<usize>((j + i) * n + c0)) << 3);
    const r1 = r0 + ((<usize>n) << 3);
    const r2 = r1 + ((<usize>n) << 3);
    const r3 = r2 + ((<usize>n) << 3);
    let c: i32 = 0;
    for (; c + 2 <= cn; c += 2) {
      const o = (<usize>c) << 3;
      const t = f64x2.add(
        f64x2.add(
          f64x2.add(f64x2.mul(v0, v128.load(r0 + o)), f64x2.mul(v1, v128.load(r1 + o))),
          f64x2.mul(v2, v128.load(r2 + o)),
        ),
        f64x2.mul(v3, v128.load(r3 + o)),
      );
      v128.store(a0 + o, f64x2.add(v128.load(a0 + o), t));
    }
    for (; c < cn; c++) {
      const o = (<usize>c) << 3;
      const t =
        u0 * load<f64>(r0 + o) + u1 * load<f64>(r1 + o) + u2 * load<f64>(r2 + o) + u3 * load<f64>(r3 + o);
      store<f64>(a0 + o, load<f64>(a0 + o) + t);
    }
  }
  for (; i < L; i++) {
    const ui = load<f64>(col + ((<usize>i) << 3));
    const vi = f64x2.splat(ui);
    const r = w + ((<usize>((j + i) * n + c0)) << 3);
    let c: i32 = 0;
    for (; c + 2 <= cn; c += 2) {
      const o = (<usize>c) << 3;
      v128.store(a0 + o, f64x2.add(v128.load(a0 + o), f64x2.mul(vi, v128.load(r + o))));
    }
    for (; c < cn; c++) {
      const o = (<usize>c) << 3;
      store<f64>(a0 + o, load<f64>(a0 + o) + ui * load<f64>(r + o));
    }
  }
  const t2 = f64x2.splat(tl);
  const rj = w + ((<usize>(j * n + c0)) << 3);
  let c: i32 = 0;
  for (; c + 2 <= cn; c += 2) {
    const o = (<usize>c) << 3;
    const a = f64x2.mul(v128.load(a0 + o), t2);
    v128.store(a0 + o, a);
    v128.store(rj + o, f64x2.sub(v128.load(rj + o), a));
  }
  for (; c < cn; c++) {
    const o = (<usize>c) << 3;
    const a = load<f64>(a0 + o) * tl;
    store<f64>(a0 + o, a);
    store<f64>(rj + o, load<f64>(rj + o) - a);
  }
}

/**
 * Rows j+1…j+L−1, columns j+1…n−1: the left update w −= u_i·acc (when τ_L ≠ 0) fused with the right reflector's
 * dot product s = τ_R·Σ_c w[c]·v[c] (sequential in c), then w −= s·v (when τ_R ≠ 0).
 */
export function bidiagRows(
  w: usize,
  n: i32,
  j: i32,
  L: i32,
  col: usize,
  acc: usize,
  v: usize,
  tl: f64,
  tr: f64,
): void {
  const c0 = j + 1;
  const cn = n - c0;
  const a0 = acc + ((<usize>c0) << 3);
  const v0 = v + ((<usize>c0) << 3);
  for (let i: i32 = 1; i < L; i++) {
    const r = w + ((<usize>((j + i) * n + c0)) << 3);
    const f = tl != 0 ? load<f64>(col + ((<usize>i) << 3)) : 0;
    const f2 = f64x2.splat(f);
    if (tr == 0) {
      if (f != 0) {
        let c: i32 = 0;
        for (; c + 2 <= cn; c += 2) {
          const o = (<usize>c) << 3;
          v128.store(r + o, f64x2.sub(v128.load(r + o), f64x2.mul(f2, v128.load(a0 + o))));
        }
        for (; c < cn; c++) {
          const o = (<usize>c) << 3;
          store<f64>(r + o, load<f64>(r + o) - f * load<f64>(a0 + o));
        }
      }
      continue;
    }
    let s: f64 = 0;
    let c: i32 = 0;
    if (f != 0) {
      for (; c + 2 <= cn; c += 2) {
        const o = (<usize>c) << 3;
        const x = f64x2.sub(v128.load(r + o), f64x2.mul(f2, v128.load(a0 + o)));
        v128.store(r + o, x);
        const p = f64x2.mul(x, v128.load(v0 + o));
        s += f64x2.extract_lane(p, 0);
        s += f64x2.extract_lane(p, 1);
      }
      for (; c < cn; c++) {
        const o = (<usize>c) << 3;
        const x = load<f64>(r + o) - f * load<f64>(a0 + o);
        store<f64>(r + o, x);
        s += x * load<f64>(v0 + o);
      }
    } else {
      for (; c + 2 <= cn; c += 2) {
        const o = (<usize>c) << 3;
        const p = f64x2.mul(v128.load(r + o), v128.load(v0 + o));
        s += f64x2.extract_lane(p, 0);
        s += f64x2.extract_lane(p, 1);
      }
      for (; c < cn; c++) {
        const o = (<usize>c) << 3;
        s += load<f64>(r + o) * load<f64>(v0 + o);
      }
    }
    s *= tr;
    const s2 = f64x2.splat(s);
    c = 0;
    for (; c + 2 <= cn; c += 2) {
      const o = (<usize>c) << 3;
      v128.store(r + o, f64x2.sub(v128.load(r + o), f64x2.mul(s2, v128.load(v0 + o))));
    }
    for (; c < cn; c++) {
      const o = (<usize>c) << 3;
      store<f64>(r + o, load<f64>(r + o) - s * load<f64>(v0 + o));
    }
  }
}
