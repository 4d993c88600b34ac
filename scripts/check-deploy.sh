#!/usr/bin/env bash
# Checks deploy/: renders the Helm chart with `helm template` (helm run as a
# Go module, pinned) under three sets of values, checks that the output
# parses into the expected kinds and keeps its promises (probes, non-root,
# read-only root, drain timing, admin port ClusterIP only, gatehouse.yaml
# accepted by Gatehouse's own config loader), checks that invalid values are
# refused, checks the compose stack (its Prometheus and Grafana included),
# and checks deploy/observability: the alert rules with `promtool check
# rules` and their unit tests with `promtool test rules` (promtool run as a
# Go module, pinned), and that the rules and the Grafana dashboard read
# only metrics and labels Gatehouse exports and link runbook sections that
# exist. Exits non-zero with the reason.
#
# The first run compiles helm and promtool (minutes each on a 2-core
# machine, about 10 for promtool; Go caches both after).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

HELM_MODULE=helm.sh/helm/v3/cmd/helm@v3.22.0
PROMTOOL_MODULE=github.com/prometheus/prometheus/cmd/promtool@v0.316.0   # Prometheus 3.16.0
OBS=${OBS:-deploy/observability}   # override to check another copy
CHART=${CHART:-deploy/helm/gatehouse}   # override to check another copy
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

fail() { echo "check-deploy: FAIL: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

helm() { go run "$HELM_MODULE" "$@"; }
promtool() { go run "$PROMTOOL_MODULE" "$@"; }

# render NAME [helm args...]: helm template into $out/NAME.yaml, or fail
# with helm's own message.
render() {
  local name=$1; shift
  if ! helm template gatehouse "$CHART" "$@" >"$out/$name.yaml" 2>"$out/$name.err"; then
    cat "$out/$name.err" >&2
    fail "helm template $CHART $* failed"
  fi
}

step "build the checker (deploy/checks)"
go build -o "$out/checks" ./deploy/checks || fail "deploy/checks does not build"

step "helm lint ($HELM_MODULE)"
start=$(date +%s)
helm lint "$CHART" >"$out/lint.txt" 2>&1 || { cat "$out/lint.txt" >&2; fail "helm lint $CHART"; }
echo "helm lint passed ($(( $(date +%s) - start )) s, including building helm when not cached)"

step "helm template: default values"
render default
"$out/checks" manifests -kinds Deployment,Service,ConfigMap,ServiceAccount,PodDisruptionBudget \
  "$out/default.yaml" || fail "default render: see the lines above"

step "helm template: HPA, PDB, Secret, TLS, Vault Agent (deploy/checks/values-full.yaml)"
render full -f deploy/checks/values-full.yaml
"$out/checks" manifests -vault \
  -kinds Deployment,Service,HorizontalPodAutoscaler,PodDisruptionBudget,ConfigMap,ServiceAccount,Secret \
  "$out/full.yaml" || fail "full render: see the lines above"
grep -q 'scheme: HTTPS' "$out/full.yaml" || fail "full render: probes do not use HTTPS with tls.enabled"
grep -q 'name: GATEHOUSE_SECRET_MASTER_KEY' "$out/full.yaml" || fail "full render: the replicas are not given the master key"

step "helm template: gatehouse.yaml rendered by the Vault Agent (deploy/checks/values-vault-config.yaml)"
render vault-config -f deploy/checks/values-vault-config.yaml
"$out/checks" manifests -vault -secrets vault -kinds Deployment,Service,ServiceAccount \
  "$out/vault-config.yaml" || fail "vault-config render: see the lines above"
grep -q '/vault/secrets/gatehouse.yaml' "$out/vault-config.yaml" || fail "vault-config render: --config is not /vault/secrets/gatehouse.yaml"
! grep -q '^kind: ConfigMap' "$out/vault-config.yaml" || fail "vault-config render: a ConfigMap is rendered though Vault renders the config"

step "helm template: invalid values are refused"
refused() {
  local want=$1; shift
  if helm template gatehouse "$CHART" "$@" >/dev/null 2>"$out/refused.err"; then
    fail "helm template $* rendered, but should have been refused ($want)"
  fi
  grep -q "$want" "$out/refused.err" || { cat "$out/refused.err" >&2; fail "helm template $*: refused without saying \"$want\""; }
  echo "refused as expected: $*"
}
refused "must exceed preStopSleepSeconds" --set terminationGracePeriodSeconds=20
refused "tls.enabled needs tls.secretName" --set tls.enabled=true
refused "secrets.source must be sealed or vault" --set secrets.source=file
refused "secrets.source vault needs config.file.secrets.provider vault" --set secrets.source=vault
refused "config.file.store.driver must be postgres" --set config.file.store.driver=sqlite
refused "secrets.source sealed needs the master key" --set secret.create=true
refused "exactly 32 bytes" --set secret.create=true --set secret.masterKey=c2hvcnQ=
refused "at least 16 characters" --set secret.create=true --set secret.adminToken=short

step "compose (deploy/compose: replicas, load balancer, Prometheus, Grafana)"
"$out/checks" compose deploy/compose || fail "deploy/compose: see the lines above"

step "alert rules and dashboard against the code and the runbook ($OBS)"
"$out/checks" observability -runbook docs/operations.md -dashboard-rules "$out/dashboard-queries.yml" "$OBS" ||
  fail "$OBS: a rule or dashboard names a metric, label or runbook anchor that does not exist, or an alert has no test firing it (lines above)"

step "promtool check rules $OBS/alerts.yml ($PROMTOOL_MODULE)"
start=$(date +%s)
promtool check rules "$OBS/alerts.yml" >"$out/promtool-check.txt" 2>&1 ||
  { cat "$out/promtool-check.txt" >&2; fail "promtool check rules $OBS/alerts.yml: the rules do not parse or lint (above)"; }
cat "$out/promtool-check.txt"
echo "promtool check rules passed ($(( $(date +%s) - start )) s, including building promtool when not cached)"

step "promtool check rules: the dashboard's queries (Grafana variables filled in)"
promtool check rules "$out/dashboard-queries.yml" >"$out/promtool-dashboard.txt" 2>&1 ||
  { cat "$out/promtool-dashboard.txt" >&2; fail "$OBS/*.json: a dashboard query is not valid PromQL (rule dashboard:query_N is the Nth query, in panel order; above)"; }
cat "$out/promtool-dashboard.txt"

step "promtool check config --syntax-only deploy/compose/prometheus.yml"
promtool check config --syntax-only deploy/compose/prometheus.yml >"$out/promtool-config.txt" 2>&1 ||
  { cat "$out/promtool-config.txt" >&2; fail "deploy/compose/prometheus.yml is not a valid Prometheus config (above)"; }
cat "$out/promtool-config.txt"

step "promtool test rules $OBS/alerts_test.yml"
promtool test rules "$OBS/alerts_test.yml" >"$out/promtool-test.txt" 2>&1 ||
  { cat "$out/promtool-test.txt" >&2; fail "promtool test rules $OBS/alerts_test.yml: an alert fired when it should not, or not when it should (above)"; }
cat "$out/promtool-test.txt"

echo
echo "check-deploy: OK"
