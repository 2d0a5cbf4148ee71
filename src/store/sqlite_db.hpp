#pragma once

// Thin RAII over the SQLite C API for the SQLite store: a connection that
// turns every failure into Error(storage) naming the file, and prepared
// statements that are reset on scope exit so no read transaction stays open.

#include <onestop/error.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace onestop::sqlite_detail {

// The name of a VFS over the default one that writes each commit's WAL
// frames with one system call (sqlite_vfs.cpp), registered on first use;
// nullptr (the default VFS) if it cannot be.
const char* coalescing_vfs();

// A file: URI naming `path` for sqlite3_open_v2 with SQLITE_OPEN_URI, with
// the query `query` ("immutable=1"): the characters a URI gives a meaning
// ('%', '?', '#') and any byte that is not printable ASCII are escaped as
// %HH, which SQLite decodes (uri.html); an absolute path gets an empty
// authority ("file:///..."), a relative one none ("file:dir/x.db").
std::string file_uri(std::string_view path, std::string_view query);

// What an SQLite result code means for the person reading the error.
std::string describe(int rc, sqlite3* db);

// Throws Error(storage) "<file>: <context>: <what went wrong>".
[[noreturn]] void fail(const std::string& path, std::string_view context, int rc, sqlite3* db);

class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, const std::string* path, std::string_view sql);
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : s_(o.s_), db_(o.db_), path_(o.path_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept {
    if (this != &o) {
      sqlite3_finalize(s_);
      s_ = o.s_;
      db_ = o.db_;
      path_ = o.path_;
      o.s_ = nullptr;
    }
    return *this;
  }
  ~Stmt() { sqlite3_finalize(s_); }

  Stmt& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
  // Text, never NULL: an empty view may have no data pointer, which SQLite
  // would bind as NULL.
  Stmt& bind(int i, std::string_view v) {
    return check(sqlite3_bind_text(s_, i, v.data() != nullptr ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC));
  }
  Stmt& bind_blob(int i, const void* data, std::size_t n) {
    return check(sqlite3_bind_blob(s_, i, data, static_cast<int>(n), SQLITE_STATIC));
  }
  Stmt& bind_null(int i) { return check(sqlite3_bind_null(s_, i)); }
  Stmt& bind(int i, std::optional<std::int64_t> v) { return v ? bind(i, *v) : bind_null(i); }

  // True while there is a row; throws Error(storage) on failure.
  bool step();
  // Steps a statement that returns no rows, then resets it.
  void run();
  void reset() { sqlite3_reset(s_); }

  std::int64_t integer(int col) const { return sqlite3_column_int64(s_, col); }
  bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::optional<std::int64_t> optional_integer(int col) const {
    if (is_null(col)) return std::nullopt;
    return integer(col);
  }
  std::string_view text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string_view();
  }
  std::string_view blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string_view();
  }

  sqlite3_stmt* get() const { return s_; }

 private:
  Stmt& check(int rc) {
    if (rc != SQLITE_OK) fail(*path_, sqlite3_sql(s_), rc, db_);
    return *this;
  }

  sqlite3_stmt* s_ = nullptr;
  sqlite3* db_ = nullptr;
  const std::string* path_ = nullptr;
};

// Resets a statement when the scope ends, whatever happens.
class Reset {
 public:
  explicit Reset(Stmt& s) : s_(s) {}
  Reset(const Reset&) = delete;
  Reset& operator=(const Reset&) = delete;
  ~Reset() {
    s_.reset();
    sqlite3_clear_bindings(s_.get());
  }

 private:
  Stmt& s_;
};

}  // namespace onestop::sqlite_detail
