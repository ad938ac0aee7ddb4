#!/usr/bin/env bash
# Adds every public member that is missing from a library's PublicAPI.Unshipped.txt (RS0016) to that file.
# Run it after a deliberate change to the public surface, then review the diff: it is the API change.
set -euo pipefail
cd "$(dirname "$0")/.."
for project in src/*/*.csproj; do
  if [ -f "$(dirname "$project")/PublicAPI.Unshipped.txt" ]; then
    dotnet format analyzers "$project" --diagnostics RS0016 --severity info -v q
  fi
done
git diff --stat -- 'src/*/PublicAPI.*.txt'
