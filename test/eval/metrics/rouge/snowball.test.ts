import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { frenchStem } from "../../../../src/eval/metrics/rouge/snowball-french.js";
import { germanStem } from "../../../../src/eval/metrics/rouge/snowball-german.js";

// Expected stems: NLTK 3.8 `SnowballStemmer("german" | "french").stem(word)`.
const GERMAN: [string, string][] = [
  ["aufeinanderfolgenden", "aufeinanderfolg"],
  ["Häuser", "haus"],
  ["Kindern", "kind"],
  ["Bäume", "baum"],
  ["schönsten", "schon"],
  ["Fröhlichkeit", "frohlich"],
  ["Kenntnisse", "kenntnis"],
  ["häufig", "haufig"],
  ["Zeitung", "zeitung"],
  ["Heiterkeit", "heiter"],
  ["möglichkeiten", "moglich"],
  ["Wichtigkeit", "wichtig"],
  ["ältesten", "alt"],
  ["Straße", "strass"],
  ["lästig", "lastig"],
  ["Bauern", "bau"],
  ["gegangen", "gegang"],
  ["Hunde", "hund"],
  ["Katzen", "katz"],
  ["kleinlich", "kleinlich"],
  ["Herrlichkeit", "herrlich"],
  ["laufend", "laufend"],
  ["Ereignissen", "ereignis"],
  ["badest", "bad"],
  ["bayerische", "bayer"],
];
const FRENCH: [string, string][] = [
  ["continuellement", "continuel"],
  ["généralement", "général"],
  ["énormément", "énorm"],
  ["constamment", "const"],
  ["apparemment", "apparent"],
  ["nationalité", "national"],
  ["possibilité", "possibil"],
  ["activités", "activ"],
  ["chanteuses", "chanteux"],
  ["actrices", "actric"],
  ["annonciation", "annonci"],
  ["déterminations", "détermin"],
  ["logique", "logiqu"],
  ["bienfaisance", "bienfais"],
  ["heureux", "heureux"],
  ["heureuses", "heureux"],
  ["chevaux", "cheval"],
  ["châteaux", "château"],
  ["finissons", "fin"],
  ["parlerions", "parl"],
  ["allaient", "allaient"],
  ["aimée", "aim"],
  ["crayons", "crayon"],
  ["acière", "acier"],
  ["questions", "question"],
  ["quelques", "quelqu"],
  ["bonnes", "bon"],
  ["innovation", "innov"],
  ["mangeassions", "mang"],
  ["chanté", "chant"],
];

describe("Snowball stemmers", () => {
  test("German matches NLTK", () => {
    for (const [word, stem] of GERMAN) assert.equal(germanStem(word), stem, word);
  });
  test("French matches NLTK", () => {
    for (const [word, stem] of FRENCH) assert.equal(frenchStem(word), stem, word);
  });
});
