#!/usr/bin/env bash
# Measures the PostgreSQL audit log: BenchmarkAppendThreeReplicas (three
# replicas of one log, three Log instances appending concurrently to one
# database, 64 clients each, every Record sync-durable) and
# BenchmarkAppendOneReplica (one of them alone) of each git revision in
# REVS, interleaved round by round, with the load average before each run.
# It prints events/s, p50/p99, the WAL bytes and fsyncs per event and the
# CPU time PostgreSQL spent per event (pg-cpu-µs/op: utime+stime of every
# server process from /proc, from the first Record until the leader has
# sequenced everything).
#
# By default it starts a private PostgreSQL cluster (initdb in a temporary
# directory, port PGPORT, the Debian package's binaries, default settings),
# so that nothing else counts in its CPU; PG_DSN=postgres://… uses an
# existing server instead (on this host, or pg-cpu-µs/op is not reported).
#
#   bench/pgaudit.sh                                   # main vs the working tree
#   REVS="main HEAD" ROUNDS=5 EVENTS=300000 bench/pgaudit.sh
#   PG_DSN=postgres://postgres@127.0.0.1:5432/postgres bench/pgaudit.sh
#   WRITERS=1 bench/pgaudit.sh                         # Config.Writers
#   CLIENTS=128 BENCH=AppendThreeReplicas bench/pgaudit.sh  # clients a replica
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
REVS=${REVS:-"main WORKTREE"} ROUNDS=${ROUNDS:-3} EVENTS=${EVENTS:-200000}
BENCH=${BENCH:-"AppendOneReplica|AppendThreeReplicas"}
PGPORT=${PGPORT:-55432} PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}

work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  if [ -f "$work/pg/postmaster.pid" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

for rev in $REVS; do
  dir="$work/src-$rev"
  mkdir -p "$dir"
  if [ "$rev" = WORKTREE ]; then
    git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$dir"
  else
    git archive "$rev" | tar -x -C "$dir"
  fi
  echo "building $rev ($(git rev-parse --short "${rev/WORKTREE/HEAD}"))…" >&2
  (cd "$dir" && go test -c -o "$work/bench-$rev.test" ./internal/audit/postgres/)
done

if [ -z "${PG_DSN:-}" ]; then
  install -d -o postgres "$work/pg"
  runuser -u postgres -- "$PGBIN/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/pg" -w -l "$work/pg/server.log" \
    -o "-p $PGPORT -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
  PG_DSN="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
fi
export GATEHOUSE_TEST_POSTGRES=$PG_DSN
[ -n "${WRITERS:-}" ] && export GATEHOUSE_BENCH_WRITERS=$WRITERS
[ -n "${CLIENTS:-}" ] && export GATEHOUSE_BENCH_CLIENTS=$CLIENTS

for round in $(seq "$ROUNDS"); do
  for rev in $REVS; do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    out=$("$work/bench-$rev.test" -test.run '^$' -test.bench "$BENCH" \
      -test.benchtime "${EVENTS}x" 2>&1 | grep '^Benchmark' || true)
    printf 'round %s  %-10s load %s\n%s\n' "$round" "$rev" "$load" "${out:-FAILED}"
  done
done
