import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rouge } from "../../../../src/eval/metrics/rouge/rouge.js";
import { scoreRouge } from "../../../../src/eval/metrics/rouge/score.js";
import {
  multilingualTokenizer,
  splitWords,
  type Tokenizer,
} from "../../../../src/eval/metrics/rouge/tokenize.js";
import { MerglotError } from "../../../../src/errors.js";

const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} ≉ ${b}`);

const TEXTS: Record<string, string> = {
  en: "The committee's report, published on Monday, recommends 3 changes.",
  de: "Die Größe der Häuser überraschte die Bürger in Köln.",
  fr: "L'été dernier, nous étions à Paris ; c'était magnifique !",
  ja: "東京都の美術館で、新しい展示が始まりました。",
  zh: "今天北京的天气很好，我们去公园散步吧。",
  th: "ฉันชอบกินแอปเปิ้ลมาก",
};

describe("multilingual ROUGE", () => {
  let ja: Tokenizer;
  before(async () => {
    ja = await multilingualTokenizer({ lang: "ja" }); // kuromoji's dictionary loads once here
  });

  test("identical texts score 1 in every language, with and without stemming", async () => {
    for (const [lang, text] of Object.entries(TEXTS)) {
      for (const stem of [false, true]) {
        const r = await rouge([text], [text], { lang, stem });
        for (const type of r.types)
          assert.equal(r.scores[type].fmeasure.value, 1, `${lang} ${type} stem=${stem}`);
      }
    }
  });

  test("rouge-score mode reproduces its 0 for Chinese and Japanese and its split accents", async () => {
    for (const lang of ["ja", "zh"]) {
      const r = await rouge([TEXTS[lang]], [TEXTS[lang]], { mode: "rouge-score" });
      assert.equal(r.scores.rouge1.fmeasure.value, 0, lang);
    }
    // "Größe" vs "Grösse": rouge-score sees "gr", "e" / "gr", "sse" and finds overlap where there is none.
    const rs = await rouge(["Größe"], ["Grösse"], { mode: "rouge-score", types: ["rouge1"] });
    close(rs.scores.rouge1.fmeasure.value, 2 * 0.5 * 0.5);
    const ml = await rouge(["Größe"], ["Grösse"], { lang: "de", types: ["rouge1"] });
    assert.equal(ml.scores.rouge1.fmeasure.value, 0);
  });

  test("Chinese: one word changed scores what a hand segmentation gives", async () => {
    const zh = await multilingualTokenizer({ lang: "zh" });
    // Hand segmentation: 我 / 喜欢 / 吃 / 苹果 and 我 / 喜欢 / 吃 / 香蕉 (punctuation dropped).
    assert.deepEqual(zh("我喜欢吃苹果。"), ["我", "喜欢", "吃", "苹果"]);
    assert.deepEqual(zh("我喜欢吃香蕉！"), ["我", "喜欢", "吃", "香蕉"]);
    const s = scoreRouge("我喜欢吃苹果。", "我喜欢吃香蕉！", ["rouge1", "rouge2", "rougeL"], zh);
    close(s.rouge1.fmeasure, 3 / 4); // 3 of 4 words
    close(s.rouge2.fmeasure, 2 / 3); // 我喜欢, 喜欢吃 of 3 bigrams
    close(s.rougeL.fmeasure, 3 / 4);
  });

  test("Japanese: kuromoji words, or characters", async () => {
    assert.deepEqual(ja("私は猫が好きです。"), ["私", "は", "猫", "が", "好き", "です"]);
    const s = scoreRouge("私は猫が好きです。", "私は犬が好きです。", ["rouge1"], ja);
    close(s.rouge1.fmeasure, 5 / 6);
    const chars = await multilingualTokenizer({ lang: "ja", japanese: "chars" });
    assert.deepEqual(chars("私は猫が好き"), ["私", "は", "猫", "が", "好", "き"]);
  });

  test("normalisation: NFKC, lowercase, accented words whole, punctuation dropped", async () => {
    const fr = await multilingualTokenizer({ lang: "fr" });
    assert.deepEqual(fr("L'Été à ＰＡＲＩＳ, n'est-ce pas ?"), [
      "l",
      "été",
      "à",
      "paris",
      "n",
      "est",
      "ce",
      "pas",
    ]);
    // NFD input (e + combining acute) equals NFC input after normalisation.
    assert.deepEqual(fr("e\u0301te\u0301"), fr("été"));
    // Without a language, CJK characters are single tokens and other words are letter runs.
    assert.deepEqual(splitWords("abc北京 déjà-vu"), ["abc", "北", "京", "déjà", "vu"]);
  });

  test("Thai is split into words by ICU, not kept as one run", async () => {
    const th = await multilingualTokenizer({ lang: "th" });
    const tokens = th(TEXTS.th);
    assert.ok(tokens.length >= 3, JSON.stringify(tokens));
    assert.equal(tokens.join(""), TEXTS.th);
  });

  test("stemming per language: Porter for English, Snowball for German and French", async () => {
    const en = await multilingualTokenizer({ lang: "en", stem: true });
    const de = await multilingualTokenizer({ lang: "de-DE", stem: true });
    const fr = await multilingualTokenizer({ lang: "fr", stem: true });
    assert.deepEqual(en("Cats were running"), ["cat", "were", "run"]);
    assert.deepEqual(de("Die Häuser"), ["die", "haus"]);
    assert.deepEqual(fr("les chevaux"), ["les", "cheval"]);
    const r = await rouge(["Die Häuser"], ["Das Haus"], { lang: "de", stem: true, types: ["rouge1"] });
    close(r.scores.rouge1.fmeasure.value, 1 / 2);
  });

  test("corpus mean with a seeded bootstrap interval", async () => {
    const preds = ["a b", "a b", "c d", "x y"];
    const refs = ["a b", "a c", "c d", "z w"];
    const r = await rouge(preds, refs, {
      lang: "en",
      types: ["rouge1"],
      bootstrap: { samples: 200, seed: 3 },
    });
    close(r.scores.rouge1.fmeasure.value, (1 + 0.5 + 1 + 0) / 4);
    const again = await rouge(preds, refs, {
      lang: "en",
      types: ["rouge1"],
      bootstrap: { samples: 200, seed: 3 },
    });
    assert.deepEqual(again.scores, r.scores);
    const iv = r.scores.rouge1.fmeasure;
    assert.ok(iv.low <= iv.value && iv.value <= iv.high && iv.low >= 0 && iv.high <= 1);
  });

  test("rejects mismatched lengths, empty input, bad types and stemming without a stemmer", async () => {
    await assert.rejects(
      rouge(["a"], ["a", "b"]),
      (e: unknown) => e instanceof MerglotError && /1 predictions but 2 references/.test(e.message),
    );
    await assert.rejects(rouge([], []), /empty/);
    await assert.rejects(rouge(["a"], ["a"], { types: ["rouge0"] }), /invalid ROUGE type "rouge0"/);
    await assert.rejects(rouge(["a"], ["a"], { lang: "es", stem: true }), /no stemmer for language "es"/);
    await assert.rejects(rouge(["a"], ["a"], { stem: true }), /needs the language/);
    await assert.rejects(rouge(["a"], ["a"], { lang: "12" }), /not a language code/);
    await assert.rejects(
      rouge(["a"], ["a"], { lang: "ja", japanese: "mecab" as "chars" }),
      /"kuromoji" or "chars"/,
    );
  });
});
