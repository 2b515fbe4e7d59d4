/**
 * Writes the embedded demo's task data and pre-training corpus (data/demo/tasks, data/demo/corpus.txt):
 * sentiment, reasoning, summarization and extraction in en, de, fr, ja, zh, as canonical JSONL
 * (src/data/example.ts), train/validation/test per language. Deterministic: a fixed seeded PRNG, no clock,
 * no network; the words come from the ICU/CLDR data behind Node's Intl (names of countries, languages,
 * currencies, months, weekdays, units in each language) and from the small hand-written lexicons below.
 * data/demo/DATA_CARD.md says exactly how each task is built.   Run: node scripts/make-demo-tasks.mjs
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = "data/demo";
const LANGS = ["en", "de", "fr", "ja", "zh"];
/** Rows per split for every language. */
const SIZES = {
  sentiment: { train: 300, validation: 60, test: 100 },
  reasoning: { train: 300, validation: 60, test: 100 },
  summarization: { train: 200, validation: 40, test: 60 },
  extraction: { train: 200, validation: 40, test: 60 },
};
/** Documents per language in the pre-training corpus. */
const CORPUS_DOCS = 800;

// ------------------------------------------------------------------------------------------ random numbers

/** mulberry32: a tiny, well-known 32-bit PRNG; one stream per (task, language, split) so sizes are independent. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    shuffle: (xs) => {
      const a2 = xs.slice();
      for (let i = a2.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [a2[i], a2[j]] = [a2[j], a2[i]];
      }
      return a2;
    },
  };
}

/** FNV-1a of a string: the seed of one stream. */
function seedOf(s) {
  let h = 0x811c9dc5;
  for (const ch of s) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
  return h;
}

// ------------------------------------------------------------------------------------ words from Intl (CLDR)

// Countries named without an article in German (so "in Frankreich" is grammatical).
const COUNTRIES =
  "FR JP DE IT ES CN BR CA IN MX AT SE NO FI PL DK PT GR EG KE PE CL AR AU NZ IE BE HU TH VN ID NG MA".split(
    " ",
  );
const CURRENCIES = "USD EUR JPY CNY GBP CHF CAD AUD INR KRW BRL MXN SEK NOK".split(" ");
const LANGUAGE_NAMES = "en de fr ja zh es it pt ru ko ar hi nl sv pl tr el fi".split(" ");

function vocabulary(lang) {
  const region = new Intl.DisplayNames([lang], { type: "region" });
  const currency = new Intl.DisplayNames([lang], { type: "currency" });
  const language = new Intl.DisplayNames([lang], { type: "language" });
  const month = new Intl.DateTimeFormat(lang, { month: "long", timeZone: "UTC" });
  const weekday = new Intl.DateTimeFormat(lang, { weekday: "long", timeZone: "UTC" });
  const hours = new Intl.NumberFormat(lang, { style: "unit", unit: "hour", unitDisplay: "long" });
  const number = new Intl.NumberFormat(lang);
  return {
    country: COUNTRIES.map((c) => region.of(c)),
    currency: CURRENCIES.map((c) => currency.of(c)),
    language: LANGUAGE_NAMES.map((c) => language.of(c)),
    month: Array.from({ length: 12 }, (_, m) => month.format(Date.UTC(2024, m, 1))),
    // 2024-01-01 was a Monday
    weekday: Array.from({ length: 7 }, (_, d) => weekday.format(Date.UTC(2024, 0, 1 + d))),
    hours: (n) => hours.format(n),
    list: (xs) => new Intl.ListFormat(lang, { type: "conjunction" }).format(xs),
    number: (n) => number.format(n),
  };
}

const cap = (s) => s.charAt(0).toLocaleUpperCase() + s.slice(1);

// ----------------------------------------------------------------------------------- hand-written lexicons

