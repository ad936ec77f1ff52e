#!/usr/bin/env bash
# Checks the Prometheus side of deploy/: the scrape configurations parse, the alert rules
# parse, and the alert unit tests in deploy/prometheus/tests pass. Installs promtool
# (Debian's prometheus package) when it is missing, without starting a Prometheus server.
# The dashboards' queries and the metric names they use are checked by the Go tests in
# cmd/tickstash (metrics_test.go), which also need promtool: run this script first.
set -euo pipefail
cd "$(dirname "$0")/prometheus"

if ! command -v promtool >/dev/null 2>&1; then
  echo "installing promtool (Debian package prometheus)"
  # Keep the package's service from starting: it would hold port 9090.
  policy=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -n "$created" ]; then rm -f "$policy"; fi
fi

echo "promtool check config"
promtool check config --syntax-only prometheus.yml
# Debian builds Prometheus without Kubernetes service discovery; an upstream promtool
# checks this file fully.
if ! out=$(promtool check config --syntax-only prometheus-kubernetes.yml 2>&1); then
  if grep -q 'field kubernetes_sd_configs not found' <<<"$out"; then
    echo "  prometheus-kubernetes.yml: skipped, this promtool has no Kubernetes discovery"
  else
    echo "$out" >&2
    exit 1
  fi
fi

echo "promtool check rules"
promtool check rules rules/*.yml

echo "promtool test rules"
promtool test rules tests/*.test.yml
