-- The onestop SQLite schema, as the ordered list of migrations that build it.
--
-- This file is compiled into the library (src/store/sqlite_schema.hpp.in);
-- nothing reads it at run time. Each section starting with a line
-- `-- migration N: what it does` upgrades a database from schema version
-- N-1 to N (PRAGMA user_version). A database is upgraded in place, in one
-- transaction, by running the sections above its version in order.
--
-- Rules: never edit a section once released; append a new one instead.
-- Sections must not contain the text "-- migration " elsewhere.
--
-- Conventions: instants are UTC seconds since 1970 (INTEGER); case status
-- is CaseStatus (0 draft, 1 running, 2 waiting_for_applicant, 3 error,
-- 4 finished); event kind is EventKind in declaration order (0 submitted,
-- 1 acted, ...); hashes are 32-byte SHA-256 BLOBs.

-- migration 1: initial schema
PRAGMA application_id = 1330533204;  -- 0x4F4E5354, "ONST": marks the file as onestop's

-- Store-wide values: case_seq (the next case id no process has reserved),
-- created_by (library version that created the file), created_at.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value ANY
) WITHOUT ROWID;
INSERT INTO meta(key, value) VALUES ('case_seq', 1);

-- Every definition version an engine ever ran on this store (Store::bind).
CREATE TABLE definitions (
  kind              TEXT NOT NULL CHECK (kind IN ('item', 'flow', 'theme')),
  id                TEXT NOT NULL,
  version           INTEGER NOT NULL,
  name              TEXT NOT NULL,
  first_deployed_at INTEGER NOT NULL,
  PRIMARY KEY (kind, id, version)
) WITHOUT ROWID;

-- One row per case: the header the store lists and indexes, and the engine's
-- full state as a Boost.Serialization snapshot (CatalogBinding::encode).
CREATE TABLE cases (
  id             INTEGER PRIMARY KEY,
  target         TEXT NOT NULL,        -- item code or theme id
  is_theme       INTEGER NOT NULL,
  target_version INTEGER NOT NULL,     -- the definition version the case runs on
  status         INTEGER NOT NULL,
  version        INTEGER NOT NULL,     -- grows by one with every action (optimistic concurrency)
  submitted      INTEGER NOT NULL,
  finished       INTEGER,
  next_timer     INTEGER,              -- earliest due timer; NULL when none
  snapshot       BLOB NOT NULL         -- last: read only when the cached state is stale
);
-- Due timers, earliest first (Store::due_cases, Engine::tick).
CREATE INDEX cases_due ON cases(next_timer) WHERE next_timer IS NOT NULL;
-- Which cases run on which definition version (bind checks, versions listing).
CREATE INDEX cases_definition ON cases(is_theme, target, target_version, status);

-- The append-only, hash-chained history. prev_hash is NULL when it equals
-- the hash of the event before (always, for histories the engine wrote), or
-- zero for the first event: the chain is not stored twice.
CREATE TABLE events (
  case_id    INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  at         INTEGER NOT NULL,
  actor      TEXT NOT NULL,
  kind       INTEGER NOT NULL,
  task       INTEGER NOT NULL,
  node       TEXT NOT NULL,
  from_state TEXT NOT NULL,
  to_state   TEXT NOT NULL,
  payload    TEXT NOT NULL,
  prev_hash  BLOB,
  hash       BLOB NOT NULL,
  PRIMARY KEY (case_id, seq)
) WITHOUT ROWID;

-- Open tasks, for inbox queries. The node is named by flow, flow version and
-- index (CatalogBinding::node). `candidates` lists the task_candidates rows
-- written for the task ('u'ser, 'r'ole, 'd'epartment + name, separated by
-- U+001F) so that they are removed exactly as written.
CREATE TABLE tasks (
  case_id       INTEGER NOT NULL,
  task          INTEGER NOT NULL,
  flow          TEXT NOT NULL,
  flow_version  INTEGER NOT NULL,
  node_index    INTEGER NOT NULL,
  item          TEXT NOT NULL,
  assigned_user TEXT NOT NULL,     -- '' unless transferred; then only this user matches
  extra_users   TEXT NOT NULL,     -- signers added later, separated by U+001F
  created       INTEGER NOT NULL,
  due           INTEGER,
  candidates    TEXT NOT NULL,
  PRIMARY KEY (case_id, task)
) WITHOUT ROWID;