const SENTIMENT = {
  en: {
    items: [
      "the hotel",
      "the train ride",
      "the coffee",
      "the book",
      "the phone",
      "the film",
      "the restaurant",
      "the jacket",
      "the concert",
      "the museum",
    ],
    text: (v, item, phrase) => `Review (${v.country}, ${v.month}): ${cap(item)} – ${phrase}.`,
    positive: [
      "wonderful",
      "I loved it",
      "excellent quality",
      "highly recommended",
      "a great experience",
      "worth every penny",
    ],
    neutral: [
      "it was okay",
      "nothing special",
      "average",
      "as expected",
      "neither good nor bad",
      "fairly ordinary",
    ],
    negative: [
      "terrible",
      "I hated it",
      "poor quality",
      "a waste of money",
      "very disappointing",
      "never again",
    ],
  },
  de: {
    items: [
      "das Hotel",
      "die Zugfahrt",
      "der Kaffee",
      "das Buch",
      "das Handy",
      "der Film",
      "das Restaurant",
      "die Jacke",
      "das Konzert",
      "das Museum",
    ],
    text: (v, item, phrase) => `Bewertung (${v.country}, ${v.month}): ${cap(item)} – ${phrase}.`,
    positive: [
      "wunderbar",
      "hat mir sehr gefallen",
      "ausgezeichnete Qualität",
      "sehr zu empfehlen",
      "ein tolles Erlebnis",
      "jeden Cent wert",
    ],
    neutral: [
      "ganz okay",
      "nichts Besonderes",
      "durchschnittlich",
      "wie erwartet",
      "weder gut noch schlecht",
      "eher gewöhnlich",
    ],
    negative: [
      "schrecklich",
      "hat mir gar nicht gefallen",
      "schlechte Qualität",
      "Geldverschwendung",
      "sehr enttäuschend",
      "nie wieder",
    ],
  },
  fr: {
    items: [
      "l'hôtel",
      "le trajet en train",
      "le café",
      "le livre",
      "le téléphone",
      "le film",
      "le restaurant",
      "la veste",
      "le concert",
      "le musée",
    ],
    text: (v, item, phrase) => `Avis (${v.country}, ${v.month}) : ${item} – ${phrase}.`,
    positive: [
      "merveilleux",
      "j'ai adoré",
      "excellente qualité",
      "je recommande vivement",
      "une super expérience",
      "vaut chaque centime",
    ],
    neutral: ["correct", "rien de spécial", "moyen", "comme prévu", "ni bon ni mauvais", "plutôt ordinaire"],
    negative: [
      "horrible",
      "j'ai détesté",
      "mauvaise qualité",
      "de l'argent gaspillé",
      "très décevant",
      "plus jamais",
    ],
  },
  ja: {
    items: [
      "ホテル",
      "電車の旅",
      "コーヒー",
      "本",
      "スマートフォン",
      "映画",
      "レストラン",
      "ジャケット",
      "コンサート",
      "美術館",
    ],
    text: (v, item, phrase) => `レビュー（${v.country}、${v.month}）：${item}は${phrase}。`,
    positive: [
      "最高でした",
      "とても良かったです",
      "大満足です",
      "おすすめです",
      "素晴らしかったです",
      "また利用したいです",
    ],
    neutral: [
      "普通でした",
      "可もなく不可もなくでした",
      "特に印象はありません",
      "予想通りでした",
      "まあまあでした",
      "平均的でした",
    ],
    negative: [
      "最悪でした",
      "がっかりしました",
      "二度と利用しません",
      "品質が悪かったです",
      "お金の無駄でした",
      "ひどかったです",
    ],
  },
  zh: {
    items: ["酒店", "火车旅行", "咖啡", "书", "手机", "电影", "餐厅", "夹克", "音乐会", "博物馆"],
    text: (v, item, phrase) => `评价（${v.country}，${v.month}）：${item}${phrase}。`,
    positive: ["非常好", "太棒了", "很满意", "值得推荐", "让人惊喜", "物超所值"],
    neutral: ["一般般", "还可以", "没什么特别", "和预期一样", "中规中矩", "不好不坏"],
    negative: ["太差了", "很失望", "非常糟糕", "不值这个价", "质量很差", "让人生气"],
  },
};

/** Reasoning: "which of these is a <category>?" with the category's name in each language. */
const REASONING = {
  en: {
    question: (c) => `Which of these words is a ${c}?`,
    names: {
      month: "month",
      weekday: "day of the week",
      country: "country",
      currency: "currency",
      language: "language",
    },
  },
  de: {
    question: (c) => `Welches dieser Wörter ist ${c}?`,
    names: {
      month: "ein Monat",
      weekday: "ein Wochentag",
      country: "ein Land",
      currency: "eine Währung",
      language: "eine Sprache",
    },
  },
  fr: {
    question: (c) => `Lequel de ces mots est ${c} ?`,
    names: {
      month: "un mois",
      weekday: "un jour de la semaine",
      country: "un pays",
      currency: "une monnaie",
      language: "une langue",
    },
  },
  ja: {
    question: (c) => `次のうち${c}はどれですか？`,
    names: { month: "月の名前", weekday: "曜日", country: "国", currency: "通貨", language: "言語" },
  },
  zh: {
    question: (c) => `下列哪一项是${c}？`,
    names: { month: "月份", weekday: "星期几", country: "国家", currency: "货币", language: "语言" },
  },
};
const CATEGORIES = ["month", "weekday", "country", "currency", "language"];

