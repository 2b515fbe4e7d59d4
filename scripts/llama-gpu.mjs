#!/usr/bin/env node
// Installs node-llama-cpp's prebuilt GPU binary package into a clone of merglot (README "GPUs for the llama.cpp
// runner"), for `merglot eval --gpu cuda|vulkan|auto`.
//
//   npm run llama-gpu -- cuda|vulkan|metal [--dry-run]
//
// The repository's package.json replaces node-llama-cpp's GPU packages with empty ones (`overrides`) to keep
// `npm ci` small, and npm applies overrides to anything `npm install` adds, so the binary cannot be installed
// with `npm install` here. This script fetches the one package at exactly the version the installed
// node-llama-cpp pins (its optionalDependencies) with `npm pack` from the npm registry, and unpacks it into the
// node_modules folder that holds node-llama-cpp, where node-llama-cpp's `import("@node-llama-cpp/…")` finds
// it. Nothing is compiled and no install script runs. `npm ci` / `npm install` put the empty package back:
// run this again after them. --dry-run resolves the package and checks it on the registry
// (`npm pack --dry-run`), writing nothing.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

const FLAVOURS = {
  "linux-x64": { cuda: "linux-x64-cuda", vulkan: "linux-x64-vulkan" },
  "win32-x64": { cuda: "win-x64-cuda", vulkan: "win-x64-vulkan" },
  "darwin-arm64": { metal: "mac-arm64-metal" },
};

function fail(msg) {
  process.stderr.write(`llama-gpu: ${msg}\n`);
  process.exit(1);
}

const args = process.argv.slice(2);
const dryRun = args.includes("--dry-run");
const flavour = args.find((a) => !a.startsWith("--"));
const platform = `${process.platform}-${process.arch}`;
const available = FLAVOURS[platform] ?? {};
if (!flavour || !(flavour in available))
  fail(
    `usage: npm run llama-gpu -- ${Object.keys(available).join("|") || "(none on " + platform + ")"} [--dry-run]` +
      (flavour ? ` (no "${flavour}" binary for ${platform})` : ""),
  );

// The node_modules folder that holds node-llama-cpp, searched upwards from here as Node resolves packages.
let dir = resolve(".");
let llamaDir;
for (;;) {
  const candidate = join(dir, "node_modules", "node-llama-cpp");
  if (existsSync(join(candidate, "package.json"))) {
    llamaDir = candidate;
    break;
  }
  const up = dirname(dir);
  if (up === dir) fail("node-llama-cpp is not installed here (npm ci, or npm install node-llama-cpp@3.22.1)");
  dir = up;
}
const llama = JSON.parse(readFileSync(join(llamaDir, "package.json"), "utf8"));
const name = `@node-llama-cpp/${available[flavour]}`;
const version = llama.optionalDependencies?.[name];
if (!version) fail(`node-llama-cpp ${llama.version} does not list ${name} among its binaries`);
const spec = `${name}@${version}`;
const dest = join(dirname(llamaDir), ...name.split("/"));
// On Windows npm is npm.cmd, which execFile runs only through a shell.
const npm = (argv) =>
  execFileSync(process.platform === "win32" ? "npm.cmd" : "npm", argv, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    shell: process.platform === "win32",
  });

const [info] = JSON.parse(npm(["pack", spec, "--dry-run", "--json"]));
if (info.name !== name || info.version !== version)
  fail(`the registry answered ${info.name}@${info.version} for ${spec}`);
const mb = (n) => `${(n / 1e6).toFixed(0)} MB`;
console.log(
  `${spec} for node-llama-cpp ${llama.version}: ${mb(info.size)} download, ${mb(info.unpackedSize)} unpacked, ` +
    `${info.entryCount} files → ${dest}`,
);
if (dryRun) process.exit(0);

const tmp = mkdtempSync(join(tmpdir(), "merglot-llama-gpu-"));
try {
  const [packed] = JSON.parse(npm(["pack", spec, "--json", "--pack-destination", tmp]));
  const unpacked = join(tmp, "unpacked");
  mkdirSync(unpacked);
  execFileSync("tar", ["-xzf", join(tmp, packed.filename), "-C", unpacked, "--strip-components=1"]);
  const got = JSON.parse(readFileSync(join(unpacked, "package.json"), "utf8"));
  if (got.name !== name || got.version !== version) fail(`the tarball holds ${got.name}@${got.version}`);
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dirname(dest), { recursive: true });
  // A copy, not a rename: the temp folder may be on another filesystem.
  cpSync(unpacked, dest, { recursive: true });
  console.log(
    `installed ${spec}; use it with: merglot eval --gpu ${flavour === "metal" ? "auto" : flavour} …`,
  );
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