-- Who may see a task in their inbox: one row per candidate user, role or
-- department (only the assigned user after a transfer). Keyed so that one
-- candidate's tasks come out oldest first; the store merges the streams of
-- the user's, roles' and departments' keys.
CREATE TABLE task_candidates (
  kind    TEXT NOT NULL CHECK (kind IN ('user', 'role', 'department')),
  name    TEXT NOT NULL,
  created INTEGER NOT NULL,
  case_id INTEGER NOT NULL,
  task    INTEGER NOT NULL,
  item    TEXT NOT NULL,
  PRIMARY KEY (kind, name, created, case_id, task)
) WITHOUT ROWID;

-- migration 2: inbox rows carry their task; the case row lists its open tasks
-- One B-tree fewer to touch per commit, and an inbox query reads one index.
-- cases.open_tasks: one record per open task, records separated by U+001E,
-- fields by U+001F: task, created, due, flow, flow_version, node_index, item,
-- assigned_user, extra users and inbox keys (both lists separated by U+001D;
-- a key is 'u'ser, 'r'ole or 'd'epartment + name). The store compares these
-- records to know which inbox rows an action changes.
CREATE TABLE cases_v2 (
  id             INTEGER PRIMARY KEY,
  target         TEXT NOT NULL,
  is_theme       INTEGER NOT NULL,
  target_version INTEGER NOT NULL,
  status         INTEGER NOT NULL,
  version        INTEGER NOT NULL,
  submitted      INTEGER NOT NULL,
  finished       INTEGER,
  next_timer     INTEGER,
  open_tasks     TEXT NOT NULL DEFAULT '',
  snapshot       BLOB NOT NULL
);
INSERT INTO cases_v2 (id, target, is_theme, target_version, status, version, submitted, finished, next_timer,
                      open_tasks, snapshot)
  SELECT c.id, c.target, c.is_theme, c.target_version, c.status, c.version, c.submitted, c.finished, c.next_timer,
         coalesce((SELECT group_concat(t.task || char(31) || t.created || char(31) || coalesce(t.due, '') || char(31) ||
                                       t.flow || char(31) || t.flow_version || char(31) || t.node_index || char(31) ||
                                       t.item || char(31) || t.assigned_user || char(31) ||
                                       replace(t.extra_users, char(31), char(29)) || char(31) ||
                                       replace(t.candidates, char(31), char(29)), char(30))
                   FROM tasks t WHERE t.case_id = c.id), ''),
         c.snapshot
  FROM cases c;
DROP TABLE cases;
ALTER TABLE cases_v2 RENAME TO cases;
CREATE INDEX cases_due ON cases(next_timer) WHERE next_timer IS NOT NULL;
CREATE INDEX cases_definition ON cases(is_theme, target, target_version, status);

-- Who may see which open task: one row per candidate user, role or
-- department (only the assigned user after a transfer), carrying the task.
-- One key's tasks come out oldest first; the store merges the keys of a query.
CREATE TABLE inbox (
  kind          TEXT NOT NULL CHECK (kind IN ('user', 'role', 'department')),
  name          TEXT NOT NULL,
  created       INTEGER NOT NULL,
  case_id       INTEGER NOT NULL,
  task          INTEGER NOT NULL,
  item          TEXT NOT NULL,
  flow          TEXT NOT NULL,
  flow_version  INTEGER NOT NULL,
  node_index    INTEGER NOT NULL,
  assigned_user TEXT NOT NULL,
  extra_users   TEXT NOT NULL,     -- separated by U+001F
  due           INTEGER,
  PRIMARY KEY (kind, name, created, case_id, task)
) WITHOUT ROWID;
INSERT INTO inbox (kind, name, created, case_id, task, item, flow, flow_version, node_index, assigned_user,
                   extra_users, due)
  SELECT k.kind, k.name, k.created, k.case_id, k.task, t.item, t.flow, t.flow_version, t.node_index, t.assigned_user,
         t.extra_users, t.due
  FROM task_candidates k JOIN tasks t ON t.case_id = k.case_id AND t.task = k.task;
DROP TABLE task_candidates;
DROP TABLE tasks;

-- migration 3: flow versions remember their structure
-- definitions.fingerprint: for a flow, core::structure_fingerprint (hex
-- SHA-256 of what case states refer to by position and replay reads: its
-- nodes in order with their settings, edges, returns, limits), set when an
-- engine binds it; NULL for other kinds and for rows written before. A
-- catalog whose flow version has another is refused while the store holds
-- cases that may have run it. (meta 'warning_rules' likewise keeps
-- core::rules_fingerprint of the warning rules.)
ALTER TABLE definitions ADD COLUMN fingerprint TEXT;
