#!/usr/bin/env node
// Writes test/fixtures/datasets/: a few rows of hand-written text for each real dataset layout merglot
// recognises, laid out as the hub serves it, with Parquet files in every codec the hub's readers meet.
// Run from the repository root: `node scripts/make-dataset-fixtures.mjs` (needs the `zstd` command for
// the ZSTD file; every other codec is produced in-process). The output is committed; tests read it.
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { parquetWriteBuffer } from "hyparquet-writer";

const ROOT = "test/fixtures/datasets";

// ---- codecs hyparquet-writer does not bring (it writes SNAPPY itself) ----

function zstd(bytes) {
  const r = spawnSync("zstd", ["-q", "-c", "-19"], { input: bytes, maxBuffer: 1 << 26 });
  if (r.error || r.status !== 0) throw new Error("the zstd command is needed to write the ZSTD fixture");
  return new Uint8Array(r.stdout);
}

/** A greedy LZ4 block compressor (block format: token, literals, 16-bit offset, match length). */
function lz4Block(src) {
  const out = [];
  const n = src.length;
  const table = new Map();
  const length = (v) => {
    for (; v >= 255; v -= 255) out.push(255);
    out.push(v);
  };
  let anchor = 0;
  let i = 0;
  // The last match must start 12 bytes before the end and leave the last 5 bytes as literals.
  while (i + 12 <= n) {
    const key = (src[i] | (src[i + 1] << 8) | (src[i + 2] << 16) | (src[i + 3] << 24)) >>> 0;
    const cand = table.get(key);
    table.set(key, i);
    if (cand !== undefined && i - cand <= 65535) {
      let len = 0;
      while (i + len < n - 5 && src[cand + len] === src[i + len]) len++;
      if (len >= 4) {
        const lit = i - anchor;
        out.push((Math.min(lit, 15) << 4) | Math.min(len - 4, 15));
        if (lit >= 15) length(lit - 15);
        for (let k = anchor; k < i; k++) out.push(src[k]);
        out.push((i - cand) & 255, (i - cand) >> 8);
        if (len - 4 >= 15) length(len - 4 - 15);
        i += len;
        anchor = i;
        continue;
      }
    }
    i++;
  }
  const lit = n - anchor;
  out.push(Math.min(lit, 15) << 4);
  if (lit >= 15) length(lit - 15);
  for (let k = anchor; k < n; k++) out.push(src[k]);
  return new Uint8Array(out);
}

/** Parquet's deprecated LZ4 codec as Hadoop writes it: big-endian sizes around one LZ4 block. */
function lz4Hadoop(src) {
  const block = lz4Block(src);
  const out = new Uint8Array(8 + block.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, src.length);
  dv.setUint32(4, block.length);
  out.set(block, 8);
  return out;
}

const COMPRESSORS = {
  GZIP: (b) => new Uint8Array(gzipSync(b)),
  BROTLI: (b) => new Uint8Array(brotliCompressSync(b)),
  ZSTD: zstd,
  LZ4: lz4Hadoop,
  LZ4_RAW: lz4Block,
};

// ---- Parquet schemas in the shape the hub's Arrow writer gives them ----

