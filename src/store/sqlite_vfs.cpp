// A VFS over the platform's default one that writes each transaction's WAL
// frames with one system call instead of two per page.
//
// SQLite writes a frame as two writes, its 24-byte header and then its page,
// so a commit touching five pages costs ten pwrite calls; on a machine where
// a system call costs microseconds that is most of a durable action. This
// shim keeps appending writes to a WAL file (each starting where the last
// ended) in a buffer and hands them on as one write:
//   - at the end of a commit frame (a frame whose header carries the database
//     size, see "WAL file format" in https://www.sqlite.org/fileformat2.html),
//     so the commit's write error, if any, is the commit's result;
//   - before anything that reads, syncs, truncates, sizes or closes the WAL,
//     before a write that is not an append (a new WAL header, the frame
//     headers SQLite rewrites when it fixes checksums: those go straight
//     through and return their own errors), and before the database's
//     shared-memory locks and barriers (what publishes frames to readers),
//     so no reader and no sync ever sees less than what SQLite wrote;
//   - when the buffer reaches 1 MiB (in pieces of 64 KiB: the unix VFS
//     takes no more at once).
// A flush where no error can be returned (a barrier) keeps its failure for
// the WAL's next call. The bytes, their offsets and their order are
// SQLite's own: only the number of calls changes. Everything else goes
// straight to the default VFS. (Reviewed against SQLite 3.40's wal.c and
// os_unix.c: walRewriteChecksums, walIndexWriteHdr, unixWrite.)

#include "store/sqlite_db.hpp"

#include <onestop/sqlite_store.hpp>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>