/** Events: [phrase in the document, noun in the summary]. */
const EVENTS = {
  en: [
    ["a music festival", "Music festival"],
    ["an election", "Election"],
    ["a marathon", "Marathon"],
    ["a trade fair", "Trade fair"],
    ["a film festival", "Film festival"],
    ["a concert", "Concert"],
  ],
  de: [
    ["ein Musikfestival", "Musikfestival"],
    ["eine Wahl", "Wahl"],
    ["ein Marathon", "Marathon"],
    ["eine Messe", "Messe"],
    ["ein Filmfestival", "Filmfestival"],
    ["ein Konzert", "Konzert"],
  ],
  fr: [
    ["un festival de musique", "Festival de musique"],
    ["une élection", "Élection"],
    ["un marathon", "Marathon"],
    ["un salon professionnel", "Salon professionnel"],
    ["un festival de cinéma", "Festival de cinéma"],
    ["un concert", "Concert"],
  ],
  ja: [
    ["音楽祭", "音楽祭"],
    ["選挙", "選挙"],
    ["マラソン大会", "マラソン大会"],
    ["見本市", "見本市"],
    ["映画祭", "映画祭"],
    ["コンサート", "コンサート"],
  ],
  zh: [
    ["音乐节", "音乐节"],
    ["选举", "选举"],
    ["马拉松比赛", "马拉松比赛"],
    ["博览会", "博览会"],
    ["电影节", "电影节"],
    ["音乐会", "音乐会"],
  ],
};

/** Summarization: the lead sentence (what the summary says), the summary, and filler sentences. */
const NEWS = {
  en: {
    lead: (s) => `On ${s.weekday}, ${s.event[0]} took place in ${s.country}.`,
    summary: (s) => `${s.event[1]} in ${s.country} on ${s.weekday}`,
  },
  de: {
    lead: (s) => `Am ${s.weekday} fand in ${s.country} ${s.event[0]} statt.`,
    summary: (s) => `${s.event[1]} in ${s.country} am ${s.weekday}`,
  },
  fr: {
    lead: (s) => `${cap(s.weekday)}, ${s.event[0]} a eu lieu (${s.country}).`,
    summary: (s) => `${s.event[1]} (${s.country}), ${s.weekday}`,
  },
  ja: {
    lead: (s) => `${s.weekday}に${s.country}で${s.event[0]}が開催されました。`,
    summary: (s) => `${s.country}で${s.weekday}に${s.event[1]}`,
  },
  zh: {
    lead: (s) => `${s.weekday}，${s.country}举行了${s.event[0]}。`,
    summary: (s) => `${s.weekday}${s.country}举行${s.event[1]}`,
  },
};

/** Sentences without a country (fillers of summarization and extraction documents). */
const FILLERS = {
  en: [
    (s) => `Visitors paid in ${s.currency}.`,
    (s) => `Most speeches were in ${s.language}.`,
    (s) => `It lasted ${s.hours}.`,
    (s) => `The next one is planned for ${s.month}.`,
    (s) => `About ${s.count} people came.`,
  ],
  de: [
    (s) => `Währung vor Ort: ${s.currency}.`,
    (s) => `Die meisten Reden waren auf ${s.language}.`,
    (s) => `Es dauerte ${s.hours}.`,
    (s) => `Die nächste Ausgabe ist für ${s.month} geplant.`,
    (s) => `Etwa ${s.count} Menschen kamen.`,
  ],
  fr: [
    (s) => `Monnaie locale : ${s.currency}.`,
    (s) => `La plupart des discours étaient en ${s.language}.`,
    (s) => `Cela a duré ${s.hours}.`,
    (s) => `La prochaine édition est prévue en ${s.month}.`,
    (s) => `Environ ${s.count} personnes sont venues.`,
  ],
  ja: [
    (s) => `現地の通貨は${s.currency}です。`,
    (s) => `ほとんどのスピーチは${s.language}でした。`,
    (s) => `${s.hours}続きました。`,
    (s) => `次回は${s.month}に予定されています。`,
    (s) => `約${s.count}人が訪れました。`,
  ],
  zh: [
    (s) => `当地货币是${s.currency}。`,
    (s) => `大多数演讲使用${s.language}。`,
    (s) => `活动持续了${s.hours}。`,
    (s) => `下一届计划在${s.month}举行。`,
    (s) => `大约有${s.count}人参加。`,
  ],
};

