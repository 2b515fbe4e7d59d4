/**
 * PEFT's `rank_pattern` / `alpha_pattern` key matching, in linear time.
 *
 * PEFT (`peft/utils/other.py`, `get_pattern_key`) tries the keys in insertion order and takes the first key K
 * for which Python's `re.match(rf"(.*\.)?({K})$", module_name)` succeeds. Python's `re` backtracks, so a
 * crafted key such as `(a|a)*b` with a crafted module name takes time exponential in the name's length
 * (measured: 37 s for `inspect`, doubling per character). Keys come from a downloaded file, so they are
 * hostile input: we match them with RE2 (the `re2js` port), whose running time is linear in the name.
 *
 * Python `re` and RE2 agree on everything PEFT users write in practice (literals, `.`, `*`, `+`, `?`, `|`,
 * groups, classes, `{m,n}`, `(?P<name>…)`, `\d`/`\w`/`\s` on ASCII names). What RE2 cannot do in linear time
 * is refused with a clear error naming the file, field and key, never skipped (PEFT raises on an invalid
 * key too): backreferences (`\1`, `(?P=name)`), lookahead / lookbehind (`(?=`, `(?!`, `(?<=`, `(?<!`),
 * atomic groups and possessive quantifiers (`(?>`, `a++`), conditionals (`(?(1)…)`), repeat counts above 1000,
 * and escapes RE2 does not know (`\Z`, `\uXXXX`: write `\z`, `\x{XXXX}`). Python's `$` also matches just
 * before a final newline; the compiled form keeps that (`\n?$`).
 */
import { RE2JS } from "re2js";
import { MerglotError } from "../errors.js";

/** Compiled keys, shared by every adapter that uses the same key (a merge opens many with the same config). */
const compiled = new Map<string, RE2JS>();
const CACHE_LIMIT = 10_000;

/** Constructs refused because RE2 cannot match them in linear time (named in the error). */
const REFUSED =
  "backreferences, lookaround, atomic groups, possessive quantifiers, conditionals and repeat counts above 1000 " +
  "cannot be matched in linear time and are refused";

/**
 * The compiled matcher for one key, or a MerglotError naming `where` (file and field) and the key. The key is
 * first compiled on its own so that a key which would only be valid spliced into the wrapper (`a)|(b`) is
 * refused rather than allowed to rewrite the wrapper's anchoring.
 */
export function compilePatternKey(key: string, where: string): RE2JS {
  return compileWith(`K:${key}`, key, `^(?:.*\\.)?(?:${key})\\n?$`, where, "key");
}

function compileWith(cacheKey: string, source: string, wrapped: string, where: string, what: string): RE2JS {
  const hit = compiled.get(cacheKey);
  if (hit) return hit;
  let re: RE2JS;
  try {
    RE2JS.compile(source);
    re = RE2JS.compile(wrapped);
  } catch (e) {
    const reason = (e as Error).message.replace(/^error parsing regexp: /, "");
    throw new MerglotError(
      "peft.pattern",
      `${where}: ${what} ${JSON.stringify(source)} is not a regular expression merglot can match (${reason}); ` +
        `PEFT reads it as a regular expression; ${REFUSED}`,
    );
  }
  if (compiled.size >= CACHE_LIMIT) compiled.clear();
  compiled.set(cacheKey, re);
  return re;
}

/**
 * PEFT's `check_target_module_exists` for a string `target_modules`: `re.fullmatch(target_modules, name)`.
 * Compiled with RE2 like the pattern keys (same refusals); `where` names the file and field.
 */
export function compileTargetRegex(regex: string, where: string): RE2JS {
  return compileWith(`T:${regex}`, regex, `^(?:${regex})$`, where, "value");
}

/** Does `target_modules` (a list of names / name suffixes, a full-match regex, "all-linear" or absent) cover
 *  module `name`, as PEFT decides which modules get a LoRA layer? */
export function targetModulesCover(
  targets: readonly string[] | string | null,
  name: string,
  where: string,
): boolean {
  if (targets === null) return true; // PEFT then uses its per-architecture default, which we cannot know
  if (typeof targets === "string") {
    // "all-linear" is resolved against the model when PEFT creates the adapter; any linear module qualifies
    return targets === "all-linear" || compileTargetRegex(targets, where).matches(name);
  }
  return targets.some((t) => t === name || name.endsWith(`.${t}`));
}

/**
 * PEFT's `get_pattern_key`: the first key K (in insertion order) with `re.match(rf"(.*\.)?({K})$", name)`,
 * or undefined when none matches. Every key must be valid (checked when the config is parsed; a key passed
 * here directly is checked now and an invalid one throws).
 */
export function matchPatternKey(
  keys: Iterable<string>,
  moduleName: string,
  where = "pattern",
): string | undefined {
  for (const key of keys) {
    if (key === moduleName) return key;
    if (compilePatternKey(key, where).matches(moduleName)) return key;
  }
  return undefined;
}
