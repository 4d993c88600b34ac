#!/usr/bin/env bash
# Measures, in one run and interleaved, a local upstream (direct), a bare
# httputil.ReverseProxy (bare), nginx proxy_pass with keepalive to the
# upstream (nginx), Gatehouse with API-key auth and the default policy
# (gatehouse) and Gatehouse with a JWT from its own token endpoint (jwt).
# For each it reports req/s, p50 and p99, and the proxy process's CPU per
# request (utime+stime from /proc/PID/stat over the run, divided by the
# requests wrk completed), and the ratios to the bare proxy; for the
# gatehouse target also the audit log's fsyncs per second and events per
# fsync (from the admin listener's /health/ready). Then an
# open-loop run (bench/openloop) at OPEN_SHARE of the bare proxy's
# measured capacity reports the latency Gatehouse adds at that load, and
# last the components' own benchmarks (access line, access log writer,
# sync audit append at 32 and 64 writers, JWT cache miss, the request path
# in process) print their figures, unless COMPONENTS=0.
#
#   bench/run.sh                 # 3 rounds of 10 s per target, 64 connections
#   ROUNDS=5 DURATION=20s CONNS=32 bench/run.sh
#   AUDIT_DURABILITY=batch ACCESS_LOG=false bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10s} CONNS=${CONNS:-64} THREADS=${THREADS:-2}
OPEN_SHARE=${OPEN_SHARE:-0.5} OPEN_DURATION=${OPEN_DURATION:-10s}

if ! command -v wrk >/dev/null; then
  echo "installing wrk…" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
bash scripts/ensure-nginx.sh >&2
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "building…" >&2
go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/upstream" ./bench/upstream
go build -o "$work/bareproxy" ./bench/bareproxy
go build -o "$work/openloop" ./bench/openloop

"$work/upstream" -addr 127.0.0.1:9100 & pids+=($!)
"$work/bareproxy" -addr 127.0.0.1:9101 -upstream http://127.0.0.1:9100 2>/dev/null & bare_pid=$!; pids+=($bare_pid)
cat >"$work/nginx.conf" <<NGINX
daemon on;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
worker_processes auto;
events { worker_connections 4096; }
http {
  access_log off;
  upstream up { server 127.0.0.1:9100; keepalive 256; keepalive_requests 100000; }
  server {
    listen 127.0.0.1:9104 reuseport backlog=4096;
    keepalive_requests 100000;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}
NGINX
"$NGINX" -c "$work/nginx.conf" -p "$work" 2>/dev/null
cat >"$work/g.yaml" <<YAML
listen: 127.0.0.1:9102
admin_listen: 127.0.0.1:9103
data_dir: $work/data
# Limits stay on (memory backend) but high enough that wrk measures the
# proxy path, not 429s.
ratelimit: {default: {requests: 1000000000, per: 1m}}
audit: {durability: ${AUDIT_DURABILITY:-sync}}
log: {access: ${ACCESS_LOG:-true}}
routes:
  - name: bench
    path: /
    upstream: http://127.0.0.1:9100
    scopes: [bench]
YAML
GATEHOUSE_ADMIN_TOKEN=bench-admin-token-0123456789 "$work/gatehouse" serve --config "$work/g.yaml" >"$work/out.log" 2>"$work/gatehouse.log" & gh_pid=$!; pids+=($gh_pid)
for port in 9100 9101 9102 9103 9104; do
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

tck=$(getconf CLK_TCK)
# cpu_ticks PID… → utime+stime of the processes (and their threads), in ticks
cpu_ticks() {
  local total=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    # Fields after the parenthesised command name: utime is the 12th, stime the 13th.
    total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
nginx_pids() { local m; m=$(cat "$work/nginx.pid"); echo "$m $(pgrep -P "$m" | tr '\n' ' ')"; }
pids_of() {
  case $1 in
    direct) echo "" ;;
    bare) echo "$bare_pid" ;;
    nginx) nginx_pids ;;
    gatehouse|jwt) echo "$gh_pid" ;;
  esac
}

# audit_counts → "events fsyncs" of Gatehouse's file audit log so far, from
# the audit check's detail on the admin listener's /health/ready.
audit_counts() {
  curl -s http://127.0.0.1:9103/health/ready | sed -n 's/.*"detail":"file ([a-z]*): \([0-9]*\) events in \([0-9]*\) fsyncs.*/\1 \2/p'
}

