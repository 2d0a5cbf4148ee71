// Durable actions through the SQLite store on the compact investment-project
// theme (one-window acceptance, five co-departments in parallel, joint
// decision; the shape bench_runtime measures in memory):
//   - one transaction per action, WAL, synchronous=NORMAL and =FULL;
//   - deferred batches (SqliteStore::begin_batch/end_batch);
//   - a bare SQLite loop writing the same bytes per transaction, as the
//     physical reference;
//   - opening a store of N finished and M open cases, and an inbox query.
//
// usage: onestop-bench-sqlite [--dir D] [--cases N] [--finished N] [--open N] [--reuse] [--profile P]
// The database files go to D (default ./onestop-bench-sqlite.d, a real disk:
// never /tmp on tmpfs). --reuse keeps the large database between runs.

#include <onestop/onestop.hpp>
#include <onestop/sqlite_store.hpp>

#include "compact_investment.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>

using namespace onestop;
namespace fs = std::filesystem;

namespace {

// Counts what the engine hands the store per action: snapshot and event bytes.
struct Measure final : StoreWrapper {
  using StoreWrapper::StoreWrapper;
  void bind(std::shared_ptr<const CatalogBinding> b) override {
    binding = b;
    StoreWrapper::bind(std::move(b));
  }
  void commit(Commit c) override {
    ++commits;
    bytes += binding->encode(*c.snapshot).size();
    for (const auto& e : c.events) {
      bytes += e.actor.size() + e.node.size() + e.from.size() + e.to.size() + e.payload.size() + 2 * 32 + 4 * 8;
    }
    StoreWrapper::commit(std::move(c));
  }
  std::shared_ptr<const CatalogBinding> binding;
  std::size_t commits = 0;
  std::size_t bytes = 0;
};

using Driver = bench::CompactDriver;
using bench::seconds_since;

constexpr int actions_per_case = Driver::actions_per_case;

SqliteOptions options(SqliteSync sync) {
  SqliteOptions o;
  o.synchronous = sync;
  return o;
}

void remove_db(const fs::path& p) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.string() + suffix);
}

// Whole cases, one transaction per action, for at least `min_seconds` or
// `cases` cases, whichever ends first. Returns actions per second.
double per_action(const fs::path& file, SqliteSync sync, int cases, double min_seconds) {
  remove_db(file);
  Driver d(open_sqlite_store(file.string(), options(sync)));
  for (int i = 0; i < 50; ++i) d.close_case(d.open_case());  // warm up
  std::size_t actions = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < cases; ++i) {
    d.close_case(d.open_case());
    actions += actions_per_case;
    if (i % 64 == 63 && seconds_since(t0) > min_seconds) break;
  }
  return static_cast<double>(actions) / seconds_since(t0);
}

// Whole cases in deferred batches of `per_batch` cases.
double batched(const fs::path& file, int cases, int per_batch) {
  remove_db(file);
  auto store = open_sqlite_store(file.string(), options(SqliteSync::normal));
  Driver d(store);
  std::size_t actions = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int done = 0; done < cases;) {
    SqliteBatch batch(*store);
    for (int i = 0; i < per_batch && done < cases; ++i, ++done) {
      d.close_case(d.open_case());
      actions += actions_per_case;
    }
    batch.commit();
  }
  return static_cast<double>(actions) / seconds_since(t0);
}

// Bytes the engine hands the store per action, averaged over some cases.
std::size_t bytes_per_action(const fs::path& file) {
  remove_db(file);
  auto measure = std::make_shared<Measure>(open_sqlite_store(file.string()));
  Driver d(measure);
  for (int i = 0; i < 200; ++i) d.close_case(d.open_case());
  return measure->bytes / measure->commits;
}

void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "bare sqlite: %s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

