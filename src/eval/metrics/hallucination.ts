/**
 * Hallucination rate of extracted items: the share of the items a model extracted from an input that do
 * not occur in that input.
 *
 * Normalisation, applied to the input and to every item before matching:
 * 1. Unicode NFKC (full-width forms, ligatures and compatibility characters unified);
 * 2. every run of whitespace (any Unicode space, tab or newline) becomes one space; ends are trimmed;
 * 3. with `caseFold`, lowercase (off by default: "Apple" the company is not "apple" the fruit).
 *
 * Matching: an item is supported when its normalised text is a substring of the normalised input
 * (`exact`, the default). With `fuzzy`, an item that is not a substring is still supported when the longest
 * common subsequence of its tokens with the input's tokens covers at least `threshold` (default 0.8) of the
 * item's tokens (tokens: letter/digit runs, CJK characters one each), which forgives reordered or
 * partly inflected spans.
 *
 * Empty cases, defined so that no division by zero is ever hidden:
 * - an item that is empty after normalisation is not an extraction: it is skipped and counted in
 *   `emptyItems`, never in the rate;
 * - an example with no (non-empty) items contributes nothing; its own rate is null;
 * - a corpus with no items at all has rate 0 (nothing was generated, so nothing was hallucinated) and
 *   `items: 0`, so a report can tell "0 of 0" from "0 of 100";
 * - an empty input supports no item: every item of that example is unsupported;
 * - no examples at all is an error, as for every metric.
 */
import { MerglotError } from "../../errors.js";
import { lcsLength } from "./rouge/score.js";
import { splitWords } from "./rouge/tokenize.js";
import { checkNonEmpty } from "./validate.js";

export interface HallucinationExample {
  /** The text the items were extracted from. */
  input: string;
  /** The extracted items (entities, spans, values). */
  items: readonly string[];
}

export interface HallucinationOptions {
  caseFold?: boolean;
  match?: "exact" | "fuzzy";
  /** Fuzzy only: minimum LCS coverage of the item's tokens, in (0, 1] (default 0.8). */
  threshold?: number;
}

export interface HallucinationExampleResult {
  items: number;
  unsupported: number;
  /** The unsupported items, as given. */
  unsupportedItems: string[];
  /** unsupported / items, or null when the example has no items. */
  rate: number | null;
}

export interface HallucinationResult {
  /** Unsupported items / all items over the corpus (micro average); 0 when there are no items. */
  rate: number;
  items: number;
  unsupported: number;
  emptyItems: number;
  /** Mean of per-example rates over examples that have items; null when none has. */
  macroRate: number | null;
  perExample: HallucinationExampleResult[];
}

export function normalizeForMatching(text: string, caseFold: boolean): string {
  const s = text.normalize("NFKC").replace(/\s+/gu, " ").trim();
  return caseFold ? s.toLowerCase() : s;
}

/** Share of the item's tokens covered by its LCS with the input's tokens (1 for an item with no tokens). */
export function tokenCoverage(item: string, input: string): number {
  const a = splitWords(item);
  if (a.length === 0) return 1;
  return lcsLength(a, splitWords(input)) / a.length;
}

export function hallucinationRate(
  examples: readonly HallucinationExample[],
  options: HallucinationOptions = {},
): HallucinationResult {
  const metric = "hallucination";
  checkNonEmpty(metric, examples.length, "examples");
  const caseFold = options.caseFold ?? false;
  const match = options.match ?? "exact";
  if (match !== "exact" && match !== "fuzzy") {
    throw new MerglotError(
      "metrics.option",
      `${metric}: match must be "exact" or "fuzzy", got "${String(match)}"`,
    );
  }
  const threshold = options.threshold ?? 0.8;
  if (!(threshold > 0 && threshold <= 1)) {
    throw new MerglotError("metrics.option", `${metric}: threshold must lie in (0, 1], got ${threshold}`);
  }
  let items = 0;
  let unsupported = 0;
  let emptyItems = 0;
  const perExample = examples.map((ex, n) => {
    if (typeof ex.input !== "string" || !Array.isArray(ex.items)) {
      throw new MerglotError(
        "metrics.value",
        `${metric}: example ${n + 1} needs a string input and a list of items`,
      );
    }
    const input = normalizeForMatching(ex.input, caseFold);
    const result: HallucinationExampleResult = { items: 0, unsupported: 0, unsupportedItems: [], rate: null };
    ex.items.forEach((raw, k) => {
      if (typeof raw !== "string") {
        throw new MerglotError("metrics.value", `${metric}: example ${n + 1} item ${k + 1} is not a string`);
      }
      const item = normalizeForMatching(raw, caseFold);
      if (item === "") {
        emptyItems++;
        return;
      }
      result.items++;
      const supported =
        input.includes(item) || (match === "fuzzy" && tokenCoverage(item, input) >= threshold);
      if (!supported) {
        result.unsupported++;
        result.unsupportedItems.push(raw);
      }
    });
    if (result.items > 0) result.rate = result.unsupported / result.items;
    items += result.items;
    unsupported += result.unsupported;
    return result;
  });
  const rated = perExample.filter((e) => e.rate !== null);
  return {
    rate: items === 0 ? 0 : unsupported / items,
    items,
    unsupported,
    emptyItems,
    macroRate: rated.length === 0 ? null : rated.reduce((a, e) => a + e.rate!, 0) / rated.length,
    perExample,
  };
}
