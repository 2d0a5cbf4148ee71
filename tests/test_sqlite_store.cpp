// The SQLite store through the public API: cases through an engine on a
// database file, reopening, conflicts, batches, inbox parity with the memory
// store, timers, schema versions and migrations, bad files, definition
// versions.

#include <onestop/onestop.hpp>
#include <onestop/sqlite_store.hpp>

#include "store_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <set>
#include <thread>

namespace fs = std::filesystem;
using namespace onestop;

namespace {

const std::string company = "91110000600037341L";

// A fresh directory per test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> n{0};
    path = fs::temp_directory_path() / ("onestop-sqlite-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::shared_ptr<const Catalog> load(std::vector<fs::path> paths) {
  auto r = load_catalog(paths);
  for (const auto& d : r.diagnostics) {
    if (d.severity == Severity::error) FAIL(d.to_string());
  }
  return r.catalog;
}

std::shared_ptr<const Catalog> investment() {
  static auto catalog = load({fs::path(ONESTOP_SOURCE_DIR) / "examples" / "investment-project"});
  return catalog;
}

fs::path versions_dir() { return fs::path(ONESTOP_TEST_DATA) / "sqlite"; }

using test_support::Everything;

Instant monday() { return std::chrono::sys_days{std::chrono::year{2026} / 3 / 2} + std::chrono::hours{1}; }

// An engine on `store` over `catalog`, with a manual clock.
struct Host {
  std::shared_ptr<ManualClock> clock;
  std::shared_ptr<Store> store;
  std::unique_ptr<Engine> engine;

  Host(std::shared_ptr<Store> s, std::shared_ptr<const Catalog> catalog = investment(),
       std::shared_ptr<ManualClock> c = std::make_shared<ManualClock>(monday()))
      : clock(std::move(c)), store(std::move(s)) {
    EngineOptions o;
    o.store = store;
    o.clock = clock;
    o.certificates = std::make_shared<Everything>();
    engine = open_engine(std::move(catalog), o);
  }

  CaseId submit(const std::string& target = {}) {
    const Catalog& cat = *engine->catalog();
    Submission s;
    s.target = target.empty() ? cat.themes.front().id : target;
    s.applicant = Applicant{ApplicantKind::legal_person, company, "Investor Ltd"};
    std::vector<std::string> codes;
    if (const Theme* t = cat.find_theme(s.target)) {
      codes = cat.theme_items(*t);
    } else {
      codes.push_back(s.target);
    }
    for (const auto& code : codes) {
      for (const auto& m : cat.find_item(code)->materials) {
        const bool offered = std::any_of(s.materials.begin(), s.materials.end(), [&](const OfferedMaterial& o) { return o.id == m.id; });
        if (m.source == MaterialSource::applicant && !offered) {  // a material several items list, once
          s.materials.push_back({m.id, m.id + "." + (m.file_types.empty() ? "pdf" : m.file_types.front()), 1, m.form});
        }
      }
    }
    auto r = engine->submit(s, Actor::applicant_of(company));
    REQUIRE(r.accepted());
    return *r.case_id;
  }

  // Someone entitled to task `t`.
  static Actor entitled(const Task& t) {
    Actor a = Actor::staff_member("staff" + std::to_string(t.signatures.size()), t.candidates.roles,
                                  t.candidates.departments);
    if (!t.candidates.users.empty()) a.user = t.candidates.users.front();
    if (!t.assigned_user.empty()) a.user = t.assigned_user;
    return a;
  }

  // One step of case `id`: approves its first open task, or moves the clock
  // a week and ticks when it waits on a timer. False when it is over.
  bool step(CaseId id) {
    const Case c = engine->get(id);
    if (c.status != CaseStatus::running) return false;
    const auto open = c.open_tasks();
    if (open.empty()) {
      clock->advance(std::chrono::hours(24 * 7));
      engine->tick(clock->now());
      return true;
    }
    const Task& t = *open.front();
    Action a;
    a.case_id = id;
    a.task = t.id;
    a.kind = ActionKind::approve;
    a.actor = entitled(t);
    engine->act(a);
    return true;
  }

  void finish(CaseId id) {
    for (int guard = 0; guard < 300 && step(id); ++guard) {
    }
    REQUIRE(engine->get(id).status == CaseStatus::finished);
  }
};

std::shared_ptr<SqliteStore> sqlite(const std::string& file, SqliteOptions o = {}) { return open_sqlite_store(file, o); }

// Expects Error(storage) whose message names `file` and contains `what`.
template <typename F>
void storage_error(F&& f, const std::string& file, const std::string& what) {
  try {
    f();
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::storage);
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find(file) != std::string::npos);
    CHECK(m.find(what) != std::string::npos);
  }
}

// Keeps a copy of every commit and the binding it was made with.
struct Recorder final : StoreWrapper {
  explicit Recorder(std::shared_ptr<Store> target) : StoreWrapper(std::move(target)) {}
  void bind(std::shared_ptr<const CatalogBinding> b) override {
    binding = b;
    StoreWrapper::bind(std::move(b));
  }
  void commit(Commit c) override {
    commits.push_back(c);
    StoreWrapper::commit(std::move(c));
  }
  std::shared_ptr<const CatalogBinding> binding;
  std::vector<Commit> commits;
};

bool same(const InboxEntry& a, const InboxEntry& b) {
  return a.case_id == b.case_id && a.task == b.task && a.node == b.node && a.item == b.item && a.flow == b.flow &&
         a.flow_version == b.flow_version && a.node_index == b.node_index && a.assigned_user == b.assigned_user &&
         a.extra_users == b.extra_users && a.created == b.created && a.due == b.due;
}

}  // namespace

TEST_CASE("sqlite: a theme case runs, survives reopening and verifies") {
  TempDir dir;
  const std::string file = dir.file("cases.db");
  auto clock = std::make_shared<ManualClock>(monday());
  CaseId id = 0;
  std::size_t history = 0;
  {
    Host h(sqlite(file), investment(), clock);
    id = h.submit();
    for (int i = 0; i < 6; ++i) REQUIRE(h.step(id));
    history = h.engine->history(id).size();
    CHECK(h.engine->verify(id).ok);
  }
  {
    Host h(sqlite(file), investment(), clock);
    CHECK(h.engine->history(id).size() == history);
    const auto check = h.engine->verify(id);
    CHECK_MESSAGE(check.ok, check.message);
    h.finish(id);
    CHECK(h.engine->verify(id).ok);
    CHECK(verify_history(h.engine->history(id)).ok);
    const CaseId next = h.submit();
    CHECK(next != id);
  }
  {
    auto store = sqlite(file);
    Host h(store, investment(), clock);
    CHECK(h.engine->get(id).status == CaseStatus::finished);
    CHECK(h.engine->verify(id).ok);
    CHECK(store->integrity_check() == "ok");
    const SqliteInfo info = store->info();
    CHECK(info.cases == 2);
    CHECK(info.finished_cases == 1);
    CHECK(info.journal_mode == "wal");
    CHECK(info.schema_version == sqlite_migrations().back().version);
  }
}

