/** Language names used as config names by the hub's datasets (tyqiangz, esdurmus/wiki_lingua) → codes. */
export const LANGUAGE_NAMES: Record<string, string> = {
  arabic: "ar",
  chinese: "zh",
  czech: "cs",
  dutch: "nl",
  english: "en",
  french: "fr",
  german: "de",
  hindi: "hi",
  indonesian: "id",
  italian: "it",
  japanese: "ja",
  korean: "ko",
  malay: "ms",
  portuguese: "pt",
  russian: "ru",
  spanish: "es",
  thai: "th",
  turkish: "tr",
  vietnamese: "vi",
};

/** The code a config name stands for: a language name ("german" → "de") or a code itself ("de"). */
export function langOfConfig(config: string): string | undefined {
  const lower = config.toLowerCase();
  if (LANGUAGE_NAMES[lower]) return LANGUAGE_NAMES[lower];
  return /^[a-z]{2,3}(?:[-_][a-z0-9]+)?$/i.test(config) && config !== "default" ? config : undefined;
}

/** Config names that may hold language `lang`: the code itself, then its English name. */
export function configCandidates(lang: string): string[] {
  const names = Object.entries(LANGUAGE_NAMES)
    .filter(([, code]) => code === lang.toLowerCase())
    .map(([name]) => name);
  return [lang, ...names];
}