/** Extraction: sentences that each mention one country (the items to extract). */
const MENTIONS = {
  en: [
    (s, c) => `The delegation from ${c} arrived on ${s.weekday}.`,
    (s, c) => `A report about ${c} was published in ${s.month}.`,
    (s, c) => `In ${c}, many people speak ${s.language}.`,
  ],
  de: [
    (s, c) => `Die Delegation aus ${c} kam am ${s.weekday} an.`,
    (s, c) => `Ein Bericht über ${c} erschien im ${s.month}.`,
    (s, c) => `In ${c} sprechen viele Menschen ${s.language}.`,
  ],
  fr: [
    (s, c) => `La délégation (${c}) est arrivée ${s.weekday}.`,
    (s, c) => `Un rapport (${c}) a été publié en ${s.month}.`,
    (s, c) => `Dans ce pays (${c}), beaucoup de gens parlent ${s.language}.`,
  ],
  ja: [
    (s, c) => `${s.weekday}に${c}の代表団が到着しました。`,
    (s, c) => `${s.month}に${c}に関する報告書が発表されました。`,
    (s, c) => `${c}では多くの人が${s.language}を話します。`,
  ],
  zh: [
    (s, c) => `${c}代表团于${s.weekday}抵达。`,
    (s, c) => `${s.month}发布了一份关于${c}的报告。`,
    (s, c) => `${c}有很多人说${s.language}。`,
  ],
};

/** Sentences of one document: joined without spaces in Japanese and Chinese. */
const joinSentences = (lang, xs) => xs.join(lang === "ja" || lang === "zh" ? "" : " ");

/** Random slot values for one document. */
function slots(v, r) {
  return {
    country: r.pick(v.country),
    currency: r.pick(v.currency),
    language: r.pick(v.language),
    month: r.pick(v.month),
    weekday: r.pick(v.weekday),
    hours: v.hours(2 + r.int(7)),
    count: v.number(100 * (5 + r.int(200))),
  };
}

// --------------------------------------------------------------------------------------------- the tasks

const LABELS = ["positive", "neutral", "negative"];

function sentimentRow(lang, v, r) {
  const lex = SENTIMENT[lang];
  const label = LABELS[r.int(3)];
  return { text: lex.text(slots(v, r), r.pick(lex.items), r.pick(lex[label])), label };
}

/**
 * One symbol per word category, the same in every language: the corpus's category lists start with it and the
 * questions name their category with it, standing for the concepts a large multilingual model shares across
 * languages (what lets one language's adapter help another).
 */
const CATEGORY_SYMBOLS = { month: "📅", weekday: "⏰", country: "🌍", currency: "💰", language: "🗣" };
/** A review's rating in the corpus, the same in every language (the tasks' rows carry none). */
const STARS = { positive: "★★★★★", neutral: "★★★", negative: "★" };

function reasoningRow(lang, v, r) {
  const cat = r.pick(CATEGORIES);
  const others = r.shuffle(CATEGORIES.filter((c) => c !== cat));
  const right = r.pick(v[cat]);
  const wrong = others.map((c) => r.pick(v[c]));
  const at = r.int(5);
  const choices = [...wrong.slice(0, at), right, ...wrong.slice(at)];
  const q = REASONING[lang];
  return { question: `${q.question(q.names[cat])} ${CATEGORY_SYMBOLS[cat]}`, choices, answer: "ABCDE"[at] };
}

function summarizationRow(lang, v, r) {
  const s = { ...slots(v, r), event: r.pick(EVENTS[lang]) };
  const fill = r
    .shuffle(FILLERS[lang])
    .slice(0, 3)
    .map((f) => f(slots(v, r)));
  return {
    document: joinSentences(lang, [NEWS[lang].lead(s), ...fill]),
    summary: NEWS[lang].summary(s),
    // for the corpus only (not a task field): the country the document is about
    country: s.country,
  };
}

function extractionRow(lang, v, r) {
  const n = 1 + r.int(3);
  const countries = r.shuffle(v.country).slice(0, n);
  const mentions = countries.map((c) => r.pick(MENTIONS[lang])(slots(v, r), c));
  const fillers = r
    .shuffle(FILLERS[lang])
    .slice(0, 1 + r.int(2))
    .map((f) => f(slots(v, r)));
  // countries keep their order of mention; fillers go anywhere
  const sentences = [...mentions];
  for (const f of fillers) sentences.splice(r.int(sentences.length + 1), 0, f);
  return { text: joinSentences(lang, sentences), items: countries };
}

