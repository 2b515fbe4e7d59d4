import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  checkRougeType,
  lcsIndices,
  lcsLength,
  rougeLsum,
  scoreRouge,
  type RougeScore,
} from "../../../../src/eval/metrics/rouge/score.js";
import { rougeScoreTokenize } from "../../../../src/eval/metrics/rouge/tokenize.js";
import { MerglotError } from "../../../../src/errors.js";

const rs = (t: string): string[] => rougeScoreTokenize(t, false);
const rsStem = (t: string): string[] => rougeScoreTokenize(t, true);
const close = (a: number, b: number, places = 10): void =>
  assert.ok(Math.abs(a - b) <= 0.5 * 10 ** -places, `${a} ≉ ${b} to ${places} places`);
const prf = (s: RougeScore, p: number, r: number, f: number, places = 10): void => {
  close(s.precision, p, places);
  close(s.recall, r, places);
  close(s.fmeasure, f, places);
};

// rouge-score's published test inputs (google-research/rouge testdata: target.txt, prediction.txt and
// pyrouge_files/*_multi.0.txt, random strings; Apache-2.0), with the ROUGE-1.5.5 values its
// rouge_scorer_test.py asserts to five places.
const TARGETS = [
  "ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L\n",
  "KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN\n",
];
const PREDICTIONS = [
  "rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi\n",
  "n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD\n",
];
const TARGET_MULTI =
  TARGETS.join("") +
  "NhETebUbBk'er WOvoHMTjSRizKgH'vHiing Xu,hWxfs VkNE QhgKiLHE -HidivzoM.dO anhtion jbLQiSGDTCsuhREebUaKM dv J dVN tmbOT\n" +
  "vMR HDm,xOAetion D,tion HJtodT.mHl UIv-p VjWH'BdyWjnfGU-OjT aEMdFICyLWfQMtion wEMfdOKing AwkeKbO 'DxqNOHBH qKtVvm OYJl mM\n";
const PREDICTION_MULTI =
  PREDICTIONS.join("") +
  "xfs VkJE QhgKiLHE -HidivzoM.dO anhing jbLQiSGDTCsuhREebUaKM dv J\n" +
  "VjWH'BdyWjnfGU-OjTNaEMdFICyLWfQMing wEMfdOKijg AwkeKbO 'DxqNO\n";