// The physical reference: one row of `bytes` per transaction, same pragmas.
double bare(const fs::path& file, std::size_t bytes, double min_seconds) {
  remove_db(file);
  sqlite3* db = nullptr;
  check(sqlite3_open(file.string().c_str(), &db), db, "open");
  for (const char* pragma : {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA temp_store = MEMORY",
                             "PRAGMA cache_size = -16384", "PRAGMA mmap_size = 268435456",
                             "CREATE TABLE rows(id INTEGER PRIMARY KEY, payload BLOB NOT NULL)"}) {
    check(sqlite3_exec(db, pragma, nullptr, nullptr, nullptr), db, pragma);
  }
  sqlite3_stmt *begin = nullptr, *insert = nullptr, *commit = nullptr;
  check(sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, nullptr), db, "prepare");
  check(sqlite3_prepare_v2(db, "INSERT INTO rows(id, payload) VALUES (?1, ?2)", -1, &insert, nullptr), db, "prepare");
  check(sqlite3_prepare_v2(db, "COMMIT", -1, &commit, nullptr), db, "prepare");
  std::string payload(bytes, '\0');
  std::mt19937 rng(3);
  for (auto& c : payload) c = static_cast<char>(rng());
  std::size_t txs = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::int64_t id = 1;; ++id) {
    check(sqlite3_step(begin), db, "begin");
    sqlite3_reset(begin);
    sqlite3_bind_int64(insert, 1, id);
    sqlite3_bind_blob(insert, 2, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
    check(sqlite3_step(insert), db, "insert");
    sqlite3_reset(insert);
    check(sqlite3_step(commit), db, "commit");
    sqlite3_reset(commit);
    ++txs;
    if (txs % 256 == 0 && seconds_since(t0) > min_seconds) break;
  }
  const double rate = static_cast<double>(txs) / seconds_since(t0);
  sqlite3_finalize(begin);
  sqlite3_finalize(insert);
  sqlite3_finalize(commit);
  sqlite3_close(db);
  return rate;
}

// A store of `finished` finished and `open` open cases (open ones wait on
// their five parallel departments), written in deferred batches.
void generate(const fs::path& file, int finished, int open) {
  remove_db(file);
  auto store = open_sqlite_store(file.string(), options(SqliteSync::normal));
  Driver d(store);
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int per_batch = 5000;
  for (int done = 0; done < finished;) {
    SqliteBatch batch(*store);
    for (int i = 0; i < per_batch && done < finished; ++i, ++done) d.close_case(d.open_case());
    batch.commit();
    if (done % 100000 == 0) std::fprintf(stderr, "  %d finished cases (%.0f s)\n", done, seconds_since(t0));
  }
  for (int done = 0; done < open;) {
    SqliteBatch batch(*store);
    for (int i = 0; i < per_batch && done < open; ++i, ++done) {
      d.clock->advance(std::chrono::seconds(30));
      d.open_case();
    }
    batch.commit();
  }
  std::fprintf(stderr, "  generated %d finished and %d open cases in %.0f s\n", finished, open, seconds_since(t0));
}

