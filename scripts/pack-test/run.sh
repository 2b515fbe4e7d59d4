#!/usr/bin/env bash
# The distribution test: packs merglot, installs the tarball into a fresh project the way a user does
# (npm 10, the npm that ships with Node 20, which runs dependencies' install scripts), and checks that
#   - the install runs no install script at all and needs nothing beyond the registry's packages;
#   - node_modules stays within the size budget (PACK_TEST_BUDGET_MB, default 60);
#   - the CLI works there: --version, a merge of the demo adapters (twice: byte-identical), inspect, score;
#   - each optional backend that is absent gives its one-line install hint (exit 1, no stack trace);
#   - the library imports with its types: tsc (strict, skipLibCheck off) on a consumer file, then runs it.
# Client: npm@10 from the registry (installed into the temporary folder), unless PACK_TEST_NPM names an
# npm binary; an npm with npm 11's install-script policy then gets --dangerously-allow-all-scripts, so that
# scripts run as under npm 10. PACK_TEST_KEEP=1 keeps the temporary folder (its path is printed).
# Usage: scripts/pack-test/run.sh   (from anywhere; needs the npm registry, nothing else)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
budget_mb="${PACK_TEST_BUDGET_MB:-60}"
work="$(mktemp -d "${TMPDIR:-/tmp}/merglot-pack-test.XXXXXX")"
[ -n "${PACK_TEST_KEEP:-}" ] && echo "pack-test: keeping $work" || trap 'rm -rf "$work"' EXIT
t0=$(date +%s)
fail() {
  echo "pack-test: FAIL: $*" >&2
  exit 1
}
step() { echo "pack-test: [$(($(date +%s) - t0)) s] $*"; }

# --- the npm client ----------------------------------------------------------------------------------
if [ -n "${PACK_TEST_NPM:-}" ]; then
  npm_bin="$PACK_TEST_NPM"
else
  step "installing npm@10 (Node 20's npm) into the temporary folder"
  npm install --prefix "$work/npm10" npm@10 --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  npm_bin="$work/npm10/node_modules/.bin/npm"
fi
script_flags=(--ignore-scripts=false --foreground-scripts)
# npm 11's install-script policy knows this setting ("false"); npm 10 does not ("undefined").
if [ "$("$npm_bin" config get dangerously-allow-all-scripts 2>/dev/null)" = "false" ]; then
  script_flags+=(--dangerously-allow-all-scripts)
fi
step "client: npm $("$npm_bin" --version), node $(node --version), ignore-scripts=$("$npm_bin" config get ignore-scripts 2>/dev/null), flags: ${script_flags[*]}"

# --- pack --------------------------------------------------------------------------------------------
step "clean build and npm pack"
(cd "$repo" && rm -rf dist && npm run build --silent && npm pack --ignore-scripts --pack-destination "$work" --silent >/dev/null) 2>&1 |
  grep -v "Unknown project config" || true
tarball="$(ls "$work"/merglot-*.tgz)"
version="$(node -p 'require(process.argv[1]).version' "$repo/package.json")"
step "tarball: $(basename "$tarball"), $(du -h "$tarball" | cut -f1)"

# --- install as a user -------------------------------------------------------------------------------
app="$work/app"
mkdir -p "$app"
cd "$app"
printf '{ "name": "merglot-consumer", "version": "1.0.0", "private": true, "type": "module" }\n' >package.json
i0=$(date +%s)
"$npm_bin" install "$tarball" "${script_flags[@]}" --no-audit --no-fund >install.log 2>&1 ||
  { cat install.log >&2; fail "npm install of the tarball failed"; }
step "installed in $(($(date +%s) - i0)) s"

# No dependency may run code at install time (a postinstall is where downloads and native builds hide).
scripts="$(node -e '
const fs = require("fs"), path = require("path");
const out = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory() && !e.isSymbolicLink()) continue;
    const p = path.join(dir, e.name);
    if (e.name.startsWith("@")) { walk(p); continue; }
    const m = path.join(p, "package.json");
    if (fs.existsSync(m)) {
      const j = JSON.parse(fs.readFileSync(m, "utf8")), s = j.scripts || {};
      const hooks = ["preinstall", "install", "postinstall"].filter((h) => s[h]);
      if (fs.existsSync(path.join(p, "binding.gyp"))) hooks.push("binding.gyp");
      if (hooks.length) out.push(`${j.name}@${j.version} (${hooks.join(", ")})`);
    }
    if (fs.existsSync(path.join(p, "node_modules"))) walk(path.join(p, "node_modules"));
  }
})("node_modules");
console.log(out.join("\n"));')"
[ -z "$scripts" ] || fail "packages with install scripts in a consumer install: $scripts"
# Engine warnings: vega-lite 6 declares node >=22 but works on 20 (the report's test renders with it here).
allowed="$(grep -o "EBADENGINE *package: '[^']*'" install.log | grep "package: 'vega-lite@" || true)"
engines="$(grep -o "EBADENGINE *package: '[^']*'" install.log | grep -v "package: 'vega-lite@" || true)"
[ -z "$engines" ] || fail "unexpected engine warnings: $engines"
[ -z "$allowed" ] || step "known engine warning (works on Node 20): $allowed"
for pkg in node-llama-cpp @huggingface/transformers onnxruntime-node onnxruntime-web kuromoji jieba-wasm sharp; do
  [ ! -e "node_modules/$pkg" ] || fail "$pkg was installed, but it is an optional backend"
done