TEST_CASE("sqlite: an engine's cached cases stay readable after it closes while another engine is open") {
  // Engine B binds last; engine A then commits (its snapshot is cached,
  // referring into A's catalog) and closes. B reads the case from the
  // cache: the store must have kept A's catalog (found in review: a use
  // after free under ASan).
  TempDir dir;
  auto store = sqlite(dir.file("cases.db"));
  auto clock = std::make_shared<ManualClock>(monday());
  auto fresh = [] { return load({fs::path(ONESTOP_SOURCE_DIR) / "examples" / "investment-project"}); };
  std::weak_ptr<const Catalog> first;
  auto a = std::make_unique<Host>(store, [&] {
    auto c = fresh();
    first = c;
    return c;
  }(), clock);
  Host b(store, fresh(), clock);
  const CaseId id = a->submit();
  a.reset();
  CHECK_FALSE(first.expired());
  const Case c = b.engine->get(id);
  CHECK(c.target == investment()->themes.front().id);
  CHECK(c.status == CaseStatus::running);
  CHECK(b.step(id));
  CHECK(b.engine->verify(id).ok);
}

TEST_CASE("sqlite: a stale version conflicts and changes nothing") {
  TempDir dir;
  const std::string file = dir.file("cases.db");
  auto recorder = std::make_shared<Recorder>(sqlite(file));
  Host h(recorder);
  const CaseId id = h.submit();
  REQUIRE(h.step(id));
  const std::uint64_t version = h.engine->get(id).version;
  const auto events = h.engine->history(id).size();
  // The last commit again: its expected version is stale now.
  Commit stale = recorder->commits.back();
  try {
    recorder->commit(stale);
    FAIL("no conflict");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::conflict);
    CHECK(std::string(e.what()) ==
          fmt::format("case {} is at version {}, not {}: another action was committed first", id, version,
                      stale.expected_version));
  }
  // A new case that already exists.
  Commit again = recorder->commits.front();
  CHECK_THROWS_AS(recorder->commit(again), Error);
  CHECK(h.engine->get(id).version == version);
  CHECK(h.engine->history(id).size() == events);
  CHECK(h.engine->verify(id).ok);

  // Another connection (as another process would) acts first.
  Host other(sqlite(file));
  REQUIRE(other.step(id));
  const Case c = h.engine->get(id);
  CHECK(c.version == version + 1);  // seen through the first store: no stale cache
  REQUIRE(h.step(id));
  CHECK(other.engine->get(id).version == version + 2);
}

TEST_CASE("sqlite: commit_batch is all or nothing") {
  auto recorder = std::make_shared<Recorder>(open_memory_store());
  Host source(recorder);
  const CaseId a = source.submit();
  const CaseId b = source.submit();
  REQUIRE(source.step(a));
  REQUIRE(source.step(b));
  const auto commits = recorder->commits;  // a:1, b:1, a:2, b:2

  TempDir dir;
  auto store = sqlite(dir.file("batch.db"));
  store->bind(recorder->binding);
  // The last one conflicts: its case is at version 2 by then.
  std::vector<Commit> bad = {commits[0], commits[1], commits[2], commits[3], commits[2]};
  CHECK_THROWS_AS(store->commit_batch(bad), Error);
  CHECK(store->case_ids().empty());
  CHECK(store->history(a).empty());

  store->commit_batch(commits);
  CHECK(store->case_ids() == std::vector<CaseId>{a, b});
  CHECK(store->history(a) .size() == recorder->history(a).size());
  CHECK(verify_history(store->history(b)).ok);
  CHECK(store->load(a) != nullptr);
  CHECK_THROWS_AS(store->commit_batch({commits[2]}), Error);
}

TEST_CASE("sqlite: deferred batches join engine actions into one transaction") {
  TempDir dir;
  const std::string file = dir.file("deferred.db");
  auto store = sqlite(file);
  Host h(store);
  CaseId kept = 0;
  {
    SqliteBatch batch(*store);
    kept = h.submit();
    for (int i = 0; i < 5; ++i) REQUIRE(h.step(kept));
    // Reads through the store see the batch.
    CHECK(h.engine->verify(kept).ok);
    CHECK(store->case_ids() == std::vector<CaseId>{kept});
    // Another connection sees none of it yet.
    auto reader = sqlite(file, SqliteOptions{.busy_timeout = std::chrono::milliseconds(0)});
    CHECK(reader->case_ids().empty());
    batch.commit();
  }
  CHECK(sqlite(file)->case_ids() == std::vector<CaseId>{kept});
  std::uint64_t version = h.engine->get(kept).version;
  {
    SqliteBatch batch(*store);
    REQUIRE(h.step(kept));
    h.submit();
    // Not committed: dropped on scope exit.
  }
  CHECK(h.engine->get(kept).version == version);
  CHECK(store->case_ids() == std::vector<CaseId>{kept});
  CHECK(h.engine->verify(kept).ok);
  h.finish(kept);
  CHECK(h.engine->verify(kept).ok);
}

TEST_CASE("sqlite: inbox answers equal the memory store's") {
  TempDir dir;
  Host mem(open_memory_store());
  Host lite(sqlite(dir.file("inbox.db")));
  std::mt19937 rng(7);
  std::vector<CaseId> ids;
  for (int i = 0; i < 12; ++i) {
    const CaseId a = mem.submit();
    const CaseId b = lite.submit();
    REQUIRE(a == b);
    ids.push_back(a);
    mem.clock->advance(std::chrono::minutes(10 + i));
    lite.clock->advance(std::chrono::minutes(10 + i));
    const int steps = static_cast<int>(rng() % 14);
    for (int s = 0; s < steps; ++s) {
      const bool ra = mem.step(a);
      const bool rb = lite.step(b);
      REQUIRE(ra == rb);
    }
  }
  // A transfer and an added signer on one case.
  for (CaseId id : ids) {
    const Case c = mem.engine->get(id);
    const auto open = c.open_tasks();
    if (open.size() < 2 || open[1]->kind != NodeKind::task) continue;
    Action a;
    a.kind = ActionKind::transfer;
    a.case_id = id;
    a.task = open[1]->id;
    a.actor = Host::entitled(*open[1]);
    a.target = "transferee";
    mem.engine->act(a);
    lite.engine->act(a);
    break;
  }
  std::vector<InboxQuery> queries;
  std::set<std::string> roles, departments, items;
  for (CaseId id : ids) {
    const Case c = mem.engine->get(id);
    for (const auto* t : c.open_tasks()) {
      for (const auto& r : t->candidates.roles) roles.insert(r);
      for (const auto& d : t->candidates.departments) departments.insert(d);
      items.insert(t->item);
    }
  }
  for (const auto& r : roles) queries.push_back(InboxQuery{"", {r}, {}, "", 0, 50});
  for (const auto& d : departments) queries.push_back(InboxQuery{"", {}, {d}, "", 0, 50});
  queries.push_back(InboxQuery{"transferee", {}, {}, "", 0, 50});
  queries.push_back(InboxQuery{"", {roles.begin(), roles.end()}, {departments.begin(), departments.end()}, "", 0, 1000});
  queries.push_back(InboxQuery{"transferee", {roles.begin(), roles.end()}, {departments.begin(), departments.end()}, "", 3, 7});
  for (const auto& item : items) {
    queries.push_back(InboxQuery{"", {roles.begin(), roles.end()}, {departments.begin(), departments.end()}, item, 0, 50});
  }
  queries.push_back(InboxQuery{"nobody", {"no_role"}, {}, "", 0, 50});
  std::size_t total = 0;
  for (const auto& q : queries) {
    const auto a = mem.engine->inbox(q);
    const auto b = lite.engine->inbox(q);
    INFO("query user=" << q.user << " roles=" << q.roles.size() << " departments=" << q.departments.size()
                       << " item=" << q.item << " offset=" << q.offset);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(same(a[i], b[i]));
    total += a.size();
  }
  CHECK(total > 20);
  REQUIRE(mem.clock->now() == lite.clock->now());
  const Instant later = mem.clock->now() + std::chrono::hours(24 * 400);
  CHECK(!mem.store->due_cases(later, 100).empty());
  CHECK(mem.store->due_cases(later, 100) == lite.store->due_cases(later, 100));
  CHECK(mem.store->due_cases(later, 3) == lite.store->due_cases(later, 3));
  CHECK(mem.store->case_ids() == lite.store->case_ids());
}

