#!/bin/sh
# cli.versions_locked_store: a read-only command on a store another process
# holds locked fails after one busy timeout (it waited three: twice while
# opening read-only, once more opening for writing). Usage: locked.sh CLI
# ARCHIVE DEFINITIONS DIR. Exits 77 (skipped) without python3 to hold the lock.
set -u
python=$(command -v python3) || { echo "locked.sh: no python3 to hold the lock" >&2; exit 77; }
cli=$1 archive=$2 defs=$3 dir=$4
rm -rf "$dir" && mkdir -p "$dir" || exit 2
db=$dir/cases.db
"$cli" import --store "sqlite:$db" -i "$archive" "$defs" >/dev/null || exit 2
# The lock: SQLite's exclusive locking mode keeps even readers out of a WAL
# database while the transaction is open.
"$python" - "$db" <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA locking_mode = EXCLUSIVE")
c.execute("BEGIN EXCLUSIVE")
c.execute("UPDATE meta SET value = value WHERE key = 'created_by'")
open(sys.argv[1] + ".locked", "w").close()
time.sleep(60)
PY
holder=$!
trap 'kill $holder 2>/dev/null' EXIT
i=0
while [ ! -e "$db.locked" ]; do
  i=$((i + 1))
  [ $i -lt 100 ] || { echo "locked.sh: the lock was not taken" >&2; exit 2; }
  sleep 0.1
done
start=$(date +%s%N)
"$cli" versions --store "sqlite:$db?busy_timeout_ms=3000"
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "exit $rc after $ms ms"
[ "$rc" -eq 1 ] || { echo "locked.sh: exit $rc, wanted 1" >&2; exit 1; }
# One wait of 3 s; three would be 9 s. Under 2x leaves room for a loaded machine.
[ "$ms" -lt 6000 ] || { echo "locked.sh: $ms ms, more than one busy timeout of 3000 ms" >&2; exit 1; }
