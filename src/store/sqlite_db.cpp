// Error mapping and statements for the SQLite store.

#include "store/sqlite_db.hpp"

#include <fmt/format.h>

namespace onestop::sqlite_detail {

std::string file_uri(std::string_view path, std::string_view query) {
  std::string uri = path.starts_with('/') ? "file://" : "file:";
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '%' || c == '?' || c == '#' || c <= ' ' || c >= 0x7f) {
      uri += fmt::format("%{:02X}", c);
    } else {
      uri += ch;
    }
  }
  if (!query.empty()) {
    uri += '?';
    uri += query;
  }
  return uri;
}

std::string describe(int rc, sqlite3* db) {
  switch (rc & 0xff) {
    case SQLITE_FULL: return "the database or disk is full";
    case SQLITE_READONLY: return "the database is read-only (opened read-only, or the file or its directory is not writable)";
    case SQLITE_CORRUPT: return "the database file is corrupt";
    case SQLITE_NOTADB: return "is not a onestop database (not an SQLite database file, or damaged)";
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return "the database is locked by another connection and the busy timeout ran out";
    case SQLITE_CANTOPEN: return "cannot open the file (missing, a directory, or no permission)";
    case SQLITE_PERM:
    case SQLITE_AUTH: return "permission denied";
    case SQLITE_IOERR: return fmt::format("I/O error ({})", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    default: break;
  }
  return db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
}

void fail(const std::string& path, std::string_view context, int rc, sqlite3* db) {
  throw Error(ErrorCode::storage, fmt::format("{}: {}: {}", path, context, describe(rc, db)));
}

Stmt::Stmt(sqlite3* db, const std::string* path, std::string_view sql) : db_(db), path_(path) {
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s_, nullptr);
  if (rc != SQLITE_OK) fail(*path, fmt::format("preparing '{}'", sql), rc, db);
}

bool Stmt::step() {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(*path_, "executing '" + std::string(sqlite3_sql(s_)) + "'", rc, db_);
}

void Stmt::run() {
  Reset r(*this);
  step();
}

}  // namespace onestop::sqlite_detail