namespace onestop::sqlite_detail {

namespace {

constexpr int wal_header = 32;
constexpr int frame_header = 24;
constexpr std::size_t write_piece = std::size_t{64} << 10;
constexpr std::size_t buffer_limit = std::size_t{1} << 20;

struct File {
  sqlite3_file base;            // first: SQLite sees this
  sqlite3_file* real = nullptr;  // the default VFS's file, right after this struct
  bool wal = false;
  std::string wal_name;  // database files: the name of their WAL ("<name>-wal")
  // WAL files only.
  std::string name;
  std::string pending;
  sqlite3_int64 pending_at = 0;
  sqlite3_int64 next = -1;      // where an appending write starts: the end of the last write
  sqlite3_int64 flush_at = -1;  // end of a commit frame not yet written through
  int page_size = 0;            // from the WAL header; 0 until looked for, -1 when unreadable
  int failed = SQLITE_OK;       // a flush that could not report its error: the next call does
};

SqliteWalWrites counters;  // under registry_mu

// WAL files, for the flushes a database's shared-memory calls trigger. One
// lock for all; calls on one connection's files are serialised anyway.
std::mutex registry_mu;
std::set<File*>& wal_files() {
  static auto* files = new std::set<File*>;  // never destroyed: files may close during exit
  return *files;
}

sqlite3_vfs* real_vfs(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }
File* of(sqlite3_file* f) { return reinterpret_cast<File*>(f); }

std::uint32_t big_endian(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// Hands `n` bytes at `at` to the default VFS, counted; ends the pending
// commit frame when they reach its end. Caller holds registry_mu.
int write_through(File* f, const void* data, std::size_t n, sqlite3_int64 at) {
  const int rc = f->real->pMethods->xWrite(f->real, data, static_cast<int>(n), at);
  ++counters.calls;
  counters.bytes += n;
  if (f->flush_at >= 0 && at + static_cast<sqlite3_int64>(n) >= f->flush_at) f->flush_at = -1;
  return rc;
}

// Writes the buffered bytes; caller holds registry_mu. In pieces of at
// most 64 KiB: the unix VFS writes no more than 128 KiB - 1 per call (it
// masks the length), as SQLite itself never asks for more than a page.
int flush_locked(File* f) {
  int rc = SQLITE_OK;
  for (std::size_t done = 0; done < f->pending.size() && rc == SQLITE_OK; done += write_piece) {
    rc = write_through(f, f->pending.data() + done, std::min(write_piece, f->pending.size() - done),
                       f->pending_at + static_cast<sqlite3_int64>(done));
  }
  f->pending.clear();
  return rc;
}

// A failure kept for the file's next call, or its buffer written.
int settle_locked(File* f) {
  if (f->failed != SQLITE_OK) {
    const int rc = f->failed;
    f->failed = SQLITE_OK;
    f->pending.clear();
    return rc;
  }
  return flush_locked(f);
}

int settle(File* f) {
  std::lock_guard lock(registry_mu);
  return settle_locked(f);
}

// Before a database publishes frames (its wal-index) or looks at others':
// its WAL's buffered bytes are written. Called where no error can be
// returned, so a failure is kept and the WAL's next call reports it.
void flush_wal_of(File* db) {
  if (db->wal_name.empty()) return;
  std::lock_guard lock(registry_mu);
  for (File* f : wal_files()) {
    if (f->pending.empty() || f->name != db->wal_name) continue;
    ++counters.late_calls;
    if (const int rc = flush_locked(f); rc != SQLITE_OK && f->failed == SQLITE_OK) f->failed = rc;
  }
}

// The page size of a WAL file, from its header.
int page_size_of(File* f) {
  if (f->page_size != 0) return f->page_size;
  unsigned char header[wal_header];
  if (f->real->pMethods->xRead(f->real, header, wal_header, 0) == SQLITE_OK) {
    f->page_size = static_cast<int>(big_endian(header + 8));
  } else {
    f->page_size = -1;  // the next WAL header written sets it
  }
  return f->page_size;
}

int x_close(sqlite3_file* file) {
  File* f = of(file);
  int rc = SQLITE_OK;
  if (f->wal) {
    std::lock_guard lock(registry_mu);
    rc = settle_locked(f);
    wal_files().erase(f);
  }
  const int closed = f->real->pMethods != nullptr ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  f->~File();
  return rc != SQLITE_OK ? rc : closed;
}

// Appends (each write starting where the last ended) are buffered; anything
// else (a new WAL header at offset 0, the frame headers SQLite rewrites to
// fix checksums) goes straight through, after the buffer, in order.
int x_write(sqlite3_file* file, const void* data, int n, sqlite3_int64 at) {
  File* f = of(file);
  if (!f->wal) return f->real->pMethods->xWrite(f->real, data, n, at);
  std::lock_guard lock(registry_mu);
  if (f->failed != SQLITE_OK) return settle_locked(f);
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (at == 0 && n >= wal_header) f->page_size = static_cast<int>(big_endian(bytes + 8));  // a new WAL header
  if (f->page_size == 0 && at >= wal_header) {
    if (const int rc = flush_locked(f); rc != SQLITE_OK) return rc;
    (void)page_size_of(f);
  }
  // A commit frame's header: written through no later than its page.
  if (f->page_size > 0 && at >= wal_header && n >= 8) {
    const sqlite3_int64 frame = frame_header + f->page_size;
    if ((at - wal_header) % frame == 0 && big_endian(bytes + 4) != 0) f->flush_at = at + frame;
  }
  if (at != f->next) {
    if (const int rc = flush_locked(f); rc != SQLITE_OK) return rc;
    f->next = at + n;
    return write_through(f, data, static_cast<std::size_t>(n), at);
  }
  if (f->pending.empty()) f->pending_at = at;
  f->pending.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  f->next = at + n;
  if ((f->flush_at >= 0 && f->next >= f->flush_at) || f->pending.size() >= buffer_limit) return flush_locked(f);
  return SQLITE_OK;
}

// The default VFS's method `M` on the file SQLite handed us.
template <auto M, class... A>
auto forward(sqlite3_file* file, A... args) {
  return (of(file)->real->pMethods->*M)(of(file)->real, args...);
}

// The same after the WAL's buffer is written (or its kept failure reported).
template <auto M, class... A>
int settled(sqlite3_file* file, A... args) {
  if (of(file)->wal) {
    if (const int rc = settle(of(file)); rc != SQLITE_OK) return rc;
  }
  return forward<M>(file, args...);
}

// Shared memory belongs to the database file: what a writer publishes
// there (the WAL index) must never run ahead of the WAL's bytes.
template <auto M, class... A>
auto published(sqlite3_file* file, A... args) {
  flush_wal_of(of(file));
  return forward<M>(file, args...);
}

using io = sqlite3_io_methods;
const sqlite3_io_methods methods = {
    3,
    x_close,
    settled<&io::xRead, void*, int, sqlite3_int64>,
    x_write,
    settled<&io::xTruncate, sqlite3_int64>,
    settled<&io::xSync, int>,
    settled<&io::xFileSize, sqlite3_int64*>,
    forward<&io::xLock, int>,
    settled<&io::xUnlock, int>,
    forward<&io::xCheckReservedLock, int*>,
    settled<&io::xFileControl, int, void*>,
    forward<&io::xSectorSize>,
    forward<&io::xDeviceCharacteristics>,
    forward<&io::xShmMap, int, int, int, void volatile**>,
    published<&io::xShmLock, int, int, int>,
    published<&io::xShmBarrier>,
    published<&io::xShmUnmap, int>,
    forward<&io::xFetch, sqlite3_int64, int, void**>,
    forward<&io::xUnfetch, sqlite3_int64, void*>};

int x_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* real = real_vfs(vfs);
  File* f = new (file) File{};
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(File));
  f->real->pMethods = nullptr;
  const int rc = real->xOpen(real, name, f->real, flags, out_flags);
  if (f->real->pMethods == nullptr || f->real->pMethods->iVersion < 3) {
    // Failed (nothing to close), or not a file this shim can stand in for.
    if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
    f->~File();
    file->pMethods = nullptr;
    return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
  }
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  file->pMethods = &methods;
  if (name != nullptr && (flags & SQLITE_OPEN_MAIN_DB) != 0) f->wal_name = std::string(name) + "-wal";
  if (f->wal && rc == SQLITE_OK) {
    if (name != nullptr) f->name = name;
    std::lock_guard lock(registry_mu);
    wal_files().insert(f);
  }
  return rc;
}

// The rest of the VFS is the default one's.
int x_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return real_vfs(vfs)->xDelete(real_vfs(vfs), name, sync_dir);
}
int x_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return real_vfs(vfs)->xAccess(real_vfs(vfs), name, flags, out);
}
int x_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return real_vfs(vfs)->xFullPathname(real_vfs(vfs), name, n, out);
}
void* x_dl_open(sqlite3_vfs* vfs, const char* name) { return real_vfs(vfs)->xDlOpen(real_vfs(vfs), name); }
void x_dl_error(sqlite3_vfs* vfs, int n, char* out) { real_vfs(vfs)->xDlError(real_vfs(vfs), n, out); }
void (*x_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return real_vfs(vfs)->xDlSym(real_vfs(vfs), handle, symbol);
}
void x_dl_close(sqlite3_vfs* vfs, void* handle) { real_vfs(vfs)->xDlClose(real_vfs(vfs), handle); }
int x_randomness(sqlite3_vfs* vfs, int n, char* out) { return real_vfs(vfs)->xRandomness(real_vfs(vfs), n, out); }
int x_sleep(sqlite3_vfs* vfs, int us) { return real_vfs(vfs)->xSleep(real_vfs(vfs), us); }
int x_current_time(sqlite3_vfs* vfs, double* out) { return real_vfs(vfs)->xCurrentTime(real_vfs(vfs), out); }
int x_get_last_error(sqlite3_vfs* vfs, int n, char* out) {
  return real_vfs(vfs)->xGetLastError != nullptr ? real_vfs(vfs)->xGetLastError(real_vfs(vfs), n, out) : 0;
}
int x_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return real_vfs(vfs)->xCurrentTimeInt64(real_vfs(vfs), out);
}

}  // namespace

