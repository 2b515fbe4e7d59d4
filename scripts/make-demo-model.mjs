/**
 * Builds the embedded demo's base model (data/demo/model) from data/demo/corpus.txt:
 *   1. a byte-level BPE tokenizer learnt on the corpus, the task rows and the task prompts' words (GPT-2's byte
 *      alphabet and pre-tokenizer pattern, merges by pair frequency, ties broken by the smaller pair), written
 *      as tokenizer.json for tokenizers.js;
 *   2. the model's config.json (a tiny llama);
 *   3. `merglot pretrain` on the corpus (all parameters, fixed seed), which writes model.safetensors.
 * Deterministic: the same corpus gives byte-identical files. Needs `npm run build` first.
 *   node scripts/make-demo-model.mjs [--merges 1500] [--epochs 2]
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const ROOT = "data/demo";
const OUT = join(ROOT, "model");
const BUILD = join(ROOT, "model-build");

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const MERGES = Number(arg("--merges", 1500));
const EPOCHS = arg("--epochs", "2");

/** The model: a tiny llama (GQA 4/2 heads, tied embeddings). */
const CONFIG = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 64,
  intermediate_size: 176,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  initializer_range: 0.02,
  torch_dtype: "float32",
};

// --------------------------------------------------------------------------------------- byte-level BPE

/** GPT-2's byte → printable character table. */
function bytesToUnicode() {
  const bs = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

/** GPT-2's pre-tokenizer pattern (what the ByteLevel pre-tokenizer with use_regex splits on). */
const PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Learn `count` merges; returns [left, right] symbol strings in rank order. */
function learnMerges(text, count) {
  const b2u = bytesToUnicode();
  const freq = new Map();
  for (const w of text.match(PATTERN) ?? []) freq.set(w, (freq.get(w) ?? 0) + 1);
  const symbols = b2u.slice(); // id → string
  const words = [...freq.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([w, n]) => ({ ids: [...Buffer.from(w, "utf8")], n }));
  const K = 1 << 16;
  const pairs = new Map();
  const addPairs = (w, sign) => {
    for (let i = 0; i + 1 < w.ids.length; i++) {
      const k = w.ids[i] * K + w.ids[i + 1];
      pairs.set(k, (pairs.get(k) ?? 0) + sign * w.n);
    }
  };
  for (const w of words) addPairs(w, 1);
  const merges = [];
  for (let m = 0; m < count; m++) {
    let best = -1;
    let bestN = 1; // a pair seen once is not worth a token
    for (const [k, n] of pairs)
      if (n > bestN || (n === bestN && best >= 0 && k < best)) [best, bestN] = [k, n];
    if (best < 0) break;
    const a = Math.floor(best / K);
    const b = best % K;
    const id = symbols.length;
    symbols.push(symbols[a] + symbols[b]);
    merges.push([symbols[a], symbols[b]]);
    for (const w of words) {
      let has = false;
      for (let i = 0; i + 1 < w.ids.length; i++) if (w.ids[i] === a && w.ids[i + 1] === b) has = true;
      if (!has) continue;
      addPairs(w, -1);
      const next = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (i + 1 < w.ids.length && w.ids[i] === a && w.ids[i + 1] === b) {
          next.push(id);
          i++;
        } else next.push(w.ids[i]);
      }
      w.ids = next;
      addPairs(w, 1);
    }
    for (const [k, n] of pairs) if (n === 0) pairs.delete(k);
  }
  return { symbols, merges };
}

function tokenizerJson(symbols, merges) {
  const vocab = {};
  symbols.forEach((s, i) => (vocab[s] = i));
  const bos = symbols.length;
  const eos = bos + 1;
  const special = (id, content) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  vocab["<|begin|>"] = bos;
  vocab["<|end|>"] = eos;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    json: {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [special(bos, "<|begin|>"), special(eos, "<|end|>")],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<|begin|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        pair: [
          { SpecialToken: { id: "<|begin|>", type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
          { Sequence: { id: "B", type_id: 1 } },
        ],
        special_tokens: { "<|begin|>": { id: "<|begin|>", ids: [bos], tokens: ["<|begin|>"] } },
      },
      decoder: byteLevel,
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: merges.map(([a, b]) => [a, b]),
      },
    },
    bos,
    eos,
    size: eos + 1,
  };
}

/**
 * Words of the task prompts (instructions and answers as the built-in task templates word them, in each
 * language): added to the tokenizer's training text only, so that prompts tokenize compactly. The model never
 * sees them in pre-training, so the base model does not know the tasks.
 */
