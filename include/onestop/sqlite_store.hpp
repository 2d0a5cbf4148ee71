#pragma once

// The SQLite store: the embedded default. One database file (WAL mode) holds
// definitions with their versions, cases with their state snapshots, the
// hash-chained history, open tasks for inbox queries and due timers. Several
// processes may share the file: every commit is one IMMEDIATE transaction
// guarded by the case version. See docs/persistence.md.

#include <onestop/store.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace onestop {

// How hard a commit waits for the disk (PRAGMA synchronous in WAL mode).
enum class SqliteSync : std::uint8_t {
  normal,  // a killed process loses nothing; a power cut may lose the last commits, never corrupts
  full,    // every commit is on the disk before commit() returns (one fsync per commit)
};

// Options of open_sqlite_store; the defaults suit a department system.
struct SqliteOptions {
  SqliteSync synchronous = SqliteSync::normal;
  // How long a commit waits for another process's transaction to end before
  // failing with Error(storage) "database is locked".
  std::chrono::milliseconds busy_timeout{5000};
  // Open for reading only: every write throws Error(storage). An older
  // schema is not upgraded (it is refused). When the first read fails
  // because SQLite cannot create the log files it reads a WAL database
  // through (PATH-wal, PATH-shm), in a directory this process may not write
  // (a backup on a read-only mount, another user's directory), the database
  // file is read as immutable (SqliteInfo::immutable):
  // as it is, without locks, so nothing may write it meanwhile. A non-empty
  // log there (PATH-wal, which may hold committed transactions the file
  // lacks) is refused with Error(storage) naming it.
  bool read_only = false;
  // Create the file when it does not exist (else Error(storage)).
  bool create = true;
  // SQLite's page cache per connection, in KiB.
  std::int64_t cache_kib = 16 * 1024;
  // Bytes of the file mapped into memory for reads (0: none).
  std::int64_t mmap_bytes = 256LL * 1024 * 1024;
  // Largest size of the database file in bytes (0: no limit); beyond it
  // commits fail with Error(storage) "the database or disk is full", as on a
  // full disk.
  std::int64_t max_bytes = 0;
  // Decoded case states kept in memory (least recently used go first);
  // reused by load() only while the stored version still matches.
  std::size_t snapshot_cache = 1024;
  // Case ids reserved per transaction on the shared id sequence.
  std::uint32_t case_id_block = 32;
  // Write each commit's WAL frames with one system call instead of two per
  // page (a VFS over the default one, "onestop-coalescing"; same bytes, same
  // order, published to other processes only once written). False: SQLite's
  // default VFS as it is.
  bool coalesce_wal_writes = true;
};

// One migration of the schema: run when the database is at `version - 1`.
struct SqliteMigration {
  int version = 0;
  std::string description;
  std::string sql;
};

// The migrations this build knows, in order (from schemas/sqlite.sql,
// compiled in). The last one's version is the schema version it writes.
const std::vector<SqliteMigration>& sqlite_migrations();

// How many cases run on one definition version (SqliteStore::versions).
struct DefinitionUse {
  std::string kind;  // "item", "theme" or "flow"
  std::string id;
  int version = 1;
  std::string name;                       // "" when no bound catalog had it
  std::optional<Instant> first_deployed;  // when an engine first ran it on this store
  // Items and themes: cases on this version not finished, and finished.
  // Flows: cases with an open task on this version (finished is 0).
  std::uint64_t running = 0;
  std::uint64_t finished = 0;
};

// What is in the file (SqliteStore::info).
struct SqliteInfo {
  std::string path;
  int schema_version = 0;
  std::string journal_mode;  // SQLite's answer for this connection: "wal"; "delete" when immutable
  // Opened read-only as an immutable file (SqliteOptions::read_only): the
  // database file alone is read, without locks or log.
  bool immutable = false;
  std::uint64_t cases = 0;
  std::uint64_t finished_cases = 0;
  std::uint64_t events = 0;
  std::uint64_t open_tasks = 0;
  std::uint64_t file_bytes = 0;
};

// The SQLite store. Safe for concurrent use by several threads (one
// connection behind a mutex) and by several processes on the same file.
class SqliteStore : public Store {
 public:
  // The database file (":memory:" for an in-memory database).
  virtual const std::string& path() const = 0;

  // Which cases run on which definition version: every version an engine
  // bound, and every version a case uses; ordered by kind, id, version.
  virtual std::vector<DefinitionUse> versions() = 0;
  // Counts and file facts.
  virtual SqliteInfo info() = 0;
  // PRAGMA integrity_check: "ok", or the problems found, one per line.
  virtual std::string integrity_check() = 0;

  // Deferred commits: between begin_batch() and end_batch() every commit()
  // (hence every Engine action on this store) joins one transaction that
  // holds the database's write lock. Commits are checked at once (conflict)
  // and written by end_batch(); a case acted on many times is written once.
  // Reads through this store see the batch; other processes see none of it
  // until end_batch(), and wait (busy timeout) for their own commits. Calls
  // nest; the outermost end_batch() commits. abort_batch() drops everything
  // since the outermost begin_batch(). A storage failure while writing
  // rolls the whole batch back and throws Error(storage).
  virtual void begin_batch() = 0;
  virtual void end_batch() = 0;
  virtual void abort_batch() = 0;
};

// Commits a batch on scope exit only through commit(); otherwise aborts it.
class SqliteBatch {
 public:
  explicit SqliteBatch(SqliteStore& store) : store_(&store) { store_->begin_batch(); }
  SqliteBatch(const SqliteBatch&) = delete;
  SqliteBatch& operator=(const SqliteBatch&) = delete;
  ~SqliteBatch() {
    if (store_ == nullptr) return;
    try {
      store_->abort_batch();
    } catch (...) {
      // Nothing was committed; an abort that fails leaves nothing to undo.
    }
  }
  void commit() {
    SqliteStore* s = store_;
    store_ = nullptr;
    s->end_batch();
  }

 private:
  SqliteStore* store_;
};

// Opens (creating and migrating as needed) the database at `path`; ":memory:"
// gives a private in-memory database. Throws Error(storage) naming the file
// when it cannot be opened, is corrupt, is not a onestop database, or was
// written by a newer schema than this build knows (it is left untouched).
std::shared_ptr<SqliteStore> open_sqlite_store(const std::string& path, const SqliteOptions& options = {});

// The same with an explicit list of migrations (tests of upgrades, staged
// roll-outs); `migrations` must start at version 1 and go up by one.
std::shared_ptr<SqliteStore> open_sqlite_store(const std::string& path, const SqliteOptions& options,
                                               const std::vector<SqliteMigration>& migrations);

// Writes to WAL files made by stores that coalesce them
// (SqliteOptions::coalesce_wal_writes), process-wide since start: for
// monitoring, and to see the coalescing work (about one call per commit).
struct SqliteWalWrites {
  std::uint64_t calls = 0;  // write calls handed to the operating system
  std::uint64_t bytes = 0;
  // Buffered bytes that were still unwritten when their database published
  // frames (a shared-memory barrier or lock) and were written then. Always
  // 0 unless SQLite writes a commit in a way the store does not recognise.
  std::uint64_t late_calls = 0;
};
SqliteWalWrites sqlite_wal_writes();

}  // namespace onestop
