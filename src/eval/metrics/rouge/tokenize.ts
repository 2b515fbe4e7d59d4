/**
 * The two ways ROUGE turns text into tokens.
 *
 * `rouge-score` mode reproduces google-research rouge-score's DefaultTokenizer exactly: lowercase, every
 * character outside [a-z0-9] becomes a space, split on whitespace, Porter-stem (NLTK) tokens longer than
 * three characters when stemming is on, keep tokens that are [a-z0-9]+. This is why it scores Chinese and
 * Japanese as 0 and splits "über" into "ber": the numbers are comparable with published ones, not right.
 *
 * `multilingual` mode is meant to be right in every language:
 * 1. Unicode NFKC normalisation (full-width letters and digits become ASCII, compatibility forms are
 *    unified), then lowercase;
 * 2. Chinese (`zh`) is segmented into words with jieba, Japanese (`ja`) with the kuromoji morphological
 *    analyser (or into single characters with `japanese: "chars"`); in any other language, Han, Hiragana
 *    and Katakana characters become one token each (as BERT's basic tokenizer does) so CJK fragments
 *    still count;
 * 3. words are maximal runs of letters, combining marks and digits (\p{L}\p{M}\p{N}), so accented words
 *    stay whole; punctuation and symbols are dropped;
 *    Thai, Lao, Khmer and Burmese, also written without spaces, are split by ICU's word segmenter;
 * 4. with stemming on, tokens longer than three characters are stemmed where a stemmer exists: English
 *    with the same Porter stemmer as rouge-score, German and French with Snowball; Chinese and Japanese
 *    need none. Asking for stemming in another language is an error rather than a silent no-op.
 * Identical texts always give identical token lists, so they score 1 in every language (a text with no
 * letter or digit at all, e.g. only punctuation or emoji, has no tokens and scores 0, as in rouge-score).
 */
import { join } from "node:path";
import { backendDirectory, importBackend } from "../../../backends.js";
import { MerglotError } from "../../../errors.js";
import { porterStem } from "./porter.js";
import { frenchStem } from "./snowball-french.js";
import { germanStem } from "./snowball-german.js";

export type Tokenizer = (text: string) => string[];

/** rouge-score's `tokenize.tokenize(text, stemmer)`. */
export function rougeScoreTokenize(text: string, stem = false): string[] {
  const spaced = text.toLowerCase().replace(/[^a-z0-9]+/g, " ");
  let tokens = spaced.split(/\s+/);
  if (stem) tokens = tokens.map((t) => (t.length > 3 ? porterStem(t) : t));
  return tokens.filter((t) => /^[a-z0-9]+$/.test(t));
}

export type JapaneseSegmentation = "kuromoji" | "chars";

export interface MultilingualOptions {
  /** Language code (BCP 47; only the primary subtag is used), e.g. "en", "de", "fr", "ja", "zh". */
  lang: string;
  stem?: boolean;
  /** How Japanese is split into words (default "kuromoji"). */
  japanese?: JapaneseSegmentation;
}

const STEMMERS: Record<string, (word: string) => string> = { en: porterStem, de: germanStem, fr: frenchStem };
const NO_STEMMING_NEEDED = new Set(["zh", "ja", "ko", "th", "lo", "km", "my"]);
/** Languages written without spaces between words, split by ICU's dictionaries (Intl.Segmenter). */
const UNSPACED_SCRIPTS = new Set(["th", "lo", "km", "my"]);

const WORD = /[\p{L}\p{M}\p{N}]+/gu;
const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;
const CJK_SPLIT = /([\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}])/u;

export function normalizeText(text: string): string {
  return text.normalize("NFKC").toLowerCase();
}

/** Words of a piece of text: letter/mark/digit runs; CJK characters one token each. */
export function splitWords(text: string): string[] {
  const out: string[] = [];
  for (const piece of text.split(CJK_SPLIT)) {
    if (piece === "") continue;
    if ([...piece].length === 1 && CJK_CHAR.test(piece)) {
      out.push(piece);
      continue;
    }
    for (const m of piece.matchAll(WORD)) out.push(m[0]);
  }
  return out;
}