const str = (name) => ({ name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" });
const i64 = (name) => ({ name, type: "INT64", repetition_type: "OPTIONAL" });
const bool = (name) => ({ name, type: "BOOLEAN", repetition_type: "OPTIONAL" });
const strList = (name) => [
  { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  str("element"),
];
const struct = (name, children) => [
  { name, repetition_type: "OPTIONAL", num_children: children.length },
  ...children.flatMap((c) => strList(c)),
];

function writeParquet(path, columns, schemaTail, codec, rows) {
  const schema = [{ name: "schema", num_children: columns.length }, ...schemaTail];
  const columnData = columns.map((name) => ({ name, data: rows.map((r) => r[name]) }));
  const buf = parquetWriteBuffer({
    columnData,
    schema,
    codec,
    compressors: COMPRESSORS,
    createdBy: "merglot fixtures",
  });
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, new Uint8Array(buf));
}

function writeText(path, text) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

rmSync(ROOT, { recursive: true, force: true });

// ---- clapAI/MultiLingualSentiment: one config, data/<split>-00000-of-00001.parquet, README configs ----
{
  const dir = join(ROOT, "clapAI-MultiLingualSentiment");
  writeText(
    join(dir, "README.md"),
    `---
dataset_info:
  features:
    - name: text
      dtype: string
    - name: label
      dtype: string
    - name: source
      dtype: string
    - name: domain
      dtype: string
    - name: language
      dtype: string
configs:
  - config_name: default
    data_files:
      - split: train
        path: data/train-*
      - split: validation
        path: data/validation-*
      - split: test
        path: data/test-*
license: apache-2.0
---

Fixture in the layout of clapAI/MultiLingualSentiment (text written for merglot's tests).
`,
  );
  const row = (text, label, language, domain = "review") => ({
    text,
    label,
    source: "merglot-fixture",
    domain,
    language,
  });
  const cols = ["text", "label", "source", "domain", "language"];
  const schema = cols.map(str);
  writeParquet(join(dir, "data/train-00000-of-00001.parquet"), cols, schema, "SNAPPY", [
    row("The battery lasts all day and the screen is bright.", "Positive", "en", "product"),
    row("Das Paket kam zwei Wochen zu spät und war beschädigt.", "Negative", "de", "product"),
    row("Le colis est arrivé mardi.", "Neutral", "fr", "product"),
    row("このレストランの料理はとても美味しかった。", "Positive", "ja", "restaurant"),
    row("服务态度很差，再也不来了。", "Negative", "zh", "restaurant"),
    row("Die Lieferung erfolgte am Montag.", "Neutral", "de", "product"),
    row("Ein wunderbarer Abend, danke!", "Positive", "de", "restaurant"),
  ]);
  writeParquet(join(dir, "data/validation-00000-of-00001.parquet"), cols, schema, "GZIP", [
    row("Ganz okay, nichts Besonderes.", "Neutral", "de"),
    row("I would not buy this again.", "Negative", "en"),
  ]);
  writeParquet(join(dir, "data/test-00000-of-00001.parquet"), cols, schema, "ZSTD", [
    row("Tolles Hotel, sehr freundliches Personal!", "Positive", "de", "hotel"),
    row("Le film était ennuyeux.", "Negative", "fr", "movie"),
    row("普通の品質です。", "Neutral", "ja", "product"),
  ]);
}

// ---- tyqiangz/multilingual-sentiments: refs/convert/parquet as first converted,
//      <config>/multilingual-sentiments-<split>.parquet, label ids 0=positive 1=neutral 2=negative ----
{
  const dir = join(ROOT, "tyqiangz-multilingual-sentiments");
  writeText(
    join(dir, "README.md"),
    "---\nlanguage:\n  - de\n  - en\n  - ja\nlicense: apache-2.0\n---\n\nFixture in the layout of tyqiangz/multilingual-sentiments.\n",
  );
  const cols = ["text", "source", "label"];
  const schema = [str("text"), str("source"), i64("label")];
  const row = (text, label) => ({ text, source: "merglot-fixture", label: BigInt(label) });
  const put = (config, split, codec, rows) =>
    writeParquet(join(dir, config, `multilingual-sentiments-${split}.parquet`), cols, schema, codec, rows);
  put("german", "train", "BROTLI", [
    row("Ich liebe dieses Buch, jede Seite ist spannend.", 0),
    row("Der Zug fährt um acht Uhr ab.", 1),
    row("Das Essen war kalt und fade.", 2),
  ]);
  put("german", "validation", "LZ4", [row("Sehr hilfreicher Kundendienst, vielen Dank, vielen Dank!", 0)]);
  put("german", "test", "LZ4_RAW", [
    row("Die Farbe ist blau, die Farbe ist blau, die Farbe ist blau.", 1),
    row("Nie wieder bestelle ich hier.", 2),
  ]);
  put("english", "train", "SNAPPY", [row("Great value for the price.", 0)]);
  put("english", "validation", "SNAPPY", [row("The meeting is on Thursday.", 1)]);
  put("english", "test", "SNAPPY", [row("Terrible customer support.", 2)]);
  put("japanese", "train", "GZIP", [row("最高の映画でした。", 0)]);
  put("japanese", "validation", "GZIP", [row("駅は北口にあります。", 1)]);
  put("japanese", "test", "GZIP", [row("二度と行きません。", 2)]);
}

// ---- yusuke1997/mCSQA: README configs en/de/ja, <config>/<split>-00000-of-00001.parquet ----
{
  const dir = join(ROOT, "yusuke1997-mCSQA");
  const configs = ["en", "de", "ja"];
  const yamlConfigs = configs
    .map(
      (c) =>
        `  - config_name: ${c}\n    data_files:\n` +
        ["train", "validation", "test"]
          .map((s) => `      - split: ${s}\n        path: ${c}/${s}-*\n`)
          .join(""),
    )
    .join("");
  writeText(
    join(dir, "README.md"),
    `---\nlicense: other\nconfigs:\n${yamlConfigs}---\n\nFixture in the layout of yusuke1997/mCSQA.\n`,
  );
  const cols = ["id", "question", "question_concept", "choices", "answerKey", "hard"];
  const schema = [
    str("id"),
    str("question"),
    str("question_concept"),
    ...struct("choices", ["label", "text"]),
    str("answerKey"),
    bool("hard"),
  ];
  const L = ["A", "B", "C", "D", "E"];
  const q = (id, question, concept, texts, answerKey, hard = false) => ({
    id,
    question,
    question_concept: concept,
    choices: { label: L, text: texts },
    answerKey,
    hard,
  });
  const data = {
    en: {
      train: [
        q(
          "4f1c0a",
          "Where would you keep milk cold?",
          "milk",
          ["oven", "refrigerator", "bookshelf", "garden", "attic"],
          "B",
        ),
        q(
          "9b27d3",
          "What do people use to cut paper?",
          "paper",
          ["scissors", "spoon", "pillow", "bucket", "lamp"],
          "A",
          true,
        ),
      ],
      validation: [
        q(
          "c3e810",
          "What falls from clouds when it rains?",
          "rain",
          ["sand", "leaves", "water", "smoke", "light"],
          "C",
        ),
      ],
      test: [
        q(
          "71aa02",
          "Where do you buy stamps?",
          "stamp",
          ["bakery", "cinema", "stadium", "post office", "beach"],
          "D",
        ),
      ],
    },
    de: {
      train: [
        q(
          "d0e1f2",
          "Wo bewahrt man Bücher auf?",
          "Buch",
          ["Kühlschrank", "Regal", "Badewanne", "Ofen", "Briefkasten"],
          "B",
        ),
      ],
      validation: [
        q(
          "d3a4b5",
          "Womit schreibt man an eine Tafel?",
          "Tafel",
          ["Kreide", "Gabel", "Seife", "Kamm", "Nadel"],
          "A",
        ),
      ],
      test: [
        q(
          "d6c7d8",
          "Was braucht eine Pflanze zum Wachsen?",
          "Pflanze",
          ["Lärm", "Plastik", "Dunkelheit", "Sand", "Wasser"],
          "E",
        ),
        q(
          "d9e0f1",
          "Wo landet ein Flugzeug?",
          "Flugzeug",
          ["Hafen", "Flughafen", "Keller", "Küche", "Wald"],
          "B",
          true,
        ),
      ],
    },
    ja: {
      train: [q("j1a2b3", "雨の日に使うものは何ですか？", "雨", ["傘", "扇子", "枕", "鍋", "鏡"], "A")],
      validation: [
        q("j4c5d6", "魚が住んでいる場所はどこですか？", "魚", ["砂漠", "海", "屋根", "本棚", "冷蔵庫"], "B"),
      ],
      test: [
        q("j7e8f9", "本を借りる場所はどこですか？", "本", ["銀行", "駅", "図書館", "病院", "公園"], "C"),
      ],
    },
  };
  for (const c of configs)
    for (const [split, rows] of Object.entries(data[c]))
      writeParquet(join(dir, c, `${split}-00000-of-00001.parquet`), cols, schema, "SNAPPY", rows);
}

// ---- GEM/wiki_lingua: refs/convert/parquet, <config>/<split>/0000.parquet, monolingual configs ----
{
  const dir = join(ROOT, "GEM-wiki_lingua");
  const cols = [
    "gem_id",
    "gem_parent_id",
    "source_language",
    "target_language",
    "source",
    "target",
    "references",
  ];
  const schema = [
    str("gem_id"),
    str("gem_parent_id"),
    str("source_language"),
    str("target_language"),
    str("source"),
    str("target"),
    ...strList("references"),
  ];
  const row = (lang, split, i, source, target) => ({
    gem_id: `wikilingua_${lang}-${split}-${i}`,
    gem_parent_id: `wikilingua_${lang}-${split}-${i}`,
    source_language: lang,
    target_language: lang,
    source,
    target,
    references: [target],
  });
  const put = (lang, split, codec, rows) =>
    writeParquet(join(dir, lang, split, "0000.parquet"), cols, schema, codec, rows);
  put("de", "train", "UNCOMPRESSED", [
    row(
      "de",
      "train",
      0,
      "Fülle den Topf mit Wasser. Stelle ihn auf den Herd und warte, bis das Wasser kocht. Gib dann die Nudeln hinein.",
      "Wasser kochen und Nudeln hineingeben.",
    ),
    row(
      "de",
      "train",
      1,
      "Öffne die Einstellungen des Telefons. Tippe auf WLAN und wähle dein Netzwerk aus.",
      "WLAN in den Einstellungen wählen.",
    ),
  ]);
  put("de", "validation", "UNCOMPRESSED", [
    row(
      "de",
      "validation",
      0,
      "Miss die Wand aus. Markiere die Stelle mit einem Bleistift und bohre ein Loch.",
      "Stelle markieren und bohren.",
    ),
  ]);
  put("de", "test", "GZIP", [
    row(
      "de",
      "test",
      0,
      "Gieße die Pflanze einmal pro Woche. Stelle sie an ein helles Fenster.",
      "Wöchentlich gießen, hell stellen.",
    ),
  ]);
  put("en", "train", "UNCOMPRESSED", [
    row(
      "en",
      "train",
      0,
      "Preheat the oven. Mix flour, sugar and eggs, then bake for thirty minutes.",
      "Mix the batter and bake it.",
    ),
  ]);
  put("en", "validation", "UNCOMPRESSED", [
    row(
      "en",
      "validation",
      0,
      "Unplug the router, wait ten seconds, and plug it back in.",
      "Restart the router.",
    ),
  ]);
  put("en", "test", "UNCOMPRESSED", [
    row(
      "en",
      "test",
      0,
      "Rinse the rice until the water runs clear, then cook it covered.",
      "Rinse and cook the rice.",
    ),
  ]);
}

// ---- esdurmus/wiki_lingua: configs by language name, one train split, articles of sections ----
{
  const dir = join(ROOT, "esdurmus-wiki_lingua");
  const en = ["section_name", "document", "summary"];
  const other = [...en, "english_url", "english_section_name"];
  const put = (config, fields, rows) =>
    writeParquet(
      join(dir, config, "train-00000-of-00001.parquet"),
      ["url", "article"],
      [str("url"), ...struct("article", fields)],
      "ZSTD",
      rows,
    );
  put("english", en, [
    {
      url: "https://example.org/how-to-plant-a-tree",
      article: {
        section_name: ["Choosing a Spot", "Planting"],
        document: [
          "Pick a sunny place with room for roots.",
          "Dig a hole twice as wide as the root ball and set the tree in it.",
        ],
        summary: ["Pick a sunny place.", "Dig a wide hole and plant."],
      },
    },
    {
      url: "https://example.org/how-to-boil-an-egg",
      article: {
        section_name: ["Boiling"],
        document: ["Place the egg in boiling water for nine minutes."],
        summary: ["Boil it nine minutes."],
      },
    },
    {
      url: "https://example.org/how-to-make-tea",
      article: {
        section_name: ["Brewing"],
        document: ["Pour hot water over the tea leaves and wait three minutes."],
        summary: ["Steep the leaves three minutes."],
      },
    },
  ]);
  put("german", other, [
    {
      url: "https://example.org/de/fahrrad-reparieren",
      article: {
        section_name: ["Reifen prüfen", "Schlauch flicken"],
        document: [
          "Pumpe den Reifen auf und höre, wo Luft entweicht.",
          "Raue die Stelle an, klebe den Flicken auf und drücke ihn fest.",
        ],
        summary: ["Das Loch finden.", "Den Flicken aufkleben."],
        english_url: ["https://example.org/fix-a-bike", "https://example.org/fix-a-bike"],
        english_section_name: ["Checking the Tire", "Patching the Tube"],
      },
    },
  ]);
}

// ---- a plain folder of per-split files in the three text formats, canonical columns ----
{
  const dir = join(ROOT, "canonical-folder");
  writeText(
    join(dir, "train.jsonl"),
    [
      { id: "s1", lang: "fr", text: "Un service impeccable.", label: "positive" },
      { id: "s2", lang: "fr", text: "La chambre était sale.", label: "negative" },
    ]
      .map((r) => JSON.stringify(r))
      .join("\n") + "\n",
  );
  writeText(
    join(dir, "validation.csv"),
    'id,lang,text,label\nv1,fr,"Correct, sans plus.",neutral\nv2,fr,"Deux lignes:\nbien reçu.",positive\n',
  );
  writeText(
    join(dir, "test.tsv"),
    "id\tlang\ttext\tlabel\nt1\tfr\tLe train partait à midi.\tneutral\nt2\tfr\tQuel désastre !\tnegative\n",
  );
}

console.log(`wrote ${ROOT}`);