# wrk_once URL [header] → "reqs_per_s p50_ms p99_ms total_requests"
wrk_once() {
  local args=(-t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$1")
  [ $# -gt 1 ] && args+=(-H "$2")
  wrk "${args[@]}" | awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { r=$2 } / 50%/ { p50=ms($2) } / 99%/ { p99=ms($2) } /requests in/ { n=$1 }
    END { printf "%.0f %.3f %.3f %d\n", r, p50, p99, n }'
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
targets="direct bare nginx gatehouse jwt"
for round in $(seq "$ROUNDS"); do
  for t in $targets; do
    read -r -a tp <<<"$(pids_of "$t")"
    [ "$t" = gatehouse ] && { read -r ev0 fs0 <<<"$(audit_counts)"; t0=$(date +%s%N); }
    before=$(cpu_ticks "${tp[@]}")
    case $t in
      direct)    res=$(wrk_once http://127.0.0.1:9100/api/x) ;;
      bare)      res=$(wrk_once http://127.0.0.1:9101/api/x) ;;
      nginx)     res=$(wrk_once http://127.0.0.1:9104/api/x) ;;
      gatehouse) res=$(wrk_once http://127.0.0.1:9102/api/x "Authorization: Bearer $key") ;;
      jwt)       res=$(wrk_once http://127.0.0.1:9102/api/x "Authorization: Bearer $jwt") ;;
    esac
    after=$(cpu_ticks "${tp[@]}")
    read -r r p50 p99 n <<<"$res"
    cpu_us=$(awk -v d="$((after - before))" -v tck="$tck" -v n="$n" 'BEGIN { if (n > 0 && d > 0) printf "%.1f", d * 1e6 / tck / n; else print "-" }')
    printf 'round %d  %-10s %8s req/s  p50 %7s ms  p99 %7s ms  cpu %6s µs/req\n' "$round" "$t" "$r" "$p50" "$p99" "$cpu_us" >&2
    if [ "$t" = gatehouse ] && [ -n "${fs0:-}" ]; then
      read -r ev1 fs1 <<<"$(audit_counts)"
      echo "$((ev1 - ev0)) $((fs1 - fs0)) $(($(date +%s%N) - t0))" >>"$work/audit"
      tail -n1 "$work/audit" | awk '$2 > 0 { printf "         audit      %8.0f fsyncs/s  %6.1f events per fsync\n", $2 * 1e9 / $3, $1 / $2 }' >&2
    fi
    echo "$t $r $p50 $p99 $round $cpu_us" >>"$work/results"
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
  { n[$1]++; r[$1]+=$2; p50[$1]+=$3; p99[$1]+=$4; rr[$1, $5]=$2; rc[$1, $5]=$6; if ($6 != "-") { cpu[$1]+=$6; nc[$1]++ } }
  END {
    printf "%-12s %10s %9s %9s %12s %10s %10s\n", "target", "req/s", "p50 ms", "p99 ms", "cpu µs/req", "req/s÷bare", "cpu÷bare"
    split("direct bare nginx gatehouse jwt", order, " ")
    cb = nc["bare"] ? cpu["bare"]/nc["bare"] : 0
    for (i = 1; i <= 5; i++) {
      t = order[i]; c = nc[t] ? cpu[t]/nc[t] : 0
      printf "%-12s %10.0f %9.3f %9.3f %12s %10.3f %10s\n", t, r[t]/n[t], p50[t]/n[t], p99[t]/n[t], (c ? sprintf("%.1f", c) : "-"), r[t]/r["bare"], (c && cb ? sprintf("%.3f", c/cb) : "-")
    }
    # The median of the per-round ratios resists one disturbed round: a
    # round runs its targets back to back, so they share its conditions.
    split("gatehouse jwt", cs, " ")
    for (c = 1; c <= 2; c++) {
      k = 0
      for (i = 1; i <= rounds; i++) { v[++k] = rr[cs[c], i] / rr["bare", i] }
      med[c] = median(v, k)
      k = 0
      for (i = 1; i <= rounds; i++) if (rc[cs[c], i] != "-" && rc["bare", i] != "-" && rc["bare", i] > 0) { v[++k] = rc[cs[c], i] / rc["bare", i] }
      medc[c] = k ? median(v, k) : 0
    }
    printf "median per-round req/s ratio to bare: api key %.3f   jwt %.3f\n", med[1], med[2]
    printf "median per-round cpu ratio to bare:   api key %.3f   jwt %.3f\n", medc[1], medc[2]
    printf "(%d rounds x %s, %d connections, interleaved)\n", rounds, dur, conns
  }
  function median(v, k,    i, j, x) {
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
    return (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
  }' "$work/results"

[ -s "$work/audit" ] && awk '{ e += $1; f += $2; ns += $3 } END { if (f > 0) printf "gatehouse audit (%s): %.0f fsyncs/s, %.1f events per fsync\n", "'"${AUDIT_DURABILITY:-sync}"'", f * 1e9 / ns, e / f }' "$work/audit"

# Open loop: a fixed rate at OPEN_SHARE of the bare proxy's capacity.
bare_rps=$(awk '$1 == "bare" { s += $2; n++ } END { printf "%.0f", s / n }' "$work/results")
rate=$(awk -v r="$bare_rps" -v s="$OPEN_SHARE" 'BEGIN { printf "%.0f", r * s }')
echo
echo "open loop at $rate req/s ($OPEN_SHARE of the bare proxy's $bare_rps), $OPEN_DURATION, latency from when each request was due:"
printf '%-12s %9s %9s %9s %9s %9s %7s\n' target "sent/s" "p50 ms" "p90 ms" "p99 ms" "p99.9 ms" errors
for t in bare nginx gatehouse; do
  case $t in
    bare)      out=$("$work/openloop" -url http://127.0.0.1:9101/api/x -rate "$rate" -duration "$OPEN_DURATION" -c "$CONNS") ;;
    nginx)     out=$("$work/openloop" -url http://127.0.0.1:9104/api/x -rate "$rate" -duration "$OPEN_DURATION" -c "$CONNS") ;;
    gatehouse) out=$("$work/openloop" -url http://127.0.0.1:9102/api/x -rate "$rate" -duration "$OPEN_DURATION" -c "$CONNS" -H "Authorization: Bearer $key") ;;
  esac
  read -r _ sent o50 o90 o99 o999 oerr <<<"$out"
  printf '%-12s %9s %9s %9s %9s %9s %7s\n' "$t" "$sent" "$o50" "$o90" "$o99" "$o999" "$oerr"
  echo "$t $o50 $o99" >>"$work/open"
done
awk '{ p50[$1]=$2; p99[$1]=$3 } END { printf "gatehouse adds at this load: p50 %+.3f ms, p99 %+.3f ms (against the bare proxy)\n", p50["gatehouse"]-p50["bare"], p99["gatehouse"]-p99["bare"] }' "$work/open"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Components: what the request path's parts cost on their own, from their
# go test benchmarks (COMPONENTS=0 skips them; bench/pgaudit.sh measures
# the PostgreSQL audit log).
[ "${COMPONENTS:-1}" = 0 ] && exit 0
echo
echo "components (go test -bench, this machine, now):"
# bench_lines PKG REGEXP → the benchmark lines, name and metrics
bench_lines() {
  go test "$1" -run '^$' -bench "$2" -benchmem -count 1 2>/dev/null | awk '/^Benchmark/ { $2 = ""; sub(/-[0-9]+ /, " "); print "  " $0 }'
}
echo " access line, formatted on the request path (direct) and through slog:"
bench_lines ./internal/gateway '^BenchmarkAccessLine$'
echo " access log writer, line through the redactor to a file on the request path (sync) or handed to logbuf (async):"
bench_lines ./internal/logbuf '^BenchmarkAccessLine$'
echo " sync-durable audit append, 32 and 64 concurrent writers (cpu-µs/op is the process's CPU per event), and an open loop at 4,000 events/s:"
bench_lines ./internal/audit '^BenchmarkAppendSync(32|64|OpenLoop)$'
echo " JWT verification on a cache miss, and the Ed25519 signature check alone:"
bench_lines ./internal/authn '^(BenchmarkVerifyJWTCacheMiss|BenchmarkEd25519Verify)$'
echo " the whole request path in process, bare reverse proxy and gatehouse, no sockets (events and log lines discarded):"
bench_lines ./internal/gateway '^BenchmarkProxyPath$'
