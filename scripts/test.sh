#!/usr/bin/env bash
# Runs the whole Lodestar test suite on a fresh machine: installs the real servers the tests start
# (etcd, dnsmasq, haproxy from Debian) and the browser the admin page test drives (Debian chromium) when they are
# missing, then builds and runs every test project.
# Prints one closing line "N passed, N failed, N skipped" and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
services=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have etcd || { missing+=(etcd-server); services+=(etcd); }
have dnsmasq || { missing+=(dnsmasq); services+=(dnsmasq); }
have haproxy || { missing+=(haproxy); services+=(haproxy); }
# The admin page test drives Debian's chromium through Playwright (no browser download).
have chromium || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing missing test dependencies: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Keep package scripts from starting the daemons system-wide: the tests start their own on loopback ports they
  # pick. A policy the machine already has is left as it is; one made here is removed however the install ends.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$(trap -p EXIT)" ]; then
    $sudo rm -f "$policy"
    trap - EXIT
  fi
  # Should a package have started its daemon anyway, stop that service, which did not exist before this install.
  # Only the package's own service is touched: servers of the same name started any other way keep running.
  for service in "${services[@]}"; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      if systemctl is-active --quiet "$service" 2>/dev/null; then
        echo "Stopping the $service service that installing its package started"
        $sudo systemctl stop "$service" || true
      fi
    elif [ -x "/etc/init.d/$service" ] && $sudo "/etc/init.d/$service" status >/dev/null 2>&1; then
      echo "Stopping the $service service that installing its package started"
      $sudo "/etc/init.d/$service" stop >/dev/null || true
    fi
  done
fi

results="artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"

status=0
dotnet build Lodestar.slnx -c Release -nologo -clp:ErrorsOnly || exit 1
# One test assembly at a time: the suites start real servers and load loops, and two cores shared by
# six assemblies starve timers enough to blur what the tests measure.
dotnet test Lodestar.slnx -c Release --no-build -nologo -m:1 \
  --logger "trx" --logger "console;verbosity=minimal" \
  --results-directory "$results" -- RunConfiguration.TestSessionTimeout=3600000 || status=$?

# One closing line for CI: totals over every test project's results.
python3 - "$results" <<'PY' || true
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
for path in glob.glob(sys.argv[1] + "/*.trx"):
    counters = ET.parse(path).getroot().find("t:ResultSummary/t:Counters", ns)
    if counters is None:
        continue
    passed += int(counters.get("passed", 0))
    failed += int(counters.get("failed", 0)) + int(counters.get("error", 0)) + int(counters.get("timeout", 0)) + int(counters.get("aborted", 0))
    skipped += int(counters.get("notExecuted", 0))
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit "$status"
