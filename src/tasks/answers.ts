/**
 * Reading answers out of generated text.
 *
 * Choices (`--mode generate` on a multiple-choice task): the generation's first non-empty line, NFKC-normalised,
 * lowercased and stripped of surrounding whitespace, quotes and final punctuation, is compared with each choice
 * string and each label (normalised the same way): an exact match wins; otherwise the longest choice or label
 * the line starts with, not followed by a letter of an alphabetic script or a digit (so "negatively" names nothing,
 * while "ポジティブです" names ポジティブ). Nothing matching is a parse failure: a wrong answer,
 * counted and reported.
 *
 * Items (extraction): one item per line; leading list markers ("-", "*", "•", "1.", "1)") removed; blank
 * lines dropped.
 */

function normalise(s: string): string {
  return s
    .normalize("NFKC")
    .toLowerCase()
    .trim()
    .replace(/^["'“”„«»「『([]+/u, "")
    .replace(/["'“”»」』)\].,;:!?。、！？．]+$/u, "")
    .trim();
}

/** Index of the choice a generated answer names, or null when it names none (see the module comment). */
export function parseChoice(
  generation: string,
  choices: readonly string[],
  labels?: readonly string[],
): number | null {
  const line = generation.split("\n").find((l) => l.trim() !== "") ?? "";
  const answer = normalise(line);
  if (answer === "") return null;
  const candidates: { text: string; index: number }[] = [];
  choices.forEach((c, i) => candidates.push({ text: normalise(c), index: i }));
  labels?.forEach((l, i) => candidates.push({ text: normalise(l), index: i }));
  const exact = candidates.find((c) => c.text !== "" && c.text === answer);
  if (exact) return exact.index;
  const prefixed = candidates
    .filter(
      (c) =>
        c.text !== "" &&
        answer.startsWith(c.text) &&
        !/^[\p{Script=Latin}\p{Script=Cyrillic}\p{Script=Greek}\p{N}]/u.test(answer.slice(c.text.length)),
    )
    .sort((a, b) => b.text.length - a.text.length);
  return prefixed.length ? prefixed[0]!.index : null;
}

/** The items of a generated list, one per line. */
export function splitItems(generation: string): string[] {
  return generation
    .split("\n")
    .map((l) => l.replace(/^\s*(?:[-*•·]|\d+[.)])\s*/u, "").trim())
    .filter((l) => l !== "");
}