TEST_CASE("sqlite: timers fire through tick after reopening") {
  TempDir dir;
  const std::string file = dir.file("timers.db");
  auto clock = std::make_shared<ManualClock>(monday());
  CaseId id = 0;
  {
    Host h(sqlite(file), investment(), clock);
    id = h.submit();
    // Accept, then leave the case waiting: its step limits are due timers.
    REQUIRE(h.step(id));
    CHECK(h.store->due_cases(clock->now(), 10).empty());
    CHECK(h.store->due_cases(clock->now() + std::chrono::hours(24 * 60), 10) == std::vector<CaseId>{id});
  }
  Host h(sqlite(file), investment(), clock);
  const auto before = h.engine->history(id).size();
  clock->advance(std::chrono::hours(24 * 30));
  CHECK(h.engine->tick(clock->now()) > 0);
  const auto events = h.engine->history(id);
  CHECK(events.size() > before);
  CHECK(std::any_of(events.begin(), events.end(), [](const Event& e) { return e.kind == EventKind::warning; }));
  CHECK(h.engine->verify(id).ok);
  // Fired once: a second tick at the same instant does nothing more.
  const auto after = events.size();
  h.engine->tick(clock->now());
  CHECK(h.engine->history(id).size() == after);
}

TEST_CASE("sqlite: schema versions: newer refused untouched, older upgraded") {
  TempDir dir;
  const std::string file = dir.file("schema.db");
  auto with_two = sqlite_migrations();
  with_two.push_back({with_two.back().version + 1, "a column for notes", "ALTER TABLE cases ADD COLUMN note TEXT;"});
  const int known = sqlite_migrations().back().version;
  CaseId id = 0;
  {
    Host h(sqlite(file));
    id = h.submit();
    REQUIRE(h.step(id));
  }
  {
    // Upgraded in place by the newer build; the case continues.
    auto store = open_sqlite_store(file, {}, with_two);
    CHECK(store->info().schema_version == known + 1);
    Host h(store);
    REQUIRE(h.step(id));
    CHECK(h.engine->verify(id).ok);
  }
  const std::string before = read_bytes(file);
  try {
    sqlite(file);
    FAIL("a newer schema was opened");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::storage);
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find(file) != std::string::npos);
    CHECK(m.find("schema version " + std::to_string(known + 1)) != std::string::npos);
    CHECK(m.find("up to " + std::to_string(known)) != std::string::npos);
  }
  CHECK(read_bytes(file) == before);
  CHECK(!fs::exists(file + "-wal"));

  // A read-only store does not upgrade.
  const std::string old = dir.file("old.db");
  { Host h(sqlite(old)); }
  storage_error([&] { open_sqlite_store(old, SqliteOptions{.read_only = true}, with_two); }, old, "read-only");

  // Migrations must be numbered 1, 2, 3, ...
  auto gap = sqlite_migrations();
  gap.push_back({known + 2, "gap", "SELECT 1;"});
  CHECK_THROWS_AS(open_sqlite_store(dir.file("gap.db"), {}, gap), Error);
}

TEST_CASE("sqlite: corrupt and foreign files give storage errors and stay unchanged") {
  TempDir dir;
  const std::string garbage = dir.file("garbage.db");
  {
    std::ofstream out(garbage, std::ios::binary);
    std::mt19937 rng(1);
    for (int i = 0; i < 8192; ++i) out.put(static_cast<char>(rng()));
  }
  const std::string garbage_bytes = read_bytes(garbage);
  storage_error([&] { sqlite(garbage); }, garbage, "is not a onestop database");
  CHECK(read_bytes(garbage) == garbage_bytes);

  // A text file.
  const std::string text = dir.file("notes.txt");
  { std::ofstream(text) << "these are my notes, not a database\n"; }
  storage_error([&] { open_store("sqlite:" + text); }, text, "is not a onestop database");

  // An SQLite database of some other program.
  const std::string foreign = dir.file("foreign.db");
  fs::copy_file(versions_dir() / "foreign.db", foreign);
  const std::string foreign_bytes = read_bytes(foreign);
  storage_error([&] { sqlite(foreign); }, foreign, "is not a onestop database");
  CHECK(read_bytes(foreign) == foreign_bytes);
  CHECK(!fs::exists(foreign + "-wal"));

  // A onestop database damaged in the middle: found by integrity_check or
  // by the first read of a damaged page, never a crash.
  const std::string damaged = dir.file("damaged.db");
  {
    Host h(sqlite(damaged));
    for (int i = 0; i < 20; ++i) h.finish(h.submit());
  }
  {
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(fs::file_size(damaged));
    std::mt19937 rng(2);
    for (std::streamoff at = 4096 * 2; at < size; at += 4096 * 3) {
      f.seekp(at);
      for (int i = 0; i < 512; ++i) f.put(static_cast<char>(rng()));
    }
  }
  bool reported = false;
  try {
    auto store = sqlite(damaged);
    reported = store->integrity_check() != "ok";
    Host h(store);
    for (CaseId id : store->case_ids()) h.engine->verify(id);
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::storage);
    CHECK(std::string(e.what()).find(damaged) != std::string::npos);
    reported = true;
  }
  CHECK(reported);
}

TEST_CASE("sqlite: an empty file opened read-only is refused as no onestop database, and stays empty") {
  TempDir dir;
  const std::string empty = dir.file("empty.db");
  { std::ofstream out(empty); }
  storage_error([&] { sqlite(empty, SqliteOptions{.read_only = true}); }, empty,
                "is not a onestop database (an empty file, or an SQLite database with nothing in it)");
  CHECK(fs::file_size(empty) == 0);
}