export function primaryLanguage(lang: string): string {
  const primary = lang.trim().toLowerCase().split(/[-_]/)[0];
  if (!/^[a-z]{2,3}$/.test(primary)) {
    throw new MerglotError(
      "metrics.lang",
      `rouge: "${lang}" is not a language code (expected e.g. en, de, fr, ja, zh)`,
    );
  }
  return primary;
}

let jieba: Promise<{ cut(text: string, hmm?: boolean): string[] }> | null = null;
let kuromojiTokenizer: Promise<{ tokenize(text: string): { surface_form: string }[] }> | null = null;

// Both segmenters are optional peer dependencies (backends.ts): imported at first use, with one clear line
// naming the package and its install command when absent. Failures are not cached.
function loadJieba(): Promise<{ cut(text: string, hmm?: boolean): string[] }> {
  jieba ??= importBackend<{ cut(text: string, hmm?: boolean): string[] }>(
    "jieba-wasm",
    "Chinese ROUGE with the multilingual tokenizer (jieba word segmentation)",
  );
  jieba.catch(() => (jieba = null));
  return jieba;
}

function loadKuromoji(): Promise<{ tokenize(text: string): { surface_form: string }[] }> {
  const feature = "Japanese ROUGE with the multilingual tokenizer (kuromoji word segmentation)";
  kuromojiTokenizer ??= importBackend<{ default: typeof import("kuromoji") }>("kuromoji", feature).then(
    (m) =>
      new Promise((resolvePromise, reject) => {
        const dicPath = join(backendDirectory("kuromoji", feature), "dict");
        m.default.builder({ dicPath }).build((err, tokenizer) => {
          if (err)
            reject(
              new MerglotError(
                "metrics.segmenter",
                `kuromoji: cannot load its dictionary from ${dicPath}: ${err.message}`,
              ),
            );
          else resolvePromise(tokenizer);
        });
      }),
  );
  kuromojiTokenizer.catch(() => (kuromojiTokenizer = null));
  return kuromojiTokenizer;
}

/**
 * A multilingual tokenizer for one language. Async because the Chinese and Japanese segmenters load
 * their dictionaries on first use (once per process; kuromoji takes a few seconds).
 */
export async function multilingualTokenizer(options: MultilingualOptions): Promise<Tokenizer> {
  const lang = primaryLanguage(options.lang);
  let stemmer: ((w: string) => string) | null = null;
  if (options.stem) {
    if (Object.hasOwn(STEMMERS, lang)) stemmer = STEMMERS[lang];
    else if (!NO_STEMMING_NEEDED.has(lang)) {
      throw new MerglotError(
        "metrics.lang",
        `rouge: no stemmer for language "${lang}" (stemmers: ${Object.keys(STEMMERS).join(", ")}); turn stemming off`,
      );
    }
  }
  const japanese = options.japanese ?? "kuromoji";
  if (japanese !== "kuromoji" && japanese !== "chars") {
    throw new MerglotError("metrics.option", `rouge: japanese segmentation must be "kuromoji" or "chars"`);
  }
  // `segment` cuts normalised text into words where spaces do not; `segmented` says whether it did.
  let segment: (text: string) => string[] = (t) => [t];
  let segmented = true;
  if (lang === "zh") {
    const j = await loadJieba();
    segment = (t) => j.cut(t, true);
  } else if (lang === "ja" && japanese === "kuromoji") {
    const k = await loadKuromoji();
    segment = (t) => k.tokenize(t).map((x) => x.surface_form);
  } else if (UNSPACED_SCRIPTS.has(lang)) {
    const segmenter = new Intl.Segmenter(lang, { granularity: "word" });
    segment = (t) => [...segmenter.segment(t)].filter((x) => x.isWordLike).map((x) => x.segment);
  } else {
    segmented = false;
  }
  return (text: string) => {
    const tokens: string[] = [];
    for (const piece of segment(normalizeText(text))) {
      // A segmenter's piece is one word; word splitting still drops punctuation and splits mixed pieces
      // such as "gpt-4", but keeps multi-character CJK words whole. Unsegmented text falls back to one
      // token per CJK character.
      const words = segmented ? wordRuns(piece) : splitWords(piece);
      for (const w of words) tokens.push(stemmer && [...w].length > 3 ? stemmer(w) : w);
    }
    return tokens;
  };
}

function wordRuns(text: string): string[] {
  return [...text.matchAll(WORD)].map((m) => m[0]);
}