describe("ROUGE in rouge-score mode (google-research rouge-score)", () => {
  test("rouge1 of ('testing one two', 'testing'): P 1, R 1/3, F 1/2 — target first", () => {
    prf(scoreRouge("testing one two", "testing", ["rouge1"], rs).rouge1, 1, 1 / 3, 1 / 2);
  });

  test("rouge2 and rougeL of its small published cases", () => {
    prf(scoreRouge("testing one two", "testing one", ["rouge2"], rs).rouge2, 1, 1 / 2, 2 / 3);
    prf(scoreRouge("testing one two", "testing one", ["rougeL"], rs).rougeL, 1, 2 / 3, 4 / 5);
    prf(scoreRouge("testing one two", "testing two", ["rougeL"], rs).rougeL, 1, 2 / 3, 4 / 5);
    const both = scoreRouge("testing one two", "testing one", ["rouge1", "rougeL"], rs);
    prf(both.rouge1, 1, 2 / 3, 4 / 5);
    prf(both.rougeL, 1, 2 / 3, 4 / 5);
  });

  test("empty prediction scores 0 for every type", () => {
    for (const t of ["rouge1", "rouge2", "rougeL", "rougeLsum"])
      prf(scoreRouge("testing one two", "", [t], rs)[t], 0, 0, 0);
  });

  test("Lsum: ('w1 w2 w3 w4 w5', 'w1 w2 w6 w7 w8\\nw1 w3 w8 w9 w5') R 0.8, P 0.4", () => {
    const s = scoreRouge("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", ["rougeLsum"], rs).rougeLsum;
    prf(s, 0.4, 0.8, (2 * 0.4 * 0.8) / 1.2);
    prf(scoreRouge("w1 w2 w3 w4 w5", "", ["rougeLsum"], rs).rougeLsum, 0, 0, 0);
    prf(scoreRouge("", "w1", ["rougeLsum"], rs).rougeLsum, 0, 0, 0);
    prf(scoreRouge("w1 w2 w3 w4 w5", "/", ["rougeLsum"], rs).rougeLsum, 0, 0, 0);
  });

  test("LCS table, backtracking and union LCS as rouge-score reads them", () => {
    assert.equal(lcsLength(["1", "2", "3", "4", "5"], ["2", "5", "3", "4"]), 3);
    assert.deepEqual(lcsIndices(["1", "2", "3", "4", "5"], ["2", "5", "3", "4"]), [1, 2, 3]);
    assert.deepEqual(lcsIndices(["1", "2", "3", "4", "5"], ["8", "9"]), []);
    // Section 3.2 of Lin (2004): union of LCS [1 2] and [1 3 5] is [1 2 3 5] → 4 hits of 5 and of 10.
    const s = rougeLsum(
      [["1", "2", "3", "4", "5"]],
      [
        ["1", "2", "6", "7", "8"],
        ["1", "3", "8", "9", "5"],
      ],
    );
    prf(s, 0.4, 0.8, (0.8 * 0.4 * 2) / 1.2);
    prf(rougeLsum([["reference"]], [[]]), 0, 0, 0);
  });

  test("the quick brown fox: rouge1 F 0.7059, rouge2 F 0.2667, rougeL F 0.5882", () => {
    const s = scoreRouge(
      "The quick brown fox jumps over the lazy dog",
      "The quick brown dog jumps on the log.",
      ["rouge1", "rouge2", "rougeL"],
      rs,
    );
    // Hand count: 9 target tokens, 8 prediction tokens; unigram overlap the×2 quick brown dog jumps = 6;
    // bigram overlap "the quick", "quick brown" = 2 of 8 and 7; LCS "the quick brown jumps the" = 5.
    prf(s.rouge1, 6 / 8, 6 / 9, 12 / 17);
    prf(s.rouge2, 2 / 7, 2 / 8, 4 / 15);
    prf(s.rougeL, 5 / 8, 5 / 9, 10 / 17);
    close(s.rouge1.fmeasure, 0.7059, 4);
    close(s.rouge2.fmeasure, 0.2667, 4);
    close(s.rougeL.fmeasure, 0.5882, 4);
  });

  test("agrees with ROUGE-1.5.5 on rouge-score's published test data", () => {
    const cases: [string, (t: string) => string[], number, number[]][] = [
      ["rouge1", rs, 0, [0.6875, 0.40741, 0.51163]],
      ["rouge1", rs, 1, [0.65385, 0.40476, 0.5]],
      ["rouge1", rsStem, 0, [0.6875, 0.40741, 0.51163]],
      ["rouge1", rsStem, 1, [0.69231, 0.42857, 0.52941]],
      ["rouge2", rs, 0, [0.53333, 0.30769, 0.39024]],
      ["rouge2", rs, 1, [0.48, 0.29268, 0.36364]],
      ["rouge2", rsStem, 0, [0.53333, 0.30769, 0.39024]],
      ["rouge2", rsStem, 1, [0.48, 0.29268, 0.36364]],
      ["rougeL", rs, 0, [0.6875, 0.40741, 0.51163]],
      ["rougeL", rs, 1, [0.65385, 0.40476, 0.5]],
    ];
    for (const [type, tok, i, [p, r, f]] of cases) {
      prf(scoreRouge(TARGETS[i], PREDICTIONS[i], [type], tok)[type], p, r, f, 5);
    }
    prf(
      scoreRouge(TARGET_MULTI, PREDICTION_MULTI, ["rougeLsum"], rsStem).rougeLsum,
      0.66667,
      0.36538,
      0.47205,
      5,
    );
  });

  test("the tokenizer keeps only [a-z0-9]: CJK scores 0, accents split words", () => {
    assert.deepEqual(rs("我爱北京"), []);
    prf(scoreRouge("我爱北京天安门", "我爱北京天安门", ["rouge1"], rs).rouge1, 0, 0, 0);
    assert.deepEqual(rs("Über café"), ["ber", "caf"]);
    assert.deepEqual(rsStem("The cats were running quickly"), ["the", "cat", "were", "run", "quickli"]);
  });

  test("valid ROUGE types are rouge1..rouge9, rougeL, rougeLsum", () => {
    for (const t of ["rouge1", "rouge9", "rougeL", "rougeLsum"]) checkRougeType(t);
    for (const t of ["rougen", "rouge0", "rouge10", "rougel"]) {
      assert.throws(
        () => checkRougeType(t),
        (e: unknown) => e instanceof MerglotError && e.message.includes(`"${t}"`),
      );
    }
  });
});