TEST_CASE("sqlite: a snapshot that cannot be read names the file and the case") {
  TempDir dir;
  // A changed byte inside a stored snapshot (SQLite keeps no checksum of
  // its own; the snapshot's finds it).
  const std::string file = dir.file("snapshot.db");
  {
    Host h(sqlite(file));
    h.submit();
  }
  {
    std::string bytes = read_bytes(file);
    const auto at = bytes.find("OSS1");
    REQUIRE(at != std::string::npos);
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at + 40));
    f.put(static_cast<char>(bytes[at + 40] ^ 0x5a));
  }
  {
    Host h(sqlite(file));
    storage_error([&] { h.engine->get(1); }, file, ": case 1: snapshot: damaged (its checksum does not match)");
  }
  // A finished case on a flow version the definitions lack (Store::bind
  // lets it be: only unfinished cases must find theirs).
  const std::string versions = dir.file("versions.db");
  const fs::path defs = fs::path(ONESTOP_TEST_DATA) / "versions";
  auto catalog_of = [](std::vector<fs::path> paths) {
    auto loaded = load_catalog(paths);
    REQUIRE(loaded.ok());
    return loaded.catalog;
  };
  {
    Host h(sqlite(versions), catalog_of({defs / "common.yaml", defs / "vflow1.yaml"}));
    Submission s;
    s.target = "IT-V";
    s.applicant = Applicant{ApplicantKind::legal_person, company, "Investor Ltd"};
    const CaseId id = *h.engine->submit(s, Actor::applicant_of(company)).case_id;
    h.finish(id);
  }
  Host h(sqlite(versions), catalog_of({defs / "common.yaml", defs / "vflow2.yaml"}));
  try {
    h.engine->statistics({});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) ==
          versions + ": case 1: the case runs flow 'vflow' version 1, which the catalog does not contain");
  }
}

TEST_CASE("sqlite: a read-only store reads and refuses writes") {
  TempDir dir;
  const std::string file = dir.file("ro.db");
  CaseId id = 0;
  {
    Host h(sqlite(file));
    id = h.submit();
  }
  auto store = sqlite(file, SqliteOptions{.read_only = true});
  Host h(store);
  const auto version = h.engine->get(id).version;
  CHECK(!h.engine->inbox(InboxQuery{"", {"investment_window_clerk"}, {}, "", 0, 50}).empty());
  storage_error([&] { h.step(id); }, file, "read-only");
  storage_error([&] { h.submit(); }, file, "read-only");
  CHECK(h.engine->get(id).version == version);

  if (::geteuid() != 0) {  // root writes whatever the mode says
    const std::string locked = dir.file("locked.db");
    { Host w(sqlite(locked)); w.submit(); }
    ::chmod(locked.c_str(), 0444);
    storage_error([&] { Host w(sqlite(locked)); w.submit(); }, locked, "read-only");
  }
}

namespace {

// Runs `f` where file permissions hold: in this process when it is not
// root; as root (which writes whatever the modes say), in a child process
// that becomes the user nobody (65534) and sends back the lines `f`
// returned. nullopt when that cannot be done: root may not change its user
// (a container without CAP_SETUID), or nobody cannot read `needed`.
std::optional<std::vector<std::string>> as_unprivileged(const std::string& needed,
                                                        const std::function<std::vector<std::string>()>& f) {
  if (::geteuid() != 0) return f();
  int fds[2];
  if (::pipe(fds) != 0) return std::nullopt;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return std::nullopt;
  }
  if (pid == 0) {
    // No doctest here: a check failing in the child would be lost.
    ::close(fds[0]);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0 || ::access(needed.c_str(), R_OK) != 0) {
      ::_exit(77);
    }
    std::string out;
    try {
      for (const auto& line : f()) out += line + '\n';
    } catch (const std::exception& e) {
      out = std::string("exception: ") + e.what() + '\n';
    }
    for (std::size_t done = 0; done < out.size();) {
      const ssize_t n = ::write(fds[1], out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(2);
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string in;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    in.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) return std::nullopt;
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "the child running as nobody failed: ", status);
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < in.size();) {
    const std::size_t end = in.find('\n', at);
    lines.push_back(in.substr(at, end - at));
    at = end + 1;
  }
  return lines;
}

}  // namespace

// SQLite reads a WAL database read-only only through PATH-wal and PATH-shm,
// which it creates when missing; in a directory it may not write (a backup
// on a read-only mount, another user's directory) the store reads the file
// as immutable, unless a log is there that it would miss.
TEST_CASE("sqlite: a read-only store in a directory no one may write is read, unless a log it would miss is there") {
  TempDir dir;
  fs::permissions(dir.path, fs::perms(0755));  // nobody passes through to the directories below
  // '%', '?' and '#' mean something in the file: URI the immutable file is
  // opened by; "%41" would be read as "A" if '%' were not escaped.
  const fs::path backup = dir.path / "backup #1 ?%41";
  const fs::path empty_log = dir.path / "empty-log";
  const fs::path live = dir.path / "live";
  const fs::path with_log = dir.path / "with-log";
  for (const auto& d : {backup, empty_log, live, with_log}) fs::create_directory(d);
  const std::string file = (backup / "cases.db").string();

  std::vector<std::pair<CaseId, std::uint64_t>> versions;  // of every case, as written
  CaseId running = 0;
  {
    Host h(sqlite(file));
    const CaseId done = h.submit();
    h.finish(done);
    running = h.submit();
    for (CaseId id : {done, running}) versions.emplace_back(id, h.engine->get(id).version);
  }
  REQUIRE(!fs::exists(file + "-wal"));  // closed: every transaction is in the file
  fs::copy_file(file, empty_log / "cases.db");
  std::ofstream((empty_log / "cases.db-wal").string()).close();

  // A copy taken while a writer is open: its newest case is only in the log.
  fs::copy_file(file, live / "cases.db");
  {
    Host h(sqlite((live / "cases.db").string()));
    h.submit();
    REQUIRE(fs::file_size(live / "cases.db-wal") > 0);
    fs::copy_file(live / "cases.db", with_log / "cases.db");
    fs::copy_file(live / "cases.db-wal", with_log / "cases.db-wal");
  }

  // Nobody may write the files or the directories.
  struct Unlock {
    std::vector<fs::path> dirs;
    ~Unlock() {
      std::error_code ec;
      for (const auto& d : dirs) fs::permissions(d, fs::perms(0755), ec);
    }
  } unlock{{backup, empty_log, with_log}};
  for (const auto& d : unlock.dirs) {
    for (const auto& e : fs::directory_iterator(d)) fs::permissions(e.path(), fs::perms(0444));
    fs::permissions(d, fs::perms(0555));
  }

  // What a reader finds: every case, verified, and writes refused.
  auto read = [&](const std::string& db) -> std::string {
    try {
      auto store = sqlite(db, SqliteOptions{.read_only = true});
      Host h(store);
      std::string out = fmt::format("immutable {}", store->info().immutable);
      for (CaseId id : store->case_ids()) {
        const auto check = h.engine->verify(id);
        out += fmt::format(", case {} version {} {}", id, h.engine->get(id).version, check.ok ? "verified" : check.message);
      }
      try {
        h.step(running);
        out += ", written";
      } catch (const Error& e) {
        out += fmt::format(", write refused ({})", to_string(e.code()));
      }
      return out;
    } catch (const Error& e) {
      return fmt::format("{}: {}", to_string(e.code()), e.what());
    }
  };
  investment();  // loaded here, not in the child
  const auto lines = as_unprivileged(file, [&] {
    return std::vector<std::string>{read(file), read((empty_log / "cases.db").string()),
                                    read((with_log / "cases.db").string())};
  });
  if (!lines) {
    MESSAGE("skipped: root cannot run this as the user nobody");
    return;
  }
  REQUIRE(lines->size() == 3);
  std::string expected = "immutable true";
  for (const auto& [id, version] : versions) expected += fmt::format(", case {} version {} verified", id, version);
  expected += ", write refused (storage)";
  CHECK((*lines)[0] == expected);  // no log files beside it
  CHECK((*lines)[1] == expected);  // an empty log: nothing in it to miss

  // A log with content is refused, naming it and why.
  const std::string refused = (*lines)[2];
  INFO(refused);
  CHECK(refused.starts_with("storage: " + (with_log / "cases.db").string() + ": cannot be read here: "));
  CHECK(refused.find((with_log / "cases.db-wal").string() + " holds ") != std::string::npos);
  CHECK(refused.find("its directory " + with_log.string() + " is not writable") != std::string::npos);
  CHECK(refused.find("the database file alone would show an older state") != std::string::npos);

  // Rightly: the file alone lacks the newest case, which the log holds.
  fs::permissions(with_log, fs::perms(0755));
  const fs::path alone = dir.path / "alone.db";
  fs::copy_file(with_log / "cases.db", alone);
  CHECK(sqlite(alone.string(), SqliteOptions{.read_only = true})->case_ids().size() == 2);
  CHECK(sqlite((with_log / "cases.db").string(), SqliteOptions{.read_only = true})->case_ids().size() == 3);
}