size_mb="$(du -sm node_modules | cut -f1)"
step "installed size: $(du -sh node_modules | cut -f1) (${size_mb} MB by du -sm; budget ${budget_mb} MB)"
[ "$size_mb" -le "$budget_mb" ] || fail "node_modules is ${size_mb} MB, over the ${budget_mb} MB budget"

# --- the CLI -----------------------------------------------------------------------------------------
got="$(npx --no-install merglot --version)"
[ "$got" = "$version" ] || fail "merglot --version printed '$got', expected '$version'"
step "npx merglot --version: $got"

merglot="node_modules/.bin/merglot" # npx's own start-up costs ~1 s a call; the bin is what npx runs
recipe="node_modules/merglot/data/demo/recipe.yaml"
"$merglot" merge "$recipe" -o merged --json >merge.json 2>merge.err
# the WebAssembly kernels are in the tarball and load from the installed package (else merge warns)
if grep -q "WebAssembly kernel" merge.err; then cat merge.err >&2; fail "the WebAssembly kernels do not load from the installed package"; fi
"$merglot" merge "$recipe" -o merged-again --json >/dev/null
node -e '
const s = JSON.parse(require("fs").readFileSync("merge.json", "utf8"));
if (s.method !== "knots_ties" || s.adapters !== 5 || !(s.modules > 0)) throw new Error("merge summary: " + JSON.stringify(s));'
cmp merged/adapter_model.safetensors merged-again/adapter_model.safetensors || fail "two merges differ"
step "merge of the demo adapters: $(node -p 'const s=require("./merge.json"); `${s.method}, ${s.adapters} adapters, ${s.modules} modules, rank ${s.rank.max}`'); repeat byte-identical"

"$merglot" inspect merged >inspect.txt
grep -q "^base *merglot/tiny-llama-demo" inspect.txt || fail "inspect output: $(head -3 inspect.txt)"
step "inspect: $(sed -n 3p inspect.txt)"

printf '%s\n' '{"label":"pos"}' '{"label":"neg"}' '{"label":"pos"}' '{"label":"neg"}' >pred.jsonl
printf '%s\n' '{"label":"pos"}' '{"label":"pos"}' '{"label":"pos"}' '{"label":"neg"}' >ref.jsonl
printf '%s\n' '{"logprobs":[-1,-2]}' '{"logprobs":[-3,-1]}' >mc-pred.jsonl
printf '%s\n' '{"choices":["a","b"],"gold":0}' '{"choices":["a","b"],"gold":0}' >mc-ref.jsonl
printf '%s\n' '{"text":"the cat sat on the mat"}' '{"text":"a dog ran home"}' >texts.jsonl
score() { "$merglot" score "$@" --json | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8")).headline.value'; }
[ "$(score --metric accuracy --pred pred.jsonl --ref ref.jsonl)" = "0.75" ] || fail "accuracy"
[ "$(score --metric acc --pred mc-pred.jsonl --ref mc-ref.jsonl)" = "0.5" ] || fail "multiple-choice acc"
[ "$(score --metric rouge1 --pred texts.jsonl --ref texts.jsonl --lang en)" = "1" ] || fail "rouge1"
step "score: accuracy 0.75, multiple-choice acc 0.5, ROUGE-1 of identical texts 1 (as expected by hand)"

# --- absent backends: one line each, exit 1 ----------------------------------------------------------
expect_hint() { # package, then the merglot arguments
  local pkg="$1"
  shift
  set +e
  "$merglot" "$@" >hint.out 2>hint.err
  local rc=$?
  set -e
  [ "$rc" = 1 ] || fail "merglot $* exited $rc (expected 1): $(cat hint.err)"
  [ "$(wc -l <hint.err)" = 1 ] || fail "merglot $*: expected one line on stderr, got: $(cat hint.err)"
  grep -q "^merglot: .*optional package $pkg, which is not installed; .*: npm install $pkg@" hint.err ||
    fail "merglot $*: $(cat hint.err)"
  [ ! -s hint.out ] || fail "merglot $*: printed output before failing"
}
expect_hint jieba-wasm score --metric rouge1 --pred texts.jsonl --ref texts.jsonl --lang zh
expect_hint kuromoji score --metric rouge1 --pred texts.jsonl --ref texts.jsonl --lang ja
expect_hint @huggingface/transformers score --metric bertscore --pred texts.jsonl --ref texts.jsonl --lang en --model no-model
step "absent backends (jieba-wasm, kuromoji, @huggingface/transformers): one-line install hints, exit 1"

# --- the library, with types -------------------------------------------------------------------------
cp "$repo/scripts/pack-test/consumer.ts" consumer.ts
ts_version="$(node -p 'require(process.argv[1]).devDependencies.typescript' "$repo/package.json")"
types_version="$(node -p 'require(process.argv[1]).devDependencies["@types/node"]' "$repo/package.json")"
"$npm_bin" install --save-dev "typescript@$ts_version" "@types/node@$types_version" "${script_flags[@]}" \
  --no-audit --no-fund >install-ts.log 2>&1 || { cat install-ts.log >&2; fail "installing typescript"; }
cat >tsconfig.json <<'EOF'
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "skipLibCheck": false,
    "types": ["node"],
    "outDir": "out"
  },
  "files": ["consumer.ts"]
}
EOF
node_modules/.bin/tsc -p tsconfig.json || fail "tsc on the consumer file"
node out/consumer.js || fail "the consumer program"
cmp merged/adapter_model.safetensors lib-merged/adapter_model.safetensors || fail "library and CLI merges differ"
step "library: tsc (strict, skipLibCheck off) and run OK; library merge byte-identical to the CLI's"

step "PASS: core install ${size_mb} MB, $(($(date +%s) - t0)) s in all"
