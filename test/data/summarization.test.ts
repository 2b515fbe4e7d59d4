import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describeDataset, loadExamples } from "../../src/data/index.js";
import { datasetFixture, rejectsMerglot } from "./helpers.js";

const GEM = datasetFixture("GEM-wiki_lingua");
const ESD = datasetFixture("esdurmus-wiki_lingua");

describe("GEM/wiki_lingua (refs/convert/parquet: <config>/<split>/0000.parquet)", () => {
  test("de train: source → document, target → summary, gem_id → id", async () => {
    assert.deepEqual(describeDataset(GEM).configs, { de: ["test", "train", "validation"], en: ["test", "train", "validation"] });
    const r = await loadExamples({ path: GEM, task: "summarization", lang: "de", split: "train" });
    assert.equal(r.source.schema, "GEM/wiki_lingua");
    assert.deepEqual(r.examples, [
      {
        id: "wikilingua_de-train-0",
        lang: "de",
        document:
          "Fülle den Topf mit Wasser. Stelle ihn auf den Herd und warte, bis das Wasser kocht. Gib dann die Nudeln hinein.",
        summary: "Wasser kochen und Nudeln hineingeben.",
      },
      {
        id: "wikilingua_de-train-1",
        lang: "de",
        document: "Öffne die Einstellungen des Telefons. Tippe auf WLAN und wähle dein Netzwerk aus.",
        summary: "WLAN in den Einstellungen wählen.",
      },
    ]);
    const en = await loadExamples({ path: GEM, task: "summarization", lang: "en" });
    assert.deepEqual(en.examples, [
      {
        id: "wikilingua_en-test-0",
        lang: "en",
        document: "Rinse the rice until the water runs clear, then cook it covered.",
        summary: "Rinse and cook the rice.",
      },
    ]);
  });
});

describe("esdurmus/wiki_lingua (configs by language name, train only, article sections)", () => {
  test("each section of each article is one document/summary pair", async () => {
    const r = await loadExamples({ path: ESD, task: "summarization", lang: "en", split: "train" });
    assert.equal(r.source.schema, "esdurmus/wiki_lingua");
    assert.equal(r.source.config, "english");
    assert.deepEqual(r.examples, [
      { id: "en-train-0-0", lang: "en", document: "Pick a sunny place with room for roots.", summary: "Pick a sunny place." },
      {
        id: "en-train-0-1",
        lang: "en",
        document: "Dig a hole twice as wide as the root ball and set the tree in it.",
        summary: "Dig a wide hole and plant.",
      },
      { id: "en-train-1-0", lang: "en", document: "Place the egg in boiling water for nine minutes.", summary: "Boil it nine minutes." },
      {
        id: "en-train-2-0",
        lang: "en",
        document: "Pour hot water over the tea leaves and wait three minutes.",
        summary: "Steep the leaves three minutes.",
      },
    ]);
    const de = await loadExamples({ path: ESD, task: "summarization", config: "german", split: "train" });
    assert.deepEqual(
      de.examples.map((e) => [e.id, e.lang, e.summary]),
      [
        ["de-train-0-0", "de", "Das Loch finden."],
        ["de-train-0-1", "de", "Den Flicken aufkleben."],
      ],
    );
  });

  test("asking for its missing test split lists the one there is", async () => {
    await rejectsMerglot(
      loadExamples({ path: ESD, task: "summarization", lang: "de" }),
      "data.split",
      /no split "test" of config "german" \(available: train\)/,
    );
  });

  test("a limit keeps an article's sections together: keyed by the whole source row", async () => {
    // The three English articles as stored, in sorted-key JSON; the article with the smallest key comes first.
    const articles: [string, string[], string[], string[]][] = [
      [
        "https://example.org/how-to-plant-a-tree",
        ["Choosing a Spot", "Planting"],
        ["Pick a sunny place with room for roots.", "Dig a hole twice as wide as the root ball and set the tree in it."],
        ["Pick a sunny place.", "Dig a wide hole and plant."],
      ],
      ["https://example.org/how-to-boil-an-egg", ["Boiling"], ["Place the egg in boiling water for nine minutes."], ["Boil it nine minutes."]],
      [
        "https://example.org/how-to-make-tea",
        ["Brewing"],
        ["Pour hot water over the tea leaves and wait three minutes."],
        ["Steep the leaves three minutes."],
      ],
    ];
    const key = ([url, names, docs, sums]: (typeof articles)[number]) =>
      createHash("sha256")
        .update(
          "merglot-sample-v1\n0\ngroup\n" +
            `{"article":{"document":${JSON.stringify(docs)},"section_name":${JSON.stringify(names)},"summary":${JSON.stringify(sums)}},"url":${JSON.stringify(url)}}`,
        )
        .digest("hex");
    const order = articles.map((a, i) => ({ i, k: key(a), n: a[1].length })).sort((a, b) => (a.k < b.k ? -1 : 1));
    const expected = order.flatMap(({ i, n }) => Array.from({ length: n }, (_, j) => `en-train-${i}-${j}`));
    const r = await loadExamples({ path: ESD, task: "summarization", lang: "en", split: "train", limit: 4 });
    assert.deepEqual(
      r.examples.map((e) => e.id),
      expected,
    );
  });
});
