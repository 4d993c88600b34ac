#!/usr/bin/env bash
# Measures, in one run and interleaved, (a) a local upstream directly,
# (b) a bare httputil.ReverseProxy in front of it, (c) Gatehouse with
# API-key auth and the default policy in front of it, and (d) Gatehouse
# with a JWT from its own token endpoint; prints req/s, p50, p99 and the
# ratios c/b and d/b.
#
#   bench/run.sh                 # 3 rounds of 10 s per target
#   ROUNDS=5 DURATION=20s CONNS=64 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10s} CONNS=${CONNS:-64} THREADS=${THREADS:-2}

if ! command -v wrk >/dev/null; then
  echo "installing wrk…" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "building…" >&2
go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/upstream" ./bench/upstream
go build -o "$work/bareproxy" ./bench/bareproxy

"$work/upstream" -addr 127.0.0.1:9100 & pids+=($!)
"$work/bareproxy" -addr 127.0.0.1:9101 -upstream http://127.0.0.1:9100 2>/dev/null & pids+=($!)
cat >"$work/g.yaml" <<YAML
listen: 127.0.0.1:9102
admin_listen: 127.0.0.1:9103
data_dir: $work/data
# Limits stay on (memory backend) but high enough that wrk measures the
# proxy path, not 429s.
ratelimit: {default: {requests: 1000000000, per: 1m}}
audit: {durability: ${AUDIT_DURABILITY:-sync}}
routes:
  - name: bench
    path: /
    upstream: http://127.0.0.1:9100
    scopes: [bench]
YAML
GATEHOUSE_ADMIN_TOKEN=bench-admin-token-0123456789 "$work/gatehouse" serve --config "$work/g.yaml" >"$work/out.log" 2>"$work/gatehouse.log" & pids+=($!)
for port in 9100 9101 9102 9103; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
key=$(GATEHOUSE_ADDR=http://127.0.0.1:9103 GATEHOUSE_TOKEN=bench-admin-token-0123456789 \
  "$work/gatehouse" keys create --name bench --scopes bench --json | sed -n 's/.*"key": "\([^"]*\)".*/\1/p')
[ -n "$key" ] || { echo "could not create a key" >&2; exit 1; }
client=$(GATEHOUSE_ADDR=http://127.0.0.1:9103 GATEHOUSE_TOKEN=bench-admin-token-0123456789 \
  "$work/gatehouse" clients create --name bench --scopes bench --json)
cid=$(echo "$client" | sed -n 's/.*"client_id": "\([^"]*\)".*/\1/p')
csecret=$(echo "$client" | sed -n 's/.*"client_secret": "\([^"]*\)".*/\1/p')
jwt=$(curl -s -u "$cid:$csecret" -d grant_type=client_credentials http://127.0.0.1:9102/oauth/token | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$jwt" ] || { echo "could not get a JWT" >&2; exit 1; }

# wrk_once URL [header] → "reqs p50_ms p99_ms"
wrk_once() {
  local args=(-t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$1")
  [ $# -gt 1 ] && args+=(-H "$2")
  wrk "${args[@]}" | awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { r=$2 } / 50%/ { p50=ms($2) } / 99%/ { p99=ms($2) }
    END { printf "%.0f %.3f %.3f\n", r, p50, p99 }'
}

for round in $(seq "$ROUNDS"); do
  for t in direct bare gatehouse jwt; do
    case $t in
      direct)    res=$(wrk_once http://127.0.0.1:9100/api/x) ;;
      bare)      res=$(wrk_once http://127.0.0.1:9101/api/x) ;;
      gatehouse) res=$(wrk_once http://127.0.0.1:9102/api/x "Authorization: Bearer $key") ;;
      jwt)       res=$(wrk_once http://127.0.0.1:9102/api/x "Authorization: Bearer $jwt") ;;
    esac
    read -r r p50 p99 <<<"$res"
    printf 'round %d  %-10s %8s req/s  p50 %7s ms  p99 %7s ms\n' "$round" "$t" "$r" "$p50" "$p99" >&2
    echo "$t $r $p50 $p99 $round" >>"$work/results"
  done
done

# 499 is wrk closing its connections at the end of a run; anything else
# is a real error.
if grep -o '"status":[45][0-9]*' "$work/gatehouse.log" | grep -qv '"status":499'; then
  echo "warning: gatehouse answered some requests with an error:" >&2
  grep -o '"status":[45][0-9]*' "$work/gatehouse.log" | grep -v 499 | sort | uniq -c >&2
fi

echo
awk -v rounds="$ROUNDS" -v dur="$DURATION" -v conns="$CONNS" '
  { n[$1]++; r[$1]+=$2; p50[$1]+=$3; p99[$1]+=$4; rr[$1, $5]=$2 }
  END {
    printf "%-12s %12s %10s %10s\n", "target", "req/s", "p50 ms", "p99 ms"
    split("direct bare gatehouse jwt", order, " ")
    for (i = 1; i <= 4; i++) { t = order[i]; printf "%-12s %12.0f %10.3f %10.3f\n", t, r[t]/n[t], p50[t]/n[t], p99[t]/n[t] }
    printf "ratio gatehouse(api key)/bare: %.3f   ratio gatehouse(jwt)/bare: %.3f   (totals)\n", r["gatehouse"]/r["bare"], r["jwt"]/r["bare"]
    # The median of the per-round ratios resists one disturbed round.
    split("gatehouse jwt", cs, " ")
    for (c = 1; c <= 2; c++) {
      k = 0
      for (i = 1; i <= rounds; i++) { v[++k] = rr[cs[c], i] / rr["bare", i] }
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
      med[c] = (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    printf "median per-round ratio: api key %.3f   jwt %.3f\n", med[1], med[2]
    printf "(%d rounds x %s, %d connections, interleaved)\n", rounds, dur, conns
  }' "$work/results"