TEST_CASE("sqlite: a full database fails the action and keeps every other") {
  TempDir dir;
  const std::string file = dir.file("full.db");
  SqliteOptions o;
  o.max_bytes = 600 * 1024;
  std::vector<CaseId> ids;
  bool full = false;
  {
    Host h(sqlite(file, o));
    for (int i = 0; i < 2000 && !full; ++i) {
      try {
        const CaseId id = h.submit();
        ids.push_back(id);
        h.finish(id);
      } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::storage);
        const std::string m = e.what();
        INFO(m);
        CHECK(m.find(file) != std::string::npos);
        CHECK(m.find("full") != std::string::npos);
        full = true;
      }
    }
  }
  REQUIRE(full);
  auto store = sqlite(file);
  CHECK(store->integrity_check() == "ok");
  Host h(store);
  for (CaseId id : store->case_ids()) {
    const auto check = h.engine->verify(id);
    CHECK_MESSAGE(check.ok, check.message);
  }
  // With room again the interrupted case goes on.
  for (CaseId id : store->case_ids()) {
    if (h.engine->get(id).status == CaseStatus::running) h.finish(id);
  }
}

TEST_CASE("sqlite: a store refuses work before bind") {
  TempDir dir;
  auto store = sqlite(dir.file("unbound.db"));
  try {
    store->load(1);
    store->inbox(InboxQuery{"u", {}, {}, "", 0, 10});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_state);
    CHECK(std::string(e.what()).find("bind") != std::string::npos);
  }
  CHECK(store->case_ids().empty());
}

TEST_CASE("sqlite: store URIs") {
  TempDir dir;
  const std::string file = dir.file("uri.db");
  auto store = open_store("sqlite:" + file);
  REQUIRE(std::dynamic_pointer_cast<SqliteStore>(store));
  CHECK(std::dynamic_pointer_cast<SqliteStore>(store)->path() == file);
  { Host h(store); h.submit(); }
  CHECK(open_store("sqlite:" + file + "?synchronous=full&busy_timeout_ms=100")->case_ids().size() == 1);
  CHECK(open_store("sqlite:" + file + "?read_only=1")->case_ids().size() == 1);
  CHECK(open_store("sqlite:" + file + "?coalesce_wal_writes=0")->case_ids().size() == 1);
  CHECK_THROWS_AS(open_store("sqlite:" + file + "?coalesce_wal_writes=maybe"), Error);
  auto mem = open_store("sqlite::memory:");
  { Host h(mem); h.finish(h.submit()); }
  CHECK(mem->case_ids().size() == 1);
  // A busy timeout SQLite cannot take (an int of milliseconds) is refused, not wrapped.
  CHECK(open_store("sqlite:" + file + "?busy_timeout_ms=2147483647")->case_ids().size() == 1);
  for (const char* ms : {"2147483648", "4294967296", "9223372036854775807"}) {
    CAPTURE(ms);
    CHECK_THROWS_WITH_AS(open_store("sqlite:" + file + "?busy_timeout_ms=" + ms),
                         fmt::format("store 'sqlite:{}?busy_timeout_ms={}': busy_timeout_ms is {}, more than the largest "
                                     "SQLite takes (2147483647 ms, about 24 days)",
                                     file, ms, ms)
                             .c_str(),
                         Error);
  }
  try {
    sqlite(file, SqliteOptions{.busy_timeout = std::chrono::milliseconds(std::int64_t{1} << 31)});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_input);
    CHECK(std::string(e.what()) == file + ": busy_timeout is 2147483648 ms, not from 0 to 2147483647 ms (what SQLite takes, about 24 days)");
  }
  CHECK_THROWS_AS(open_store("sqlite:" + file + "?colour=blue"), Error);
  CHECK_THROWS_AS(open_store("sqlite:"), Error);
  storage_error([&] { open_store("sqlite:" + dir.file("no/such/dir/x.db")); }, dir.file("no/such/dir/x.db"), "cannot open");
}

TEST_CASE("sqlite: imported cases keep their ids and the sequence moves past them") {
  Host source(open_memory_store());
  CaseId id = 0;
  for (int i = 0; i < 40; ++i) id = source.submit();
  source.finish(id);
  const auto history = source.engine->history(id);

  TempDir dir;
  const std::string file = dir.file("import.db");
  {
    Host h(sqlite(file));
    const CaseId first = h.submit();
    CHECK(first < id);
    h.engine->import_case(history);
    CHECK(h.engine->history(id).size() == history.size());
    CHECK(h.engine->verify(id).ok);
    CHECK_THROWS_AS(h.engine->import_case(history), Error);
  }
  Host h(sqlite(file));
  for (int i = 0; i < 100; ++i) CHECK(h.submit() != id);
}

