/**
 * The optional heavy packages ("backends") and the one way to load them.
 *
 * `npm install merglot` installs only the small core (merge, inspect, convert, score, the built-in engine).
 * Five packages are optional peer dependencies (package.json `peerDependenciesMeta`): they are hundreds of
 * megabytes, ship native binaries for every platform, or run install scripts that reach outside the npm
 * registry. Each is imported here at first use, never at start-up, so that everything that does not need
 * it keeps working without it. When a feature needs one that is not installed, the user gets one line
 * naming the package and the exact command that installs it (a MerglotError: no stack trace).
 *
 * `tested` is the version the repository's own tests run with (its devDependency); package.json's
 * `peerDependencies` range starts from it (test/backends.test.ts checks both).
 */
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { MerglotError } from "./errors.js";

export interface BackendInfo {
  /** The version the repository tests with; the install command pins it. */
  readonly tested: string;
  /** What needs the package, as a noun phrase ("the llama.cpp runner"). */
  readonly feature: string;
  /** Extra npm flags the install needs (onnxruntime-node downloads CUDA files unless told to skip). */
  readonly npmFlags?: string;
}

export const BACKENDS = {
  "node-llama-cpp": { tested: "3.22.1", feature: "the llama.cpp runner" },
  "@huggingface/transformers": {
    tested: "4.3.1",
    feature: "BERTScore with a transformers.js model",
    // transformers.js depends on onnxruntime-node, whose postinstall otherwise downloads CUDA libraries.
    npmFlags: "--onnxruntime-node-install=skip",
  },
  "onnxruntime-node": {
    tested: "1.30.0",
    feature: "the native matrix kernel",
    npmFlags: "--onnxruntime-node-install=skip",
  },
  kuromoji: { tested: "0.1.2", feature: "Japanese word segmentation (kuromoji)" },
  "jieba-wasm": { tested: "2.4.0", feature: "Chinese word segmentation (jieba)" },
} as const satisfies Record<string, BackendInfo>;

export type BackendName = keyof typeof BACKENDS;

/** The command that installs `name` next to merglot. */
export function installCommand(name: BackendName): string {
  const info: BackendInfo = BACKENDS[name];
  return `npm install ${name}@${info.tested}${info.npmFlags ? ` ${info.npmFlags}` : ""}`;
}

/** The one-line error for a backend that is not installed; `feature` overrides the default wording. */
export function missingBackendError(name: BackendName, feature?: string, cause?: unknown): MerglotError {
  return new MerglotError(
    "backend.missing",
    `${feature ?? BACKENDS[name].feature} needs the optional package ${name}, which is not installed; ` +
      `install it next to merglot with: ${installCommand(name)} (add -g if merglot is installed globally)`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Whether `e` says that package `name` itself cannot be found (as opposed to the package being present but
 * failing, e.g. one of its own dependencies missing, which must not be reported as "not installed").
 * ESM: ERR_MODULE_NOT_FOUND "Cannot find package 'NAME' imported from …"; CommonJS: MODULE_NOT_FOUND
 * "Cannot find module 'NAME'" (or 'NAME/sub/path').
 */
export function isMissingPackage(e: unknown, name: string): boolean {
  const err = e as NodeJS.ErrnoException | null;
  if (err === null || typeof err !== "object" || typeof err.message !== "string") return false;
  if (err.code !== "ERR_MODULE_NOT_FOUND" && err.code !== "MODULE_NOT_FOUND") return false;
  const firstLine = err.message.split("\n")[0];
  return firstLine.includes(`'${name}'`) || firstLine.includes(`'${name}/`);
}

function brokenBackendError(name: BackendName, feature: string | undefined, e: unknown): MerglotError {
  const first = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  return new MerglotError(
    "backend.broken",
    `${feature ?? BACKENDS[name].feature}: the optional package ${name} is installed but cannot be loaded ` +
      `(${first}); reinstall it with: ${installCommand(name)}`,
    { cause: e },
  );
}

const imported = new Map<BackendName, Promise<unknown>>();

/**
 * The backend's ES module namespace, imported once per process. Throws a MerglotError when the package is
 * absent ("backend.missing") or present but failing to load ("backend.broken"). `feature` names what
 * needed it in the error (default: the table's wording).
 */
export function importBackend<T>(name: BackendName, feature?: string): Promise<T> {
  let p = imported.get(name);
  if (p === undefined) {
    // A string variable, not a literal, keeps TypeScript from typing (and requiring) the package here.
    const specifier: string = name;
    p = import(specifier);
    imported.set(name, p);
    // A failed import is not cached: the user may install the package and retry in the same process.
    p.catch(() => imported.delete(name));
  }
  return p.then(
    (m) => m as T,
    (e: unknown) => {
      throw isMissingPackage(e, name)
        ? missingBackendError(name, feature, e)
        : brokenBackendError(name, feature, e);
    },
  );
}

const requireHere = createRequire(import.meta.url);

/**
 * Synchronous load of a CommonJS backend (or a file inside it, `subpath` like "dist/binding.js"), for call
 * sites that cannot await (the matrix kernels). Same errors as importBackend.
 */
export function requireBackend<T>(name: BackendName, subpath?: string, feature?: string): T {
  try {
    return requireHere(subpath === undefined ? name : `${name}/${subpath}`) as T;
  } catch (e) {
    throw isMissingPackage(e, name)
      ? missingBackendError(name, feature, e)
      : brokenBackendError(name, feature, e);
  }
}

/** The folder a backend is installed in (kuromoji reads its dictionary files from there). */
export function backendDirectory(name: BackendName, feature?: string): string {
  try {
    return dirname(requireHere.resolve(`${name}/package.json`));
  } catch (e) {
    throw isMissingPackage(e, name)
      ? missingBackendError(name, feature, e)
      : brokenBackendError(name, feature, e);
  }
}
