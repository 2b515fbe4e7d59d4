/**
 * A tiny study for tests: a 1-layer llama with a word-level tokenizer and, per language, a sentiment task
 * on its own words (a text of two words from the
 * language's positive list is positive, from its negative list negative).
 * Everything is generated from fixed seeds, so two fixtures built alike are byte-identical.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseModelConfig } from "../../src/engine/config.js";
import { saveModel } from "../../src/engine/load.js";
import { LlamaModel } from "../../src/engine/model.js";
import { Rng } from "../../src/engine/rng.js";
import { writeWordTokenizer } from "../engine/fixtures.js";
import { mulberry32 } from "../helpers/rand.js";
import { shellQuote } from "../../src/study/command.js";

/** `merglot train` with the study's parameters, as a user would write it for the built-in trainer. */
export const MERGLOT_TRAIN =
  `${shellQuote(process.execPath)} ${shellQuote(join(process.cwd(), "dist/src/cli/main.js"))} train --base {base_model} --data {train_pairs_jsonl} ` +
  `-o {output_dir} --r {r} --alpha {alpha} --targets {target_modules_csv} --lr {lr} --epochs {epochs} ` +
  `--batch {batch} --seq-len {seq_len} --seed {seed} --schedule {schedule} --warmup {warmup} --json`;

export const LANGS = ["en", "de", "fr"];
const WORDS_PER_SIDE = 4;

function langWords(lang: string): { pos: string[]; neg: string[] } {
  return {
    pos: Array.from({ length: WORDS_PER_SIDE }, (_, i) => `${lang}_p${i}`),
    neg: Array.from({ length: WORDS_PER_SIDE }, (_, i) => `${lang}_n${i}`),
  };
}

/** n examples of one language in the canonical sentiment layout. */
export function sentimentRows(lang: string, n: number, seed: number, split: string): string {
  const rand = mulberry32(seed);
  const { pos, neg } = langWords(lang);
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const positive = i % 2 === 0;
    const major = positive ? pos : neg;
    const words = [major[Math.floor(rand() * major.length)]!, major[Math.floor(rand() * major.length)]!];
    rows.push(
      JSON.stringify({
        id: `${lang}-${split}-${i}`,
        lang,
        text: words.join(" "),
        label: positive ? "positive" : "negative",
      }),
    );
  }
  return rows.join("\n") + "\n";
}

/** A two-label task file whose prompts the word-level tokenizer covers, in every fixture language. */
export function tinyTaskYaml(name: string, prompt: string): string {
  return `task: ${name}
output_type: multiple_choice
fields: { text: string, label: string }
labels: [positive, negative]
doc_to_target: "{{ label }}"
metrics: [macro_f1, accuracy]
prompts:
${LANGS.map((l) => `  ${l}: { doc_to_text: "${prompt}", doc_to_choice: [positive, negative] }`).join("\n")}
`;
}

export interface StudyFixture {
  dir: string;
  studyPath: string;
  base: string;
  dataPath(lang: string, split: string): string;
}

/** Write the base model, the data and a study.yaml (`extra` is appended to the YAML). */
export function makeStudyFixture(dir: string, extra = ""): StudyFixture {
  const base = join(dir, "base");
  const words = [
    "a", // the engine runner probes "a" to see whether the tokenizer adds BOS
    "Text",
    ":",
    "Sentiment",
    "positive",
    "neutral",
    "negative",
    ...LANGS.flatMap((l) => [...langWords(l).pos, ...langWords(l).neg]),
  ];
  const config = {
    model_type: "llama",
    vocab_size: 3 + words.length,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 32,
    tie_word_embeddings: true,
    initializer_range: 0.3,
    eos_token_id: 2,
  };
  saveModel(new LlamaModel(parseModelConfig(config, "config.json")).initRandom(new Rng(7)), base);
  writeWordTokenizer(base, words);
  const dataPath = (lang: string, split: string) => join(dir, "data", lang, `${split}.jsonl`);
  LANGS.forEach((lang, i) => {
    mkdirSync(join(dir, "data", lang), { recursive: true });
    writeFileSync(dataPath(lang, "train"), sentimentRows(lang, 12, 100 + i, "train"));
    writeFileSync(dataPath(lang, "test"), sentimentRows(lang, 6, 200 + i, "test"));
  });
  writeFileSync(
    join(dir, "tiny-sentiment.yaml"),
    tinyTaskYaml("tiny_sentiment", "Text: {{ text }}\\nSentiment:"),
  );
  const studyPath = join(dir, "study.yaml");
  writeFileSync(
    studyPath,
    `name: tiny
base_model: ./base
languages: [${LANGS.join(", ")}]
tasks:
  sentiment:
    task_file: tiny-sentiment.yaml
    data:
${LANGS.map((l) => `      ${l}: { train: data/${l}/train.jsonl, test: data/${l}/test.jsonl }`).join("\n")}
training: { r: 4, alpha: 8, lr: 0.05, batch: 4, seq_len: 16, epochs: 15, seed: 1 }
merges:
  methods: [ties, dare_ties]
  sets: [{ weight: 1, density: 0.5 }]
evaluation: { bootstrap: 50 }
costs: { per_device_hour: { cpu: 0.5 } }
${extra}`,
  );
  return { dir, studyPath, base, dataPath };
}
