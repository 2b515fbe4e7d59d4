/**
 * Process-lifetime scratch buffers for temporaries.
 *
 * Why: on the VMs this project runs on, the first touch of freshly allocated memory costs ~7 ms per MB
 * (page faults through the hypervisor; measured 150–250 ms for a 29 MB Float64Array), while reusing
 * memory the process already touched costs nothing. So large temporaries come from here: each role
 * names one buffer that only grows (by at least 1.5×) and is never returned until `releaseScratch()`.
 * Contents are unspecified on return. A role must not be used by two computations at once; roles are
 * prefixed by their module ("gemm.b", "qr.qt", …) to keep that easy to check.
 */
const f64 = new Map<string, Float64Array>();
const f32 = new Map<string, Float32Array>();

export function scratchF64(role: string, n: number): Float64Array {
  let s = f64.get(role);
  if (s === undefined || s.length < n) {
    s = new Float64Array(Math.max(n, Math.ceil(1.5 * (s?.length ?? 0))));
    f64.set(role, s);
  }
  return s.subarray(0, n);
}

export function scratchF32(role: string, n: number): Float32Array {
  let s = f32.get(role);
  if (s === undefined || s.length < n) {
    s = new Float32Array(Math.max(n, Math.ceil(1.5 * (s?.length ?? 0))));
    f32.set(role, s);
  }
  return s.subarray(0, n);
}

/** Scratch of the same element type as `like`. */
export function scratchLike<T extends Float32Array | Float64Array>(like: T, role: string, n: number): T {
  return (like instanceof Float64Array ? scratchF64(role, n) : scratchF32(role, n)) as T;
}

/** Drops every scratch buffer (e.g. after a merge, before a long-lived process goes idle). */
export function releaseScratch(): void {
  f64.clear();
  f32.clear();
}

/** Bytes currently held by scratch buffers. */
export function scratchBytes(): number {
  let n = 0;
  for (const s of f64.values()) n += s.byteLength;
  for (const s of f32.values()) n += s.byteLength;
  return n;
}