const char* coalescing_vfs() {
  static const char* name = [] () -> const char* {
    sqlite3_initialize();
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    if (real == nullptr || real->iVersion < 2 || real->xCurrentTimeInt64 == nullptr) return nullptr;
    static sqlite3_vfs vfs{};
    vfs.iVersion = 2;
    vfs.szOsFile = static_cast<int>(sizeof(File)) + real->szOsFile;
    vfs.mxPathname = real->mxPathname;
    vfs.zName = "onestop-coalescing";
    vfs.pAppData = real;
    vfs.xOpen = x_open;
    vfs.xDelete = x_delete;
    vfs.xAccess = x_access;
    vfs.xFullPathname = x_full_pathname;
    vfs.xDlOpen = x_dl_open;
    vfs.xDlError = x_dl_error;
    vfs.xDlSym = x_dl_sym;
    vfs.xDlClose = x_dl_close;
    vfs.xRandomness = x_randomness;
    vfs.xSleep = x_sleep;
    vfs.xCurrentTime = x_current_time;
    vfs.xGetLastError = x_get_last_error;
    vfs.xCurrentTimeInt64 = x_current_time_int64;
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) return nullptr;
    return vfs.zName;
  }();
  return name;
}

}  // namespace onestop::sqlite_detail

namespace onestop {

SqliteWalWrites sqlite_wal_writes() {
  std::lock_guard lock(sqlite_detail::registry_mu);
  return sqlite_detail::counters;
}

}  // namespace onestop
