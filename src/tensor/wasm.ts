/**
 * Loads merglot's WebAssembly kernels (AssemblyScript sources in wasm/, compiled by `npm run build` into
 * dist/src/wasm/NAME.wasm): portable SIMD code for element-wise and vector loops that V8's scalar JIT code runs
 * several times slower, with no native build at install. Every kernel has a JavaScript twin giving the same bits,
 * used when the module is missing (a tree built with tsc alone) or `MERGLOT_WASM=js` is set.
 *
 * Each instance has its own memory (a module's exports operate on byte offsets into it); memory only grows, in
 * growMemory, and growing detaches every view taken before, so callers take views after growing.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const PAGE = 65536;
const compiled = new Map<string, WebAssembly.Module | null>();
const errors = new Map<string, string>();

/** The compiled dist/src/wasm/NAME.wasm (compiled once per process), or null with the reason in `errors`. */
function compiledModule(name: string): WebAssembly.Module | null {
  let mod = compiled.get(name);
  if (mod !== undefined) return mod;
  if (process.env.MERGLOT_WASM === "js") {
    errors.set(name, "disabled by MERGLOT_WASM=js");
    mod = null;
  } else {
    const file = fileURLToPath(new URL(`../wasm/${name}.wasm`, import.meta.url));
    try {
      mod = new WebAssembly.Module(readFileSync(file));
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : (e as Error).message;
      errors.set(name, `${file} not usable (${why}): reinstall merglot, or run npm run build in a checkout`);
      mod = null;
    }
  }
  compiled.set(name, mod);
  return mod;
}

/** A fresh instance of dist/src/wasm/NAME.wasm, or null (the reason from wasmLoadError). */
export function wasmInstance<T>(name: string): (T & { memory: WebAssembly.Memory }) | null {
  const mod = compiledModule(name);
  if (mod === null) return null;
  return new WebAssembly.Instance(mod, {}).exports as unknown as T & { memory: WebAssembly.Memory };
}

/**
 * An instance made at its first use and kept for the thread (each has its own memory; module state, like every
 * scratch here); null, also later, when the module cannot be used.
 */
export function lazyInstance<T>(name: string): () => (T & { memory: WebAssembly.Memory }) | null {
  let instance: (T & { memory: WebAssembly.Memory }) | null | undefined;
  return () => (instance === undefined ? (instance = wasmInstance<T>(name)) : instance);
}

export function wasmLoadError(name: string): string | null {
  return errors.get(name) ?? null;
}

/** The kernel modules `npm run build` compiles (wasm/NAME.ts → dist/src/wasm/NAME.wasm). */
export const WASM_MODULES = ["ties", "symeig", "bidiag", "della"] as const;

/**
 * Why a kernel module cannot be used, for the user (a broken or partial install runs every merge on the slower
 * JavaScript twins without changing a bit of the output, so nothing else would ever tell); null when all load
 * or when MERGLOT_WASM=js switched them off on purpose.
 */
export function wasmProblem(): string | null {
  if (process.env.MERGLOT_WASM === "js") return null;
  for (const name of WASM_MODULES) {
    compiledModule(name);
    const e = errors.get(name);
    if (e)
      return `WebAssembly kernel ${e}; merges run on the JavaScript kernels (same results, several times slower)`;
  }
  return null;
}

/** Grows `memory` to at least `bytes`; false when the process may not reserve that much (use the JS kernel). */
export function growMemory(memory: WebAssembly.Memory, bytes: number): boolean {
  const have = memory.buffer.byteLength;
  if (bytes <= have) return true;
  try {
    memory.grow(Math.ceil((bytes - have) / PAGE));
    return true;
  } catch {
    return false;
  }
}
