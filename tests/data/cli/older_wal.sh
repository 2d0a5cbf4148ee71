#!/bin/sh
# cli.versions_older_schema_in_wal: a store of an older schema whose
# identity is still only in its -wal (never checkpointed: its process was
# killed) is upgraded by a read-only command as a checkpointed one is, not
# refused: SQLite reads the log, the file's header alone says nothing yet.
# Usage: older_wal.sh CLI SCHEMA_V1_DB DIR. Exits 77 (skipped) without python3.
set -u
cli=$1 v1=$2 dir=$3
python=$(command -v python3) || { echo "older_wal.sh: no python3 to write the log" >&2; exit 77; }
rm -rf "$dir" && mkdir -p "$dir" || exit 2
db=$dir/v1wal.db
cp "$v1" "$db" || exit 2
"$python" - "$db" <<'PY' || exit 2
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode = WAL")
c.execute("PRAGMA wal_autocheckpoint = 0")
c.execute("PRAGMA application_id = 0")
c.execute("PRAGMA user_version = 0")
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.execute("PRAGMA application_id = 1330533204")
c.execute("PRAGMA user_version = 1")
os._exit(0)  # killed: no checkpoint on close
PY
"$cli" versions --store "sqlite:$db"
