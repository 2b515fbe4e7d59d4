/**
 * ROUGE-N, ROUGE-L and ROUGE-Lsum on token lists, with google-research rouge-score's exact definitions
 * (Lin, 2004, as implemented in its rouge_scorer.py), so that with its tokenizer the numbers are identical:
 *
 * - ROUGE-N: clipped n-gram overlap; P = overlap / max(1, #prediction n-grams), R = overlap /
 *   max(1, #target n-grams);
 * - ROUGE-L: longest common subsequence of the two token lists; P = LCS / |prediction|, R = LCS / |target|,
 *   0 when either is empty;
 * - ROUGE-Lsum: texts split into sentences at newlines (empty lines dropped); for each target sentence
 *   the union of its LCS with every prediction sentence (each LCS read out by rouge-score's backtracking,
 *   ties resolved the same way); a token counts as a hit at most as often as it occurs in both texts;
 * - F = 2PR / (P + R), 0 when P + R = 0.
 *
 * Note the argument order: `target` (the reference) first, `prediction` second, as rouge-score's
 * `score(target, prediction)`; precision is measured on the prediction.
 */
import { MerglotError } from "../../../errors.js";
import type { Tokenizer } from "./tokenize.js";

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

/** "rouge1".."rouge9", "rougeL", "rougeLsum" (rouge-score accepts exactly these). */
export type RougeType = string;

export function checkRougeType(type: string): void {
  if (type === "rougeL" || type === "rougeLsum") return;
  const m = /^rouge([0-9])$/.exec(type);
  if (!m || m[1] === "0") {
    throw new MerglotError(
      "metrics.rouge-type",
      `rouge: invalid ROUGE type "${type}" (valid: rouge1 … rouge9, rougeL, rougeLsum)`,
    );
  }
}

export function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    // \u0000 cannot occur inside a token, so joined keys are unambiguous.
    const key = tokens.slice(i, i + n).join("\u0000");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

export function rougeN(target: readonly string[], prediction: readonly string[], n: number): RougeScore {
  const t = ngramCounts(target, n);
  const p = ngramCounts(prediction, n);
  let overlap = 0;
  for (const [gram, c] of t) overlap += Math.min(c, p.get(gram) ?? 0);
  let tCount = 0;
  let pCount = 0;
  for (const c of t.values()) tCount += c;
  for (const c of p.values()) pCount += c;
  const precision = overlap / Math.max(pCount, 1);
  const recall = overlap / Math.max(tCount, 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** (|ref|+1) × (|can|+1) LCS length table, row-major. */
function lcsTable(ref: readonly string[], can: readonly string[]): Int32Array {
  const cols = can.length + 1;
  const t = new Int32Array((ref.length + 1) * cols);
  for (let i = 1; i <= ref.length; i++) {
    for (let j = 1; j <= can.length; j++) {
      t[i * cols + j] =
        ref[i - 1] === can[j - 1]
          ? t[(i - 1) * cols + j - 1] + 1
          : Math.max(t[(i - 1) * cols + j], t[i * cols + j - 1]);
    }
  }
  return t;
}

export function lcsLength(ref: readonly string[], can: readonly string[]): number {
  return lcsTable(ref, can)[ref.length * (can.length + 1) + can.length];
}

/** Indices into `ref` of one LCS, read back as rouge-score's `_backtrack_norec` does. */
export function lcsIndices(ref: readonly string[], can: readonly string[]): number[] {
  const t = lcsTable(ref, can);
  const cols = can.length + 1;
  let i = ref.length;
  let j = can.length;
  const out: number[] = [];
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i * cols + j - 1] > t[(i - 1) * cols + j]) {
      j--;
    } else {
      i--;
    }
  }
  return out.reverse();
}

export function rougeL(target: readonly string[], prediction: readonly string[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const lcs = lcsLength(target, prediction);
  const precision = lcs / prediction.length;
  const recall = lcs / target.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** Summary-level LCS over sentence token lists (rouge-score `_summary_level_lcs`). */
export function rougeLsum(
  targetSents: readonly string[][],
  predictionSents: readonly string[][],
): RougeScore {
  const zero = { precision: 0, recall: 0, fmeasure: 0 };
  if (targetSents.length === 0 || predictionSents.length === 0) return zero;
  const m = targetSents.reduce((a, s) => a + s.length, 0);
  const n = predictionSents.reduce((a, s) => a + s.length, 0);
  if (m === 0 || n === 0) return zero;
  const countR = new Map<string, number>();
  const countC = new Map<string, number>();
  for (const s of targetSents) for (const t of s) countR.set(t, (countR.get(t) ?? 0) + 1);
  for (const s of predictionSents) for (const t of s) countC.set(t, (countC.get(t) ?? 0) + 1);
  let hits = 0;
  for (const ref of targetSents) {
    const union = new Set<number>();
    for (const can of predictionSents) for (const i of lcsIndices(ref, can)) union.add(i);
    for (const i of [...union].sort((a, b) => a - b)) {
      const tok = ref[i];
      if ((countC.get(tok) ?? 0) > 0 && (countR.get(tok) ?? 0) > 0) {
        hits++;
        countC.set(tok, countC.get(tok)! - 1);
        countR.set(tok, countR.get(tok)! - 1);
      }
    }
  }
  const precision = hits / n;
  const recall = hits / m;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** rouge-score's sentence split for Lsum: newline-separated, empty strings dropped. */
export function summarySentences(text: string): string[] {
  return text.split("\n").filter((s) => s.length > 0);
}

/** Scores one (target, prediction) pair for each requested type with the given tokenizer. */
export function scoreRouge(
  target: string,
  prediction: string,
  types: readonly RougeType[],
  tokenize: Tokenizer,
): Record<RougeType, RougeScore> {
  types.forEach(checkRougeType);
  const needsFlat = types.some((t) => t !== "rougeLsum");
  const tTokens = needsFlat ? tokenize(target) : [];
  const pTokens = needsFlat ? tokenize(prediction) : [];
  const out: Record<RougeType, RougeScore> = {};
  for (const type of types) {
    if (type === "rougeL") out[type] = rougeL(tTokens, pTokens);
    else if (type === "rougeLsum") {
      out[type] = rougeLsum(
        summarySentences(target).map(tokenize),
        summarySentences(prediction).map(tokenize),
      );
    } else out[type] = rougeN(tTokens, pTokens, Number(type.slice(5)));
  }
  return out;
}