TEST_CASE("sqlite: threads share one store") {
  TempDir dir;
  auto store = sqlite(dir.file("threads.db"));
  auto clock = std::make_shared<ManualClock>(monday());
  Host h(store, investment(), clock);
  std::vector<CaseId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(h.submit());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (CaseId id : ids) {
    threads.emplace_back([&, id] {
      try {
        for (int guard = 0; guard < 300; ++guard) {
          const Case c = h.engine->get(id);
          if (c.status != CaseStatus::running) break;
          const auto open = c.open_tasks();
          if (open.empty()) continue;  // timers are left to the main thread
          Action a;
          a.case_id = id;
          a.task = open.front()->id;
          a.kind = open.front()->node == "accept" ? ActionKind::accept : ActionKind::approve;
          a.actor = Host::entitled(*open.front());
          h.engine->act(a);
        }
      } catch (...) {
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  for (CaseId id : ids) {
    h.finish(id);
    CHECK(h.engine->verify(id).ok);
  }
}

TEST_CASE("sqlite: running cases keep their definition version; listing shows both") {
  TempDir dir;
  const std::string file = dir.file("versions.db");
  const auto v1 = load({versions_dir() / "org.yaml", versions_dir() / "v1"});
  const auto both = load({versions_dir() / "org.yaml", versions_dir() / "v1", versions_dir() / "v2"});
  const auto only_v2 = load({versions_dir() / "org.yaml", versions_dir() / "v2"});
  const Actor planner = Actor::staff_member("p", {}, {"planning"});
  const Actor lead = Actor::staff_member("l", {"lead"});
  std::vector<CaseId> old_cases;
  {
    Host h(sqlite(file), v1);
    for (int i = 0; i < 3; ++i) old_cases.push_back(h.submit("XK-PLAN-0012"));
    Action a;
    a.kind = ActionKind::approve;
    a.case_id = old_cases[0];
    a.task = 1;
    a.actor = planner;
    h.engine->act(a);  // finished on version 1
  }
  // Refused: two cases still run on version 1.
  try {
    Host h(sqlite(file), only_v2);
    FAIL("a catalog without version 1 was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_input);
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("case " + std::to_string(old_cases[1])) != std::string::npos);
    CHECK(m.find("item XK-PLAN-0012 version 1") != std::string::npos);
    CHECK(m.find("deploy new versions beside the old") != std::string::npos);
  }
  auto store = sqlite(file);
  Host h(store, both);
  const CaseId fresh = h.submit("XK-PLAN-0012");
  CHECK(h.engine->get(fresh).target_version == 2);
  CHECK(h.engine->get(old_cases[1]).target_version == 1);
  CHECK(h.engine->get(old_cases[1]).flow_version == 1);
  // The old case ends after one review, on version 1; the new one needs the lead.
  Action a;
  a.kind = ActionKind::approve;
  a.case_id = old_cases[1];
  a.task = 1;
  a.actor = planner;
  h.engine->act(a);
  CHECK(h.engine->get(old_cases[1]).status == CaseStatus::finished);
  a.case_id = fresh;
  h.engine->act(a);
  CHECK(h.engine->get(fresh).status == CaseStatus::running);
  const auto inbox = h.engine->inbox(InboxQuery{"", {"lead"}, {}, "", 0, 10});
  REQUIRE(inbox.size() == 1);
  CHECK(inbox[0].flow_version == 2);

  const auto uses = store->versions();
  auto find = [&](const std::string& kind, int version) -> const DefinitionUse* {
    for (const auto& u : uses) {
      if (u.kind == kind && u.version == version && (u.id == "XK-PLAN-0012" || u.id == "permit_review")) return &u;
    }
    return nullptr;
  };
  const DefinitionUse* i1 = find("item", 1);
  const DefinitionUse* i2 = find("item", 2);
  const DefinitionUse* f2 = find("flow", 2);
  REQUIRE(i1);
  REQUIRE(i2);
  REQUIRE(f2);
  CHECK(i1->running == 1);
  CHECK(i1->finished == 2);
  CHECK(i2->running == 1);
  CHECK(i2->finished == 0);
  CHECK(i2->first_deployed.has_value());
  CHECK(i1->name == "Planning permit");
  CHECK(f2->running == 1);
  REQUIRE(find("flow", 1));
  CHECK(find("flow", 1)->running == 1);
}

TEST_CASE("sqlite: a flow version or warning rules changed in place are refused while the store holds cases they concern") {
  TempDir dir;
  const std::string file = dir.file("structure.db");
  const std::string org = read_bytes((versions_dir() / "org.yaml").string());
  const std::string permit = read_bytes((versions_dir() / "v1" / "permit.yaml").string());
  // Another flow no item runs, and warning rules.
  const std::string other = "flow:\n  id: spare\n  nodes:\n    start: { kind: start }\n    done: { kind: end }\n"
                            "  edges:\n    - start -> done\n";
  const std::string rules = "rules:\n  - { id: y, when: \"used >= 50%\", warn: yellow, notify: [assignee] }\n"
                            "  - { id: r, when: \"used >= 100%\", warn: red, notify: [assignee] }\n";
  // Version 2 of the flow, which the item (pinned to version 1) never runs.
  std::string v2 = permit.substr(permit.find("\nflow:") + 1);
  v2.replace(v2.find("version: 1"), 10, "version: 2");
  auto catalog = [&](std::string text, std::string spare = {}, std::string warnings = {}, std::string second = {}) {
    std::vector<Source> sources{{"org.yaml", org}, {"permit.yaml", std::move(text)}, {"spare.yaml", spare.empty() ? other : spare}};
    sources.push_back({"rules.yaml", warnings.empty() ? rules : warnings});
    sources.push_back({"permit-v2.yaml", second.empty() ? v2 : second});
    auto r = load_catalog(sources);
    for (const auto& d : r.diagnostics) INFO(d.to_string());
    REQUIRE(r.ok());
    return r.catalog;
  };
  auto edited = [&](std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
  };
  const auto original = catalog(permit);
  // Version 1 edited in place: a step before the check moves every node after it.
  const auto moved = catalog(edited(edited(permit, "    check: { kind: task",
                                           "    intake: { kind: task, assignees: { department: planning } }\n    check: { kind: task"),
                                    "    - start -> check", "    - start -> intake\n    - intake -> check"));
  // A time limit changed: warnings fire elsewhere on replay.
  const auto longer = catalog(edited(permit, "time_limit: 5 working days", "time_limit: 7 working days"));
  // What no state or replay reads: a step's display name, the order of edges leaving different steps.
  const auto renamed = catalog(edited(edited(permit, "check: { kind: task,", "check: { kind: task, name: Check the plan,"),
                                      "    - start -> check\n    - check -> approved: { when: approved }\n",
                                      "    - check -> approved: { when: approved }\n    - start -> check\n"));
  const auto spare_changed = catalog(permit, edited(other, "done: { kind: end }", "done: { kind: end, outcome: approved }"));
  const auto v2_changed = catalog(permit, {}, {}, edited(v2, "time_limit: 5 working days", "time_limit: 9 working days"));
  const auto rules_swapped = catalog(permit, {},
                                     "rules:\n  - { id: r, when: \"used >= 100%\", warn: red, notify: [assignee] }\n"
                                     "  - { id: y, when: \"used >= 50%\", warn: yellow, notify: [assignee] }\n");

  // An empty store takes either, and records the last.
  { Host h(sqlite(file), moved); }
  CaseId id = 0;
  {
    Host h(sqlite(file), original);
    id = h.submit("XK-PLAN-0012");
  }
  auto refused = [&](const std::shared_ptr<const Catalog>& cat, const std::string& what) {
    try {
      Host h(sqlite(file), cat);
      FAIL("a catalog changed in place under the store's cases was accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::invalid_input);
      const std::string m = e.what();
      INFO(m);
      CHECK(m.find(what) != std::string::npos);
      CHECK(m.find("(1 case, case " + std::to_string(id) + " first)") != std::string::npos);
    }
  };
  const std::string flow_changed = "flow 'permit_review' version 1 (permit.yaml:14) is not the one this store recorded";
  refused(moved, flow_changed);
  refused(longer, flow_changed);
  refused(rules_swapped, "the catalog's warning rules are not the ones this store recorded");
  { Host h(sqlite(file), spare_changed); }  // no case runs the spare flow
  { Host h(sqlite(file), v2_changed); }     // nor version 2: the item is pinned to version 1
  {
    // Bound inside a batch that is then aborted: the record is made again,
    // and the case committed after it keeps the flow as it was.
    const std::string batch_file = dir.file("batch.db");
    CaseId in_batch = 0;
    {
      auto store = sqlite(batch_file);
      store->begin_batch();
      Host h(store, original);
      store->abort_batch();
      in_batch = h.submit("XK-PLAN-0012");
    }
    try {
      Host h(sqlite(batch_file), longer);
      FAIL("a flow changed in place was accepted after an aborted batch");
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(flow_changed) != std::string::npos);
      CHECK(std::string(e.what()).find("case " + std::to_string(in_batch) + " first") != std::string::npos);
    }
  }
  {
    Host h(sqlite(file), renamed);  // accepted: states and histories keep their meaning
    Action a;
    a.kind = ActionKind::approve;
    a.case_id = id;
    a.task = 1;
    a.actor = Actor::staff_member("p", {}, {"planning"});
    h.engine->act(a);
    CHECK(h.engine->get(id).status == CaseStatus::finished);
    CHECK(h.engine->verify(id).ok);
  }
  // Finished, the case's history still replays on the flow it ran: refused.
  refused(moved, flow_changed);
  Host h(sqlite(file), original);
  CHECK(h.engine->verify(id).ok);
}

TEST_CASE("sqlite: a theme case that ran a flow through an older item version keeps that flow from changing in place") {
  TempDir dir;
  const std::string file = dir.file("older-item.db");
  const std::string org = read_bytes((versions_dir() / "org.yaml").string());
  const std::string flow_a = R"(flow:
  id: fa
  nodes:
    start: { kind: start }
    check: { kind: task, assignees: { department: planning } }
    done: { kind: end, outcome: approved }
  edges:
    - start -> check
    - check -> done
)";
  const std::string theme = R"(items:
  - { code: XK-A, name: A, type: administrative_licence, department: planning, applicants: [legal_person], time_limit: 5 working days, flow: fa }
flows:
  - id: tf
    nodes:
      start: { kind: start }
      sub: { kind: subflow, item: XK-A }
      done: { kind: end, outcome: approved }
    edges:
      - start -> sub
      - sub -> done
themes:
  - { id: TH, name: Theme, lead_department: planning, flow: tf, time_limit: 10 working days }
)";
  // Later: XK-A version 2 runs another flow, and fa version 1 gains a step in place.
  const std::string item_v2 = R"(items:
  - { code: XK-A, version: 2, name: A, type: administrative_licence, department: planning, applicants: [legal_person], time_limit: 5 working days, flow: fb }
flows:
  - id: fb
    nodes:
      start: { kind: start }
      done: { kind: end, outcome: approved }
    edges:
      - start -> done
)";
  std::string moved = flow_a;
  moved.replace(moved.find("    check:"), 10, "    intake: { kind: task, assignees: { department: planning } }\n    check:");
  moved.replace(moved.find("    - start -> check"), 20, "    - start -> intake\n    - intake -> check");
  auto catalog = [&](std::vector<Source> sources) {
    sources.push_back({"org.yaml", org});
    auto r = load_catalog(sources);
    for (const auto& d : r.diagnostics) INFO(d.to_string());
    REQUIRE(r.ok());
    return r.catalog;
  };
  CaseId id = 0;
  {
    Host h(sqlite(file), catalog({{"fa.yaml", flow_a}, {"theme.yaml", theme}}));
    id = h.submit("TH");
  }
  try {
    Host h(sqlite(file), catalog({{"fa.yaml", moved}, {"theme.yaml", theme}, {"item-v2.yaml", item_v2}}));
    FAIL("flow fa changed in place under a theme case that ran it was accepted");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("flow 'fa' version 1") != std::string::npos);
    CHECK(std::string(e.what()).find("case " + std::to_string(id) + " first") != std::string::npos);
  }
}

