#!/usr/bin/env bash
# Builds llama.cpp's llama-server (CPU only) from the llama.cpp source that node-llama-cpp ships in its
# package (node_modules/node-llama-cpp/llama/gitRelease.bundle), so the server and merglot's in-process
# llama.cpp runner run the same llama.cpp version.
#
# The build is cached: a second run with the same source commit only prints the binary's path.
# Cache folder: $MERGLOT_LLAMA_SERVER_CACHE, default ~/.cache/merglot/llama-server (outside the repo).
# Jobs: $MERGLOT_BUILD_JOBS, default 2.
# Prints the path of the llama-server binary as its last line.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bundle="$repo_root/node_modules/node-llama-cpp/llama/gitRelease.bundle"
cache="${MERGLOT_LLAMA_SERVER_CACHE:-$HOME/.cache/merglot/llama-server}"
jobs="${MERGLOT_BUILD_JOBS:-2}"

if [[ ! -f "$bundle" ]]; then
  echo "build.sh: $bundle not found; install node-llama-cpp (npm install node-llama-cpp) first" >&2
  exit 1
fi
for tool in git cmake c++; do
  command -v "$tool" >/dev/null || { echo "build.sh: '$tool' is needed and not on PATH" >&2; exit 1; }
done

mkdir -p "$cache"
src="$cache/src"
if [[ ! -d "$src/.git" ]]; then
  git clone --quiet "$bundle" "$src.tmp"
  mv "$src.tmp" "$src"
fi
commit="$(git -C "$src" rev-parse HEAD)"
bundle_commit="$(git bundle list-heads "$bundle" | awk 'NR==1 {print $1}')"
if [[ "$commit" != "$bundle_commit" ]]; then
  # node-llama-cpp was updated: start from its new source.
  rm -rf "$src" "$cache/build"
  git clone --quiet "$bundle" "$src.tmp"
  mv "$src.tmp" "$src"
  commit="$(git -C "$src" rev-parse HEAD)"
fi

build="$cache/build"
binary="$build/bin/llama-server"
stamp="$build/merglot-built-from"
if [[ -x "$binary" && -f "$stamp" && "$(cat "$stamp")" == "$commit" ]]; then
  echo "$binary"
  exit 0
fi

# CPU only; no HTTPS, no downloaded or built web UI, no tests or examples: only what the server target needs.
cmake -S "$src" -B "$build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON \
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF \
  -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON
cmake --build "$build" --target llama-server -j "$jobs"
echo "$commit" > "$stamp"
echo "$binary"
