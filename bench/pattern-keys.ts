/**
 * bench/pattern-keys: the crafted rank_pattern key `(a|a)*b` against module names ending in a run of n a's,
 * matched PEFT's way `(.*\.)?(KEY)$` by a backtracking engine (JavaScript RegExp, what merglot used before;
 * Python's `re` behaves the same) and by merglot's RE2 matcher. The backtracking time doubles per character,
 * so it is measured only up to n = 26; RE2 is measured at n = 26 and at n = 100,000.
 *   node dist/bench/pattern-keys.js
 */
import { matchPatternKey } from "../src/formats/peft-patterns.js";

const KEY = "(a|a)*b";

function time(fn: () => unknown): { ms: number; value: unknown } {
  const t0 = performance.now();
  const value = fn();
  return { ms: performance.now() - t0, value };
}

const backtracking = new RegExp(`^(.*\\.)?(${KEY})$`);
console.log("n      backtracking (RegExp)    RE2 (merglot)");
for (const n of [18, 20, 22, 24, 26]) {
  const name = `model.layers.0.mlp.${"a".repeat(n)}`;
  const bt = time(() => backtracking.test(name));
  const re2 = time(() => matchPatternKey([KEY], name));
  console.log(
    `${String(n).padEnd(6)} ${bt.ms.toFixed(1).padStart(10)} ms            ${re2.ms.toFixed(2).padStart(8)} ms`,
  );
}
const long = `model.layers.0.mlp.${"a".repeat(100_000)}`;
const big = time(() => matchPatternKey([KEY], long));
console.log(`RE2 at n = 100000: ${big.ms.toFixed(1)} ms (match: ${String(big.value)})`);