TEST_CASE("sqlite: a schema version 1 database is upgraded with its inbox intact") {
  // tests/data/sqlite/schema-v1.db: the cases of tests/data/store (open,
  // finished, waiting, warned) in the tables of schema version 1.
  TempDir dir;
  const std::string file = dir.file("v1.db");
  fs::copy_file(versions_dir() / "schema-v1.db", file);
  const auto catalog = load({fs::path(ONESTOP_TEST_DATA) / "store" / "investment.yaml"});
  auto store = sqlite(file);
  CHECK(store->info().schema_version == sqlite_migrations().back().version);
  CHECK(store->integrity_check() == "ok");
  Host h(store, catalog);
  // Every open task of every case is in the inbox of its candidates.
  std::size_t open = 0;
  for (CaseId id : store->case_ids()) {
    const Case c = h.engine->get(id);
    for (const Task* t : c.open_tasks()) {
      ++open;
      InboxQuery q;
      q.roles = t->candidates.roles;
      q.departments = t->candidates.departments;
      if (!t->candidates.users.empty()) q.user = t->candidates.users.front();
      q.limit = 1000;
      const auto found = h.engine->inbox(q);
      CHECK(std::any_of(found.begin(), found.end(), [&](const InboxEntry& e) {
        return e.case_id == id && e.task == t->id && e.node != nullptr && e.node->id == t->node && e.created == t->created;
      }));
    }
  }
  CHECK(open > 0);
  CHECK(store->info().open_tasks == open);
}