const TASK_WORDS = [
  "Is the sentiment of the following text positive, neutral or negative? Text: Sentiment: positive neutral negative",
  "Ist die Stimmung des folgenden Textes positiv, neutral oder negativ? Text: Stimmung: positiv neutral negativ",
  "Le sentiment du texte suivant est-il positif, neutre ou négatif ? Texte : Sentiment : positif neutre négatif",
  "次の文章の感情はポジティブ、ニュートラル、ネガティブのどれですか？文章：感情：ポジティブ ニュートラル ネガティブ",
  "以下文本的情感是积极、中性还是消极？文本：情感：积极 中性 消极",
  "Question: Answer: Frage: Antwort: Question : Réponse : 質問：答え： 问题：答案：",
  "Summarize the following article in a few sentences. Article: Summary:",
  "Fasse den folgenden Artikel in wenigen Sätzen zusammen. Artikel: Zusammenfassung:",
  "Résume l'article suivant en quelques phrases. Article : Résumé :",
  "次の記事を数文で要約してください。記事：要約： 用几句话总结以下文章。文章：摘要：",
  "List the themes and entities mentioned in the following text, one per line, using the text's own words. Items:",
  "Nenne die Themen und Entitäten, die im folgenden Text vorkommen, eine pro Zeile, mit den Worten des Textes. Einträge:",
  "Liste les thèmes et entités mentionnés dans le texte suivant, un par ligne, avec les mots du texte. Éléments :",
  "次の文章に出てくるテーマと固有表現を、文章中の言葉のまま一行に一つずつ挙げてください。項目：",
  "列出以下文本中提到的主题和实体，每行一个，使用文本中的原词。条目：",
];

/** The tokenizer's training text: the corpus, the task rows' text (train splits), the task words (×20). */
function tokenizerText(corpus) {
  const parts = [corpus];
  const tasks = join(ROOT, "tasks");
  for (const task of readdirSync(tasks).sort())
    for (const lang of readdirSync(join(tasks, task)).sort())
      for (const line of readFileSync(join(tasks, task, lang, "train.jsonl"), "utf8").split("\n"))
        if (line) for (const v of Object.values(JSON.parse(line))) parts.push([v].flat().join("\n"));
  for (let i = 0; i < 20; i++) parts.push(...TASK_WORDS);
  return parts.join("\n");
}

// ------------------------------------------------------------------------------------------------- main

const corpus = join(ROOT, "corpus.txt");
if (!existsSync(corpus)) throw new Error(`${corpus} is missing: run node scripts/make-demo-tasks.mjs first`);
const t0 = performance.now();
const { symbols, merges } = learnMerges(tokenizerText(readFileSync(corpus, "utf8")), MERGES);
const tok = tokenizerJson(symbols, merges);
rmSync(BUILD, { recursive: true, force: true });
mkdirSync(BUILD, { recursive: true });
writeFileSync(join(BUILD, "tokenizer.json"), JSON.stringify(tok.json));
writeFileSync(
  join(BUILD, "tokenizer_config.json"),
  JSON.stringify({ bos_token: "<|begin|>", eos_token: "<|end|>", add_bos_token: true, add_eos_token: false }),
);
writeFileSync(
  join(BUILD, "config.json"),
  JSON.stringify({ ...CONFIG, vocab_size: tok.size, bos_token_id: tok.bos, eos_token_id: tok.eos }, null, 2),
);
console.log(
  `tokenizer: ${merges.length} merges, vocabulary ${tok.size} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
);

const tmp = `${OUT}.tmp`;
rmSync(tmp, { recursive: true, force: true });
const args = [
  "dist/src/cli/main.js",
  "pretrain",
  "--config",
  join(BUILD, "config.json"),
  "--tokenizer",
  join(BUILD, "tokenizer.json"),
  "--data",
  corpus,
  "-o",
  tmp,
  "--epochs",
  EPOCHS,
  ...process.argv
    .slice(2)
    .filter(
      (a, i, all) => !["--merges", "--epochs"].includes(a) && !["--merges", "--epochs"].includes(all[i - 1]),
    ),
];
console.log(`node ${args.join(" ")}`);
execFileSync(process.execPath, args, { stdio: "inherit" });
rmSync(OUT, { recursive: true, force: true });
renameSync(tmp, OUT);
rmSync(BUILD, { recursive: true, force: true });
console.log(`wrote ${OUT}`);
