#!/usr/bin/env bash
# Coverage-guided fuzzing of Lodestar's parsers with SharpFuzz and AFL++.
#
#   scripts/fuzz.sh <seconds> [target]
#
# Installs what is missing (Debian afl++, the SharpFuzz tool from the repository's tool manifest), publishes
# tests/Lodestar.Fuzz into artifacts/fuzz/bin, instruments the Lodestar assemblies there, then runs afl-fuzz on each
# target (or the one named) for <seconds>, one after the other. New interesting inputs are copied into
# tests/Lodestar.Fuzz/Corpus/<target>/ (named by content hash, so reruns add only what is new); an input that makes a
# parser throw an undocumented exception is kept there too as crash-<hash> (one per distinct exception and frame), listed
# with that signature in Corpus/known-crashes.txt, and its stack is written next to the run's findings. Ends with one line
# per target: executions, paths, crashes (as afl-fuzz counts them, and how many distinct new ones), hangs.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/fuzz.sh <seconds> [target]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
seconds="$1"
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -ge 5 ] || { echo "error: <seconds> must be a whole number, 5 or more." >&2; exit 2; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v afl-fuzz >/dev/null 2>&1; then
  echo "Installing afl++ (Debian package)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends afl++ >/dev/null
fi
dotnet tool restore >/dev/null

root="$PWD"
out="$root/artifacts/fuzz"
plain="$out/plain"
bin="$out/bin"
corpus="$root/tests/Lodestar.Fuzz/Corpus"
known="$corpus/known-crashes.txt"
rm -rf "$plain" "$bin"
dotnet publish tests/Lodestar.Fuzz -c Release -o "$plain" -nologo -clp:ErrorsOnly >/dev/null
cp -r "$plain" "$bin"
# Only Lodestar's own assemblies carry coverage; the fuzz driver itself and third-party code stay as they are. The
# plain copy lists the targets and replays crashes: instrumented code needs afl-fuzz's coverage map to run.
for dll in "$bin"/Lodestar*.dll; do
  [ "$(basename "$dll")" = "Lodestar.Fuzz.dll" ] && continue
  dotnet tool run sharpfuzz "$dll" >/dev/null
done

mapfile -t all < <(dotnet "$plain/Lodestar.Fuzz.dll" list | awk '{print $1}')
targets=("${all[@]}")
if [ $# -eq 2 ]; then
  printf '%s\n' "${all[@]}" | grep -qx -- "$2" || { echo "error: unknown target '$2'; known: ${all[*]}" >&2; exit 2; }
  targets=("$2")
fi

# afl-fuzz runs dotnet, which carries no AFL instrumentation of its own: SharpFuzz speaks the fork-server protocol.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
export DOTNET_TieredPGO=0 DOTNET_TC_QuickJitForLoops=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

stat_of() { awk -F': *' -v key="$2" '$1 ~ "^"key" *$" {print $2}' "$1/default/fuzzer_stats" 2>/dev/null | head -n1; }
summary=()
for target in "${targets[@]}"; do
  seeds="$corpus/$target"
  findings="$out/findings/$target"
  rm -rf "$findings"
  mkdir -p "$findings"
  echo "== $target: fuzzing for $seconds s"
  afl-fuzz -i "$seeds" -o "$findings" -V "$seconds" -t 5000 -m none -- "$(command -v dotnet)" "$bin/Lodestar.Fuzz.dll" "$target" \
    >"$findings/afl.log" 2>&1 || { echo "afl-fuzz failed for $target; see $findings/afl.log" >&2; tail -n 20 "$findings/afl.log" >&2; exit 1; }

  added=0
  for input in "$findings"/default/queue/id:*; do
    [ -f "$input" ] || continue
    case "$input" in *orig:*) continue ;; esac
    [ "$(stat -c %s "$input")" -le 65536 ] || continue
    name="$(sha1sum "$input" | cut -c1-16)"
    [ -e "$seeds/$name" ] || { cp "$input" "$seeds/$name"; added=$((added + 1)); }
  done

  crashes=0
  for input in "$findings"/default/crashes/id:*; do
    [ -f "$input" ] || continue
    name="crash-$(sha1sum "$input" | cut -c1-16)"
    # Keep only inputs that still throw an undocumented exception outside afl-fuzz, one per distinct exception and
    # frame (afl-fuzz saves many inputs per bug), with the stack beside them and the signature in known-crashes.txt.
    stack="$findings/$name.txt"
    dotnet "$plain/Lodestar.Fuzz.dll" "$target" "$input" >"$stack" 2>&1 && continue
    signature="$(sed -n '2p' "$stack" | cut -d: -f1) at $(grep -m1 '^   at Lodestar\.' "$stack" | sed -e 's/^   at //' -e 's/(.*) in .*:line /:/')"
    if grep -qF "# $signature" "$known" 2>/dev/null; then
      continue
    fi
    crashes=$((crashes + 1))
    cp "$input" "$seeds/$name"
    echo "$target/$name  # $signature" >>"$known"
    echo "   crash: tests/Lodestar.Fuzz/Corpus/$target/$name: $signature (stack: ${stack#"$root"/})"
  done

  execs="$(stat_of "$findings" execs_done)"
  paths="$(stat_of "$findings" corpus_count)"
  [ -n "$paths" ] || paths="$(stat_of "$findings" paths_total)"
  hangs="$(stat_of "$findings" saved_hangs)"
  [ -n "$hangs" ] || hangs="$(stat_of "$findings" unique_hangs)"
  saved="$(stat_of "$findings" saved_crashes)"
  [ -n "$saved" ] || saved="$(stat_of "$findings" unique_crashes)"
  summary+=("$(printf '%-18s %12s executions %6s paths %4s crashes (%s distinct, new) %4s hangs %5s new corpus files' \
    "$target" "${execs:-0}" "${paths:-0}" "${saved:-0}" "$crashes" "${hangs:-0}" "$added")")
done

echo
printf '%s\n' "${summary[@]}"
