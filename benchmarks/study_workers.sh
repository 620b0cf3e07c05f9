#!/bin/bash
# A six-run study (tutorial-mlp on full MNIST, 2 epochs each) trained three ways: by one
# `digitlab study` process (SQLite), by two processes sharing one SQLite storage, and by two
# processes sharing a PostgreSQL server started here (Debian's postgresql; as root it runs as the
# postgres user). Prints each storage's trial table (through Optuna and as raw SQL), how often
# each run folder was trained, and whether the per-epoch test accuracy and loss are identical.
#
#   bash benchmarks/study_workers.sh [FOLDER]      # default /tmp/digitlab-study-workers
#   PYTHON=/path/to/python bash benchmarks/study_workers.sh   # default: .venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo "$PWD/.venv/bin/python" || echo python)}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
A=${1:-/tmp/digitlab-study-workers}
rm -rf "$A" && mkdir -p "$A"
cat > "$A/six.toml" <<'SPEC'
name = "six"
[base]
recipe = "tutorial-mlp"
epochs = 2
[vary]
lr = [0.5, 2.0]
hidden = { "2 layers" = [128, 128] }
batch_size = [32, 128]
SPEC
study() { $PY -m digitlab study "$A/six.toml" --device cpu --jobs 1 --threads 1 "$@"; }
pair() {  # two worker processes at once
  study "$@" > "$A/$1-a.log" 2>&1 & local a=$!
  study "$@" > "$A/$1-b.log" 2>&1 & local b=$!
  wait $a; wait $b
}
show() {  # the trial table through Optuna, the records saved as JSON for the comparison
  $PY - "$1" six "$2" <<'SHOW'
import json, sys
import optuna
from digitlab.studies.storage import engine_url
from digitlab.studies.trials import record_of
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name=sys.argv[2], storage=engine_url(sys.argv[1]))
print(f"{'number':>6} {'state':<9} {'run':<16} {'params':<20} {'value':>7}  worker, status")
results = {}
for t in sorted(study.trials, key=lambda t: t.number):
    params = ", ".join(f"{k}={v}" for k, v in t.params.items())
    value = "" if t.value is None else f"{t.value:.4f}"
    print(f"{t.number:>6} {t.state.name:<9} {t.user_attrs.get('run', ''):<16} {params:<20} {value:>7}  "
          f"{t.user_attrs.get('worker', '')}, {t.user_attrs.get('status', '')}")
    record = record_of(t)
    if record is not None and t.state.name == "COMPLETE":
        results[t.user_attrs["run"]] = [[e.accuracy, e.test_loss] for e in record.history.epochs]
json.dump(results, open(sys.argv[3], "w"))
SHOW
}
SQL="select t.number, t.state, (select string_agg(param_name || '=' || param_value, ', ') from
  trial_params p where p.trial_id = t.trial_id) as params, (select value from trial_values v where
  v.trial_id = t.trial_id) as value, (select value_json from trial_user_attributes u where
  u.trial_id = t.trial_id and u.key = 'run') as run from trials t order by t.number"

echo "== one process, SQLite"; t=$SECONDS; study --out "$A/single" > "$A/single.log" 2>&1; echo "$((SECONDS - t)) s"
echo "== two processes, one SQLite storage"; t=$SECONDS; pair --out "$A/sqlite"; echo "$((SECONDS - t)) s"

echo "== two processes, one PostgreSQL server"
PGBIN=$(dirname "$(readlink -f "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")
D=$(mktemp -d /tmp/digitlab-pg-XXXX)
RUN=()
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$D"; RUN=(runuser -u postgres --); fi
"${RUN[@]}" "$PGBIN/initdb" -D "$D/data" -U digitlab --auth=trust --no-locale -E UTF8 --no-sync > /dev/null
PORT=$($PY -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$D/data" -l "$D/log" -w -o "-p $PORT -k $D -c listen_addresses=127.0.0.1" start > /dev/null
trap '"${RUN[@]}" "$PGBIN/pg_ctl" -D "$D/data" -m fast -w stop > /dev/null; rm -rf "$D"' EXIT
URL=postgresql://digitlab@127.0.0.1:$PORT/postgres
t=$SECONDS; pair --out "$A/postgres" --storage "$URL"; echo "$((SECONDS - t)) s"

for s in single sqlite; do
  echo "== trial table: $s, sqlite:///$A/$s/study.db"; show "sqlite:///$A/$s/study.db" "$A/$s.json"
  echo "-- raw SQL (params in Optuna's internal form: a choice's index)"
  sqlite3 "$A/$s/study.db" "${SQL//string_agg/group_concat}"
done
echo "== trial table: postgres, $URL"; show "$URL" "$A/postgres.json"
echo "-- raw SQL"; psql -h 127.0.0.1 -p "$PORT" -U digitlab postgres -c "$SQL"
echo "== trainings started per run folder (each must be 1)"
for s in single sqlite postgres; do
  echo "$s: $(for r in "$A/$s"/*/train.log; do echo -n "$(basename "$(dirname "$r")")=$(grep -c ' training ' "$r") "; done)"
done
echo "== per-epoch test accuracy and loss identical to one process's?"
$PY - "$A" <<'COMPARE'
import json, sys
a, b, c = (json.load(open(f"{sys.argv[1]}/{n}.json")) for n in ("single", "sqlite", "postgres"))
print("two on SQLite:", a == b, "| two on PostgreSQL:", a == c, "| runs:", len(a))
for run in sorted(a):
    print(f"{run:<16}", " ".join(f"{100 * x:.2f}%" for x, _ in a[run]))
COMPARE