TEST_CASE("sqlite: an engine whose cached state is stale applies its action to the latest state") {
  TempDir dir;
  const std::string file = dir.file("two.db");
  auto clock = std::make_shared<ManualClock>(monday());
  Host a(sqlite(file), investment(), clock);
  Host b(sqlite(file), investment(), clock);  // as another process: its own connection and cache
  const CaseId id = a.submit();
  for (int guard = 0; guard < 20 && a.engine->get(id).open_tasks().size() < 2; ++guard) REQUIRE(a.step(id));
  const Case seen = a.engine->get(id);  // a's cache now holds this version
  const auto open = seen.open_tasks();
  REQUIRE(open.size() >= 2);
  auto approve = [&](const Task& t) {
    Action x;
    x.case_id = id;
    x.task = t.id;
    x.kind = ActionKind::approve;
    x.actor = Host::entitled(t);
    return x;
  };
  // b moves the case on; a, not knowing, acts on another task.
  CHECK(b.engine->act(approve(*open[0])) == seen.version + 1);
  CHECK(a.engine->act(approve(*open[1])) == seen.version + 2);
  const auto history = b.engine->history(id);
  const auto acted = std::count_if(history.begin(), history.end(), [](const Event& e) { return e.kind == EventKind::acted; });
  CHECK(b.engine->get(id).version == seen.version + 2);
  CHECK(b.engine->verify(id).ok);
  CHECK(a.engine->verify(id).ok);
  // An action on a task b has finished meanwhile is refused as such, not applied twice.
  const Case now = a.engine->get(id);
  const auto still = now.open_tasks();
  REQUIRE(!still.empty());
  CHECK(b.engine->act(approve(*still[0])) == now.version + 1);
  try {
    a.engine->act(approve(*still[0]));
    FAIL("an action on a finished task was applied");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_state);
  }
  CHECK(b.engine->history(id).size() > history.size());
  // A host that names the version it saw gets `conflict` when it is stale.
  Action stale = approve(*b.engine->get(id).open_tasks().front());
  stale.expected_version = now.version;
  try {
    a.engine->act(stale);
    FAIL("a stale expected version was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::conflict);
  }
  CHECK(acted >= 2);
  CHECK(a.engine->verify(id).ok);
}

TEST_CASE("sqlite: a transaction of many pages is written whole, with WAL writes coalesced or not") {
  // A batch of a few hundred cases makes one transaction of megabytes of
  // WAL frames: more than the unix VFS writes in one call (it masks lengths
  // to 128 KiB - 1), which the coalescing VFS must split.
  for (const bool coalesce : {true, false}) {
    INFO("coalesce_wal_writes = " << coalesce);
    TempDir dir;
    const std::string file = dir.file("big.db");
    SqliteOptions o;
    o.coalesce_wal_writes = coalesce;
    o.cache_kib = 64;  // the batch spills pages to the WAL before its commit, and rewrites some
    auto store = sqlite(file, o);
    Host h(store);
    std::vector<CaseId> ids;
    const SqliteWalWrites before = sqlite_wal_writes();
    {
      SqliteBatch batch(*store);
      for (int i = 0; i < 300; ++i) {
        ids.push_back(h.submit());
        REQUIRE(h.step(ids.back()));
      }
      batch.commit();
    }
    // One more durable action per case, one transaction each: with
    // coalescing, about one write call per commit.
    const SqliteWalWrites batched = sqlite_wal_writes();
    for (int i = 0; i < 20; ++i) REQUIRE(h.step(ids[static_cast<std::size_t>(i)]));
    const SqliteWalWrites after = sqlite_wal_writes();
    // Nothing was ever left to write when frames were published.
    CHECK(after.late_calls == before.late_calls);
    if (coalesce) {
      CHECK(batched.calls > before.calls);
      CHECK(after.calls - batched.calls <= 20 * 3);
    } else {
      CHECK(after.calls == before.calls);  // the default VFS: nothing passes here
    }
    store.reset();
    h.engine.reset();
    auto reopened = sqlite(file, o);
    CHECK(reopened->integrity_check() == "ok");
    CHECK(reopened->case_ids() == ids);
    Host check(reopened);
    for (CaseId id : ids) {
      INFO("case " << id);
      CHECK(check.engine->verify(id).ok);
    }
    CHECK(check.engine->get(ids.front()).version == 3);
    CHECK(check.engine->get(ids.back()).version == 2);
  }
}

TEST_CASE("sqlite: histories of every length come back exactly as committed, broken chains too") {
  // Events go in several rows per statement (runs of 32, 16, ... 1): every
  // length, every position of a hash that does not chain, both batched and
  // one commit at a time.
  auto recorder = std::make_shared<Recorder>(open_memory_store());
  Host source(recorder);
  source.submit();
  const Commit model = recorder->commits.front();
  TempDir dir;
  for (const bool batched : {false, true}) {
    auto store = sqlite(dir.file(batched ? "lengths-batch.db" : "lengths.db"));
    store->bind(recorder->binding);
    std::vector<Commit> commits;
    std::map<CaseId, std::vector<Event>> expected;
    for (std::size_t n = 1; n <= 70; ++n) {
      const CaseId id = 1000 + n;
      std::vector<Event> events;
      Hash prev{};
      for (std::size_t k = 1; k <= n; ++k) {
        Event e;
        e.case_id = id;
        e.seq = k;
        e.at = monday() + std::chrono::seconds(static_cast<std::int64_t>(60 * k));
        e.actor = fmt::format("actor{}", k % 3);
        e.kind = k == 1 ? EventKind::submitted : EventKind::acted;
        e.task = static_cast<TaskId>(k % 5);
        e.node = fmt::format("node{}", k);
        e.from = k % 2 ? "open" : "";
        e.to = "approved";
        e.payload = std::string(k * 7 % 300, 'x');
        e.prev_hash = prev;
        if (k == n / 2 + 1) e.prev_hash[0] ^= 0x5A;  // one link that does not chain
        e.hash = Hash{};
        e.hash[0] = static_cast<unsigned char>(n);
        e.hash[1] = static_cast<unsigned char>(k);
        prev = e.hash;
        events.push_back(e);
      }
      Commit c = model;
      c.chained = false;  // these hashes are not their events'
      c.case_id = id;
      c.expected_version = 0;
      c.new_version = 1;
      c.events = events;
      c.open_tasks.clear();
      expected[id] = events;
      commits.push_back(std::move(c));
    }
    if (batched) {
      store->commit_batch(commits);
    } else {
      for (auto& c : commits) store->commit(c);
    }
    for (const auto& [id, events] : expected) {
      INFO("case " << id << (batched ? " (batch)" : ""));
      const auto back = store->history(id);
      REQUIRE(back.size() == events.size());
      for (std::size_t k = 0; k < back.size(); ++k) {
        CHECK(back[k].seq == events[k].seq);
        CHECK(back[k].at == events[k].at);
        CHECK(back[k].actor == events[k].actor);
        CHECK(back[k].kind == events[k].kind);
        CHECK(back[k].task == events[k].task);
        CHECK(back[k].node == events[k].node);
        CHECK(back[k].from == events[k].from);
        CHECK(back[k].to == events[k].to);
        CHECK(back[k].payload == events[k].payload);
        CHECK(back[k].prev_hash == events[k].prev_hash);
        CHECK(back[k].hash == events[k].hash);
      }
    }
  }
}