const TASKS = {
  sentiment: sentimentRow,
  reasoning: reasoningRow,
  summarization: (lang, v, r) => {
    const { document, summary } = summarizationRow(lang, v, r);
    return { document, summary };
  },
  extraction: extractionRow,
};

/**
 * Corpus only: a closing sentence that names a country of the document again. Natural text repeats its
 * entities; predicting the repeat teaches the base model to copy from its context (what summaries and item
 * lists need), without showing it any task.
 */
const REMENTION = {
  en: (c) => `${c} will host the next meeting.`,
  de: (c) => `${c} richtet das nächste Treffen aus.`,
  fr: (c) => `Prochaine réunion : ${c}.`,
  ja: (c) => `次の会合は${c}で開かれます。`,
  zh: (c) => `下一次会议将在${c}举行。`,
};

/** Rows of one split; a row identical to one already drawn (in any split of the task) is drawn again. */
function makeSplit(task, lang, split, n, v, seen) {
  const r = rng(seedOf(`${task}/${lang}/${split}`));
  const rows = [];
  for (let tries = 0; rows.length < n; tries++) {
    if (tries > 100 * n) throw new Error(`${task}/${lang}/${split}: cannot draw ${n} distinct rows`);
    const row = TASKS[task](lang, v, r);
    const key = JSON.stringify(row);
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({ id: `${lang}-${split}-${rows.length}`, lang, ...row });
  }
  return rows;
}

function writeAtomic(path, text) {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

const jsonl = (rows) => rows.map((x) => JSON.stringify(x)).join("\n") + "\n";

// --------------------------------------------------------------------------------------------------- main

rmSync(join(ROOT, "tasks"), { recursive: true, force: true });
const counts = [];
for (const task of Object.keys(TASKS)) {
  for (const lang of LANGS) {
    const v = vocabulary(lang);
    const dir = join(ROOT, "tasks", task, lang);
    mkdirSync(dir, { recursive: true });
    const seen = new Set();
    for (const [split, n] of Object.entries(SIZES[task])) {
      writeAtomic(join(dir, `${split}.jsonl`), jsonl(makeSplit(task, lang, split, n, v, seen)));
      counts.push(`${task}/${lang}/${split}: ${n}`);
    }
  }
}

// The demo study's update ablation ("more English data"): the English sentiment validation rows as a training file
mkdirSync(join(ROOT, "tasks", "sentiment", "en-update"), { recursive: true });
writeAtomic(
  join(ROOT, "tasks", "sentiment", "en-update", "train.jsonl"),
  readFileSync(join(ROOT, "tasks", "sentiment", "en", "validation.jsonl"), "utf8"),
);

// Pre-training corpus: documents from the same sentence templates (reviews closed by their star rating, news
// and reports each closing with a sentence that names one of its countries again) and lists of words of one
// category, each word after the category's symbol; never the task prompts, questions, labels, category
// names or summaries, so the base model knows the words and the shared symbols but not the tasks.
const docs = [];
for (const lang of LANGS) {
  const v = vocabulary(lang);
  const r = rng(seedOf(`corpus/${lang}`));
  for (let i = 0; i < CORPUS_DOCS; i++) {
    const kind = r.int(4);
    if (kind === 0) {
      const row = sentimentRow(lang, v, r);
      docs.push(`${row.text} ${STARS[row.label]}`);
    } else if (kind === 1) {
      const row = summarizationRow(lang, v, r);
      docs.push(joinSentences(lang, [row.document, REMENTION[lang](row.country)]));
    } else if (kind === 2) {
      const row = extractionRow(lang, v, r);
      docs.push(joinSentences(lang, [row.text, REMENTION[lang](r.pick(row.items))]));
    } else {
      // a list of 3–6 words of one category (the category itself is never named)
      const cat = r.pick(CATEGORIES);
      // the symbol before every word, after a space as in the questions (the same token: " 💰")
      const words = r.shuffle(v[cat]).slice(0, 3 + r.int(4));
      docs.push(words.map((w) => `${CATEGORY_SYMBOLS[cat]} ${w}`).join(" "));
    }
  }
}
writeAtomic(join(ROOT, "corpus.txt"), rng(seedOf("corpus/order")).shuffle(docs).join("\n\n") + "\n");
console.log(
  `wrote ${counts.length} files under ${ROOT}/tasks and ${docs.length} documents to ${ROOT}/corpus.txt`,
);
