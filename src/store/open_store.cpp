// Stores by URI.

#include <onestop/sqlite_store.hpp>
#include <onestop/store.hpp>

#include <fmt/format.h>

#include <charconv>
#include <limits>

namespace onestop {

namespace {

// sqlite:PATH[?synchronous=normal|full&busy_timeout_ms=N&read_only=1&coalesce_wal_writes=0]
std::shared_ptr<Store> open_sqlite_uri(std::string_view uri, std::string_view rest) {
  SqliteOptions o;
  std::string_view path = rest;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    path = rest.substr(0, q);
    std::string_view params = rest.substr(q + 1);
    while (!params.empty()) {
      const auto amp = params.find('&');
      const std::string_view kv = params.substr(0, amp);
      params = amp == std::string_view::npos ? std::string_view() : params.substr(amp + 1);
      const auto eq = kv.find('=');
      const std::string_view key = kv.substr(0, eq);
      const std::string_view value = eq == std::string_view::npos ? std::string_view("1") : kv.substr(eq + 1);
      auto number = [&] {
        long long n = 0;
        const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || p != value.data() + value.size() || n < 0) {
          throw Error(ErrorCode::invalid_input, fmt::format("store '{}': {} wants a number, not '{}'", uri, key, value));
        }
        return n;
      };
      if (key == "synchronous" && (value == "normal" || value == "full")) {
        o.synchronous = value == "full" ? SqliteSync::full : SqliteSync::normal;
      } else if (key == "busy_timeout_ms") {
        // SQLite takes the timeout as an int: a larger one would wrap.
        const long long ms = number();
        if (ms > std::numeric_limits<int>::max()) {
          throw Error(ErrorCode::invalid_input, fmt::format("store '{}': busy_timeout_ms is {}, more than the largest "
                                                            "SQLite takes ({} ms, about 24 days)",
                                                            uri, value, std::numeric_limits<int>::max()));
        }
        o.busy_timeout = std::chrono::milliseconds(ms);
      } else if (key == "read_only" || key == "mode") {
        o.read_only = value == "1" || value == "true" || value == "ro";
      } else if (key == "coalesce_wal_writes" && (value == "0" || value == "1" || value == "false" || value == "true")) {
        o.coalesce_wal_writes = value == "1" || value == "true";
      } else {
        throw Error(ErrorCode::invalid_input,
                    fmt::format("store '{}': unknown option '{}' (synchronous=normal|full, busy_timeout_ms=N, read_only=1, coalesce_wal_writes=0|1)",
                                uri, kv));
      }
    }
  }
  if (path.empty()) {
    throw Error(ErrorCode::invalid_input, fmt::format("store '{}': no file name after sqlite: (sqlite:cases.db)", uri));
  }
  return open_sqlite_store(std::string(path), o);
}

}  // namespace

std::shared_ptr<Store> open_store(std::string_view uri) {
  if (uri == "memory:" || uri == "memory") return open_memory_store();
  if (uri.substr(0, 7) == "sqlite:") {
    std::string_view rest = uri.substr(7);
    if (rest.substr(0, 2) == "//") rest.remove_prefix(2);  // sqlite://path
    return open_sqlite_uri(uri, rest);
  }
  throw Error(ErrorCode::invalid_input,
              fmt::format("store '{}': unknown store URI (use memory:, sqlite:PATH or sqlite::memory:)", uri));
}

}  // namespace onestop