double ms_since(std::chrono::steady_clock::time_point t0) { return seconds_since(t0) * 1000.0; }

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = "onestop-bench-sqlite.d";
  int cases = 20000;
  int finished = 1000000;
  int open = 10000;
  bool reuse = false;
  std::string profile;  // run one part only: normal, full, batch, bare
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::string(argv[++i]);
    };
    if (a == "--dir") {
      dir = value();
    } else if (a == "--cases") {
      cases = std::stoi(value());
    } else if (a == "--finished") {
      finished = std::stoi(value());
    } else if (a == "--open") {
      open = std::stoi(value());
    } else if (a == "--reuse") {
      reuse = true;
    } else if (a == "--profile") {
      profile = value();
    } else {
      std::fprintf(stderr, "usage: %s [--dir D] [--cases N] [--finished N] [--open N] [--reuse] [--profile normal|full|batch|bare]\n", argv[0]);
      return 2;
    }
  }
  fs::create_directories(dir);
  if (!profile.empty()) {
    const auto t0 = std::clock();
    double rate = 0;
    if (profile == "normal" || profile == "full") {
      rate = per_action(dir / "profile.db", profile == "full" ? SqliteSync::full : SqliteSync::normal, cases, 1e9);
    } else if (profile == "batch") {
      rate = batched(dir / "profile.db", cases, 1000);
    } else {
      rate = bare(dir / "profile.db", 1500, 5.0);
    }
    std::printf("%s: %.0f per second, %.1f us CPU per unit\n", profile.c_str(), rate,
                1e6 * static_cast<double>(std::clock() - t0) / CLOCKS_PER_SEC /
                    (profile == "bare" ? rate * 5.0 : cases * actions_per_case));
    remove_db(dir / "profile.db");
    return 0;
  }

  const double normal = per_action(dir / "normal.db", SqliteSync::normal, cases, 5.0);
  std::printf("figure: sqlite_actions_per_s_normal %.0f actions/s\n", normal);
  std::fflush(stdout);
  const double full = per_action(dir / "full.db", SqliteSync::full, cases, 5.0);
  std::printf("figure: sqlite_actions_per_s_full %.0f actions/s\n", full);
  std::fflush(stdout);
  const double batch = batched(dir / "batch.db", cases, 1000);
  std::printf("figure: sqlite_batch_actions_per_s %.0f actions/s\n", batch);
  const std::size_t bytes = bytes_per_action(dir / "measure.db");
  std::printf("figure: sqlite_bytes_per_action %zu bytes\n", bytes);
  const double bare_rate = bare(dir / "bare.db", bytes, 3.0);
  std::printf("figure: bare_sqlite_tx_per_s %.0f tx/s\n", bare_rate);
  std::printf("figure: engine_to_bare_ratio %.2f\n", normal / bare_rate);
  std::fflush(stdout);
  for (const char* f : {"normal.db", "full.db", "batch.db", "measure.db", "bare.db"}) remove_db(dir / f);

  const fs::path big = dir / fmt::format("cases-{}-{}.db", finished, open);
  if (!reuse || !fs::exists(big)) generate(big, finished, open);
  const auto t0 = std::chrono::steady_clock::now();
  auto store = open_sqlite_store(big.string());
  Driver d(store);  // open_engine binds the catalog: definitions recorded, running versions checked
  const double open_ms = ms_since(t0);
  InboxQuery q;
  q.user = "p";
  q.departments = {"planning", "hall"};
  q.roles = {"lead"};
  const auto t1 = std::chrono::steady_clock::now();
  const auto first = d.engine->inbox(q);
  const double query_ms = ms_since(t1);
  if (first.size() != std::min<std::size_t>(50, static_cast<std::size_t>(open))) {
    std::fprintf(stderr, "inbox: %zu tasks, expected %d\n", first.size(), std::min(50, open));
    return 1;
  }
  std::vector<double> warm;
  for (int i = 0; i < 200; ++i) {
    q.offset = static_cast<std::size_t>(i) * 13 % static_cast<std::size_t>(std::max(open - 50, 1));
    const auto t2 = std::chrono::steady_clock::now();
    d.engine->inbox(q);
    warm.push_back(ms_since(t2));
  }
  std::sort(warm.begin(), warm.end());
  std::printf("figure: open_store_ms %.2f ms (%d finished, %d open cases)\n", open_ms, finished, open);
  std::printf("figure: inbox_query_ms %.3f ms\n", query_ms);
  std::printf("figure: inbox_query_median_ms %.3f ms\n", warm[warm.size() / 2]);
  std::printf("figure: db_bytes_per_finished_case %.0f bytes\n",
              static_cast<double>(fs::file_size(big)) / std::max(finished + open, 1));
  if (!reuse) {
    store.reset();
    d.engine.reset();
    remove_db(big);
  }
  return 0;
}
