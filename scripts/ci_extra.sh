#!/usr/bin/env bash
# The checks CI runs after the test suite, in the virtual environment .ci/run made.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL="${ATLAS_CHATOPS_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"

echo "== migrations against PostgreSQL: upgrade, downgrade, upgrade"
db="acops_ci_$$"
python scripts/pgdb.py create "$PG_URL" "$db"
trap 'python scripts/pgdb.py drop "$PG_URL" "$db" || true' EXIT
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export SLACK_BOT_TOKEN=xoxb-ci SLACK_SIGNING_SECRET=ci-signing-secret
atlas-chatops migrate
atlas-chatops migrate --downgrade --revision base
atlas-chatops migrate

echo "== smoke start of atlas-chatops serve (SQLite default), polling /healthz"
workdir=$(mktemp -d)
cp policy.example.yml "$workdir/policy.yml"
(cd "$workdir" && env -u DATABASE_URL PORT=38411 MONGODB_ATLAS_CLIENT_ID=mdb_sa_id_000000000000000000000000 \
   MONGODB_ATLAS_CLIENT_SECRET=ci SLACK_TEAM_ID=T0CI atlas-chatops serve) &
pid=$!
for _ in $(seq 1 50); do
  if curl -fsS http://127.0.0.1:38411/healthz >/dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -fsS http://127.0.0.1:38411/healthz
echo
kill -TERM "$pid"
wait "$pid"
echo "serve stopped cleanly (exit 0)"
echo "== benchmark, short mode (proves it still runs; figures are printed, never checked)" && python -m bench.run --short
echo "== store benchmark, short (proves it still runs)" && python -m bench.store_bench --requests 20 --rounds 2
echo "== Atlas transport benchmark, short (proves it still runs)" && python -m bench.atlas_transport_bench --short
echo "== Block Kit benchmark, short (proves it still runs)" && python -m bench.blockkit_bench --short
