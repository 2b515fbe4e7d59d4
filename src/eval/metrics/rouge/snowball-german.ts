/**
 * The German Snowball stemmer (snowballstem.org, "german"), with the same reading of the algorithm as
 * NLTK's `SnowballStemmer("german")`, so that stems agree with the Python tool most users compare against:
 *
 * 1. lowercase; ß → ss; u and y between vowels are marked (U, Y) so they count as consonants;
 * 2. R1 and R2 as usual, R1 moved so that at least three letters precede it;
 * 3. step 1 deletes the first of ern, em, er, en, es, e, s that ends R1 (s only after b d f g h k l m n r t;
 *    after "niss" the e/en/es ending takes one s with it);
 * 4. step 2 deletes the first of est, en, er, st that ends R1 (st only after b d f g h k l m n t with at
 *    least three letters before those);
 * 5. step 3 removes the derivational suffixes isch lich heit keit end ung ig ik from R2, with their rules;
 * 6. umlauts lose their dots and the marks are undone.
 */

const VOWELS = "aeiouyäöü";
const S_ENDING = "bdfghklmnrt";
const ST_ENDING = "bdfghklmnt";
const STEP1 = ["ern", "em", "er", "en", "es", "e", "s"];
const STEP2 = ["est", "en", "er", "st"];
const STEP3 = ["isch", "lich", "heit", "keit", "end", "ung", "ig", "ik"];

const isVowel = (c: string | undefined): boolean => c !== undefined && VOWELS.includes(c);

/** Tail of `s` after the first non-vowel that follows a vowel ("" if none). */
function regionAfterVc(s: string): string {
  for (let i = 1; i < s.length; i++) {
    if (!isVowel(s[i]) && isVowel(s[i - 1])) return s.slice(i + 1);
  }
  return "";
}

/** `s.slice(from, to)` with Python's negative-index slice semantics (clamped at 0). */
function pySlice(s: string, from: number, to: number): string {
  const f = from < 0 ? Math.max(0, s.length + from) : from;
  const t = to < 0 ? Math.max(0, s.length + to) : to;
  return f < t ? s.slice(f, t) : "";
}

export function germanStem(input: string): string {
  // The algorithm works on code points; German letters are all single UTF-16 units after NFC.
  let word = input.toLowerCase().replaceAll("ß", "ss");
  const chars = [...word];
  for (let i = 1; i < chars.length - 1; i++) {
    if (isVowel(chars[i - 1]) && isVowel(chars[i + 1])) {
      if (chars[i] === "u") chars[i] = "U";
      else if (chars[i] === "y") chars[i] = "Y";
    }
  }
  word = chars.join("");

  let r1 = regionAfterVc(word);
  let r2 = regionAfterVc(r1);
  for (let i = 1; i < word.length; i++) {
    if (!isVowel(word[i]) && isVowel(word[i - 1])) {
      if (i + 1 < 3) r1 = word.slice(3);
      break;
    }
  }
  const cut = (n: number): void => {
    word = word.slice(0, word.length - n);
    r1 = r1.slice(0, Math.max(0, r1.length - n));
    r2 = r2.slice(0, Math.max(0, r2.length - n));
  };

  for (const suffix of STEP1) {
    if (!r1.endsWith(suffix)) continue;
    const n = suffix.length;
    if ((suffix === "en" || suffix === "es" || suffix === "e") && pySlice(word, -n - 4, -n) === "niss") {
      cut(n + 1);
    } else if (suffix === "s") {
      if (S_ENDING.includes(word[word.length - 2] ?? "")) cut(1);
    } else {
      cut(n);
    }
    break;
  }

  for (const suffix of STEP2) {
    if (!r1.endsWith(suffix)) continue;
    if (suffix === "st") {
      if (ST_ENDING.includes(word[word.length - 3] ?? "") && word.length - 3 >= 3) cut(2);
    } else {
      cut(suffix.length);
    }
    break;
  }

  for (const suffix of STEP3) {
    if (!r2.endsWith(suffix)) continue;
    const n = suffix.length;
    const drop = (k: number): void => {
      word = word.slice(0, word.length - k);
    };
    if (suffix === "end" || suffix === "ung") {
      if (pySlice(r2, -n - 2, -n).includes("ig") && !pySlice(r2, -n - 3, -n - 2).includes("e")) drop(n + 2);
      else drop(n);
    } else if (suffix === "ig" || suffix === "ik" || suffix === "isch") {
      if (!pySlice(r2, -n - 1, -n).includes("e")) drop(n);
    } else if (suffix === "lich" || suffix === "heit") {
      const before = pySlice(r1, -n - 2, -n);
      drop(before.includes("er") || before.includes("en") ? n + 2 : n);
    } else {
      // keit
      if (pySlice(r2, -n - 4, -n).includes("lich")) drop(n + 4);
      else if (pySlice(r2, -n - 2, -n).includes("ig")) drop(n + 2);
      else drop(n);
    }
    break;
  }

  return word
    .replaceAll("ä", "a")
    .replaceAll("ö", "o")
    .replaceAll("ü", "u")
    .replaceAll("U", "u")
    .replaceAll("Y", "y");
}
