// The SQLite store. One connection behind a mutex; every commit is one
// BEGIN IMMEDIATE transaction that checks the case version first, so several
// threads and several processes may share the file. Snapshots are the bytes
// of CatalogBinding::encode; decoded ones are cached per (case, version).
// A deferred batch keeps the latest commit of each case in memory and writes
// them in one transaction (see begin_batch in sqlite_store.hpp).

#include "core/compiled.hpp"
#include "store/sqlite_db.hpp"
#include "store/sqlite_schema.hpp"

#include <onestop/sqlite_store.hpp>
#include <onestop/version.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>

namespace onestop {

namespace {

using sqlite_detail::describe;
using sqlite_detail::fail;
using sqlite_detail::Reset;
using sqlite_detail::Stmt;

constexpr std::int64_t onestop_application_id = 0x4F4E5354;  // "ONST", set by migration 1
constexpr std::int64_t finished_status = static_cast<std::int64_t>(CaseStatus::finished);
constexpr char separator = '\x1f';      // fields; also users in inbox.extra_users
constexpr char record_separator = '\x1e';  // open-task records in cases.open_tasks
constexpr char list_separator = '\x1d';    // lists inside a record
// Events held by a deferred batch before they are written into its transaction.
constexpr std::size_t batch_flush_events = 32768;

std::int64_t seconds(Instant t) { return t.time_since_epoch().count(); }
Instant instant(std::int64_t s) { return Instant{std::chrono::seconds{s}}; }
std::optional<std::int64_t> seconds(const std::optional<Instant>& t) {
  if (!t) return std::nullopt;
  return seconds(*t);
}
std::optional<Instant> instant(const std::optional<std::int64_t>& s) {
  if (!s) return std::nullopt;
  return instant(*s);
}

std::string join(std::span<const std::string> parts, char sep = separator) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep = separator) {
  std::vector<std::string_view> out;
  if (s.empty()) return out;
  std::size_t start = 0;
  while (true) {
    const auto end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

// Who may see a task: one letter for the kind ('u', 'r', 'd') and the name.
// Memory-store rules: the assigned user alone after a transfer; else the
// node's users, signers and added signers, roles and departments.
std::vector<std::string> candidates_of(const OpenTaskView& e) {
  std::vector<std::string> out;
  auto add = [&](char kind, std::string_view name) {
    std::string c;
    c.reserve(name.size() + 1);
    c += kind;
    c += name;
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(std::move(c));
  };
  if (!e.assigned_user.empty()) {
    add('u', e.assigned_user);
    return out;
  }
  if (e.node != nullptr) {
    for (const auto& u : e.node->assignees.users) add('u', u);
    for (const auto& u : e.node->signers) add('u', u);
  }
  for (const auto& u : e.extra_users) add('u', u);
  if (e.node != nullptr) {
    for (const auto& r : e.node->assignees.roles) add('r', r);
    for (const auto& d : e.node->assignees.departments) add('d', d);
  }
  return out;
}

// An open task as the case row lists it (schemas/sqlite.sql, migration 2);
// equal records mean equal inbox rows.
std::string task_record(const OpenTaskView& e, const std::vector<std::string>& keys) {
  std::string due = e.due ? std::to_string(e.due->time_since_epoch().count()) : std::string();
  return fmt::format("{1}{0}{2}{0}{3}{0}{4}{0}{5}{0}{6}{0}{7}{0}{8}{0}{9}{0}{10}", separator, e.task,
                     e.created.time_since_epoch().count(), due, e.flow, e.flow_version, e.node_index, e.item,
                     e.assigned_user, join(e.extra_users, list_separator), join(keys, list_separator));
}

// What a record says about the inbox rows written for it.
struct TaskRecord {
  std::int64_t task = 0;
  std::int64_t created = 0;
  std::string_view keys;
  std::string_view text;  // the whole record
};

std::optional<TaskRecord> parse_record(std::string_view text) {
  const auto f = split(text, separator);
  if (f.size() != 10) return std::nullopt;
  TaskRecord r;
  r.text = text;
  r.keys = f[9];
  if (std::from_chars(f[0].data(), f[0].data() + f[0].size(), r.task).ec != std::errc()) return std::nullopt;
  if (std::from_chars(f[1].data(), f[1].data() + f[1].size(), r.created).ec != std::errc()) return std::nullopt;
  return r;
}

std::string_view kind_name(char k) {
  switch (k) {
    case 'u': return "user";
    case 'r': return "role";
    default: return "department";
  }
}

// The migrations in schemas/sqlite.sql: sections headed `-- migration N: what`.
std::vector<SqliteMigration> parse_migrations(std::string_view sql) {
  constexpr std::string_view marker = "-- migration ";
  std::vector<SqliteMigration> out;
  std::size_t pos = 0;
  while ((pos = sql.find(marker, pos)) != std::string_view::npos) {
    if (pos != 0 && sql[pos - 1] != '\n') {
      pos += marker.size();
      continue;
    }
    const auto line_end = std::min(sql.find('\n', pos), sql.size());
    const std::string_view head = sql.substr(pos + marker.size(), line_end - pos - marker.size());
    SqliteMigration m;
    const auto [p, ec] = std::from_chars(head.data(), head.data() + head.size(), m.version);
    if (ec != std::errc()) throw Error(ErrorCode::internal, fmt::format("schemas/sqlite.sql: bad migration header '{}'", head));
    const auto colon = head.find(':');
    if (colon != std::string_view::npos) {
      std::string_view d = head.substr(colon + 1);
      while (!d.empty() && d.front() == ' ') d.remove_prefix(1);
      m.description = std::string(d);
    }
    auto next = sql.find(std::string("\n") + std::string(marker), line_end);
    const std::size_t end = next == std::string_view::npos ? sql.size() : next + 1;
    m.sql = std::string(sql.substr(line_end, end - line_end));
    out.push_back(std::move(m));
    pos = end;
  }
  return out;
}

void check_migrations(const std::vector<SqliteMigration>& migrations) {
  if (migrations.empty()) throw Error(ErrorCode::invalid_input, "SQLite store: no schema migrations");
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      throw Error(ErrorCode::invalid_input,
                  fmt::format("SQLite store: migration {} is numbered {}; migrations must go 1, 2, 3, ...", i + 1,
                              migrations[i].version));
    }
  }
}

// What is stored about a case besides its snapshot.
struct Row {
  std::uint64_t version = 0;
  std::int64_t status = 0;
  std::string target;
  bool is_theme = false;
  std::int64_t target_version = 0;
  std::optional<std::int64_t> next_timer;
  std::string open_tasks;  // task records (task_record)
};

// A case changed by a deferred batch: the latest commit, the events not yet
// written, and what the transaction holds for it so far.
struct Pending {
  std::optional<Row> db;  // the row as written in the database (inside the transaction)
  std::uint64_t version = 0;
  Commit latest;          // its events are moved to `events`
  std::vector<std::vector<Event>> events;  // one list per commit, in order
  bool dirty = false;
};

class SqliteStoreImpl final : public SqliteStore {
 public:
  SqliteStoreImpl(std::string path, const SqliteOptions& options, const std::vector<SqliteMigration>& migrations)
      : path_(std::move(path)), options_(options) {
    check_migrations(migrations);
    try {
      open(migrations);
    } catch (...) {
      close();
      throw;
    }
  }

  ~SqliteStoreImpl() override {
    if (batch_depth_ > 0) rollback_quietly();
    close();
  }

  // --- Store ---------------------------------------------------------------

  void bind(std::shared_ptr<const CatalogBinding> binding) override {
    if (!binding) throw Error(ErrorCode::invalid_input, fmt::format("{}: bind: no catalog binding", path_));
    std::lock_guard lock(mu_);
    // Engines opened one after another on one catalog share its binding:
    // its definitions are recorded and its cache is good.
    if (binding == binding_ && !unrecorded_) return;
    if (batch_depth_ > 0) flush();
    const Catalog& cat = binding->catalog();
    // Refuse a catalog that lacks a version running cases still use.
    for (const auto& [is_theme, target, version] : used_definitions()) {
      const bool present = is_theme ? cat.find_theme(target, static_cast<int>(version)) != nullptr
                                    : cat.find_item(target, static_cast<int>(version)) != nullptr;
      if (present) continue;
      Stmt& s = st_.count_running;
      Reset r(s);
      s.bind(1, static_cast<std::int64_t>(is_theme)).bind(2, target).bind(3, version);
      s.step();
      const std::int64_t running = s.integer(0);
      if (running == 0) continue;
      throw Error(ErrorCode::invalid_input,
                  fmt::format("{}: case {} runs {} {} version {}, which the catalog does not contain ({} running "
                              "case{} on it); deploy new versions beside the old",
                              path_, s.integer(1), is_theme ? "theme" : "item", target, version, running,
                              running == 1 ? "" : "s"));
    }
    check_and_record(cat);
    recorded_in_batch_ = batch_depth_ > 0;
    unrecorded_ = false;
    // Snapshots an engine still open on an earlier binding commits land in
    // the cache and refer into its catalog: every binding is kept, once.
    std::erase(earlier_bindings_, binding);
    if (binding_ && binding_ != binding) earlier_bindings_.push_back(std::move(binding_));
    binding_ = std::move(binding);
    cache_.clear();
    cache_index_.clear();
  }

  CaseId allocate_case_id() override {
    std::lock_guard lock(mu_);
    if (next_id_ >= id_end_) {
      const std::int64_t block = std::max<std::uint32_t>(options_.case_id_block, 1);
      std::optional<Tx> tx;
      if (batch_depth_ == 0) tx.emplace(*this);
      Stmt& s = st_.reserve_ids;
      std::int64_t start = 0;
      {
        Reset r(s);
        s.bind(1, block);
        if (!s.step()) throw Error(ErrorCode::storage, fmt::format("{}: the case id sequence is missing", path_));
        start = s.integer(0);
      }
      if (tx) tx->commit();
      next_id_ = static_cast<CaseId>(start);
      id_end_ = next_id_ + static_cast<CaseId>(block);
      reserved_top_ = std::max(reserved_top_, id_end_);
      ids_reserved_in_batch_ = batch_depth_ > 0;
    }
    return next_id_++;
  }

  std::shared_ptr<const CaseSnapshot> load(CaseId id) override {
    std::lock_guard lock(mu_);
    return load_locked(id, false);
  }

  // The cached state when there is one, without a read transaction: in the
  // usual single-process deployment it is the latest, and otherwise the
  // commit's version check says so (and forgets it).
  std::shared_ptr<const CaseSnapshot> load_for_change(CaseId id) override {
    std::lock_guard lock(mu_);
    return load_locked(id, true);
  }

  void commit(Commit c) override {
    std::lock_guard lock(mu_);
    require_bound("commit");
    if (!c.snapshot) throw Error(ErrorCode::invalid_input, fmt::format("{}: commit of case {} without a snapshot", path_, c.case_id));
    if (batch_depth_ > 0) {
      const std::optional<Row> row = pending_.count(c.case_id) ? std::nullopt : read_row(c.case_id);
      add_pending(std::move(c), row);
      if (pending_events_ >= batch_flush_events) flush_or_abort();
      return;
    }
    const CaseId id = c.case_id;
    const std::uint64_t version = c.new_version;
    auto snapshot = c.snapshot;
    try {
      Tx tx(*this);
      const std::optional<Row> row = read_row(id);
      check_version(c, row ? row->version : 0);
      std::vector<std::vector<Event>> events;
      events.push_back(std::move(c.events));
      write_case(c, row, events);
      tx.commit();
    } catch (const Error& e) {
      if (e.code() != ErrorCode::storage) throw;
      throw Error(ErrorCode::storage, fmt::format("{} (the commit of case {} was rolled back)", e.what(), id));
    }
    remember(id, version, std::move(snapshot));
  }

  void commit_batch(std::vector<Commit> commits) override {
    std::lock_guard lock(mu_);
    require_bound("commit_batch");
    const bool own = batch_depth_ == 0;
    if (own) begin_locked();
    try {
      // Check every version first so that the batch is all or nothing.
      std::unordered_map<CaseId, std::optional<Row>> rows;
      std::unordered_map<CaseId, std::uint64_t> versions;
      for (const auto& c : commits) {
        if (!c.snapshot) throw Error(ErrorCode::invalid_input, fmt::format("{}: commit of case {} without a snapshot", path_, c.case_id));
        std::uint64_t current = 0;
        if (auto v = versions.find(c.case_id); v != versions.end()) {
          current = v->second;
        } else if (auto p = pending_.find(c.case_id); p != pending_.end()) {
          current = p->second.version;
        } else {
          auto& row = rows[c.case_id] = read_row(c.case_id);
          current = row ? row->version : 0;
        }
        check_version(c, current);
        versions[c.case_id] = c.new_version;
      }
      for (auto& c : commits) {
        auto it = rows.find(c.case_id);
        std::optional<Row> row;
        if (it != rows.end()) row = std::move(it->second), rows.erase(it);
        add_pending(std::move(c), row);
      }
      if (own) {
        end_locked();
      } else if (pending_events_ >= batch_flush_events) {
        flush_or_abort();
      }
    } catch (...) {
      if (own && batch_depth_ > 0) abort_locked();
      throw;
    }
  }

  std::vector<Event> history(CaseId id) override {
    std::lock_guard lock(mu_);
    if (batch_depth_ > 0) flush_or_abort();
    std::vector<Event> out;
    Stmt& s = st_.select_events;
    Reset r(s);
    s.bind(1, static_cast<std::int64_t>(id));
    while (s.step()) {
      Event e;
      e.case_id = id;
      e.seq = static_cast<std::uint64_t>(s.integer(0));
      e.at = instant(s.integer(1));
      e.actor = s.text(2);
      e.kind = static_cast<EventKind>(s.integer(3));
      e.task = static_cast<TaskId>(s.integer(4));
      e.node = s.text(5);
      e.from = s.text(6);
      e.to = s.text(7);
      e.payload = s.text(8);
      if (s.is_null(9)) {
        if (!out.empty()) e.prev_hash = out.back().hash;
      } else {
        copy_hash(s.blob(9), e.prev_hash, id, e.seq);
      }
      copy_hash(s.blob(10), e.hash, id, e.seq);
      out.push_back(std::move(e));
    }
    return out;
  }

  std::vector<InboxEntry> inbox(const InboxQuery& q) override {
    std::lock_guard lock(mu_);
    require_bound("inbox");
    if (batch_depth_ > 0) flush_or_abort();
    std::vector<std::pair<std::string_view, const std::string*>> keys;
    auto add = [&](std::string_view kind, const std::string& name) {
      for (const auto& k : keys) {
        if (k.first == kind && *k.second == name) return;
      }
      keys.emplace_back(kind, &name);
    };
    if (!q.user.empty()) add("user", q.user);
    for (const auto& r : q.roles) add("role", r);
    for (const auto& d : q.departments) add("department", d);
    std::vector<InboxEntry> out;
    if (keys.empty() || q.limit == 0) return out;

    std::optional<ReadTx> tx;
    if (batch_depth_ == 0) tx.emplace(*this);
    // One ordered stream per candidate key, merged oldest first; a task that
    // several keys match comes out once.
    auto& pool = q.item.empty() ? inbox_streams_ : inbox_streams_item_;
    while (pool.size() < keys.size()) {
      pool.emplace_back(db_, &path_,
                        q.item.empty()
                            ? "SELECT created, case_id, task, item, flow, flow_version, node_index, assigned_user, "
                              "extra_users, due FROM inbox WHERE kind = ?1 AND name = ?2 ORDER BY created, case_id, task"
                            : "SELECT created, case_id, task, item, flow, flow_version, node_index, assigned_user, "
                              "extra_users, due FROM inbox WHERE kind = ?1 AND name = ?2 AND item = ?3 "
                              "ORDER BY created, case_id, task");
    }
    using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t>;
    struct Stream {
      Stmt* stmt;
      bool live;
      Key head;
    };
    std::vector<Stream> streams;
    std::vector<std::unique_ptr<Reset>> resets;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      Stmt& s = pool[i];
      resets.push_back(std::make_unique<Reset>(s));
      s.bind(1, keys[i].first).bind(2, *keys[i].second);
      if (!q.item.empty()) s.bind(3, q.item);
      Stream st{&s, s.step(), {}};
      if (st.live) st.head = {s.integer(0), s.integer(1), s.integer(2)};
      streams.push_back(st);
    }
    std::size_t skipped = 0;
    while (out.size() < q.limit) {
      Stream* best = nullptr;
      for (auto& st : streams) {
        if (st.live && (best == nullptr || st.head < best->head)) best = &st;
      }
      if (best == nullptr) break;
      const Key key = best->head;
      if (skipped < q.offset) {
        ++skipped;
      } else {
        const Stmt& s = *best->stmt;
        InboxEntry e;
        e.created = instant(s.integer(0));
        e.case_id = static_cast<CaseId>(s.integer(1));
        e.task = static_cast<TaskId>(s.integer(2));
        e.item = s.text(3);
        e.flow = s.text(4);
        e.flow_version = static_cast<int>(s.integer(5));
        e.node_index = static_cast<std::uint32_t>(s.integer(6));
        e.assigned_user = s.text(7);
        for (auto u : split(s.text(8))) e.extra_users.emplace_back(u);
        e.due = instant(s.optional_integer(9));
        e.node = binding_->node(e.flow, e.flow_version, e.node_index);
        if (e.node == nullptr) {
          throw Error(ErrorCode::not_found,
                      fmt::format("{}: task {} of case {} is node {} of flow {} version {}, which the catalog does not contain",
                                  path_, e.task, e.case_id, e.node_index, e.flow, e.flow_version));
        }
        out.push_back(std::move(e));
      }
      for (auto& st : streams) {
        if (st.live && st.head == key) {
          st.live = st.stmt->step();
          if (st.live) st.head = {st.stmt->integer(0), st.stmt->integer(1), st.stmt->integer(2)};
        }
      }
    }
    resets.clear();
    if (tx) tx->commit();
    return out;
  }

  std::vector<CaseId> due_cases(Instant now, std::size_t limit) override {
    std::lock_guard lock(mu_);
    if (batch_depth_ > 0) flush_or_abort();
    std::vector<CaseId> out;
    if (limit == 0) return out;
    Stmt& s = st_.due;
    Reset r(s);
    s.bind(1, seconds(now)).bind(2, limit > static_cast<std::size_t>(INT64_MAX) ? std::int64_t{-1} : static_cast<std::int64_t>(limit));
    while (s.step()) out.push_back(static_cast<CaseId>(s.integer(0)));
    return out;
  }

  std::vector<CaseId> case_ids() override {
    std::lock_guard lock(mu_);
    if (batch_depth_ > 0) flush_or_abort();
    std::vector<CaseId> out;
    Stmt& s = st_.case_ids;
    Reset r(s);
    while (s.step()) out.push_back(static_cast<CaseId>(s.integer(0)));
    return out;
  }

  // --- SqliteStore ---------------------------------------------------------

  const std::string& path() const override { return path_; }

  std::vector<DefinitionUse> versions() override {
    std::lock_guard lock(mu_);
    if (batch_depth_ > 0) flush_or_abort();
    std::optional<ReadTx> tx;
    if (batch_depth_ == 0) tx.emplace(*this);
    std::map<std::tuple<std::string, std::string, int>, DefinitionUse> uses;
    auto use = [&](std::string kind, std::string id, int version) -> DefinitionUse& {
      auto key = std::make_tuple(kind, id, version);
      auto it = uses.find(key);
      if (it == uses.end()) {
        DefinitionUse u;
        u.kind = std::move(kind);
        u.id = std::move(id);
        u.version = version;
        it = uses.emplace(std::move(key), std::move(u)).first;
      }
      return it->second;
    };
    {
      Stmt s(db_, &path_, "SELECT kind, id, version, name, first_deployed_at FROM definitions");
      while (s.step()) {
        DefinitionUse& u = use(std::string(s.text(0)), std::string(s.text(1)), static_cast<int>(s.integer(2)));
        u.name = s.text(3);
        u.first_deployed = instant(s.integer(4));
      }
    }
    for (const auto& [is_theme, target, version] : used_definitions()) {
      DefinitionUse& u = use(is_theme ? "theme" : "item", target, static_cast<int>(version));
      Stmt& s = st_.count_by_status;
      Reset r(s);
      s.bind(1, static_cast<std::int64_t>(is_theme)).bind(2, target).bind(3, version);
      if (s.step()) {
        u.running = static_cast<std::uint64_t>(s.integer(0));
        u.finished = static_cast<std::uint64_t>(s.integer(1));
      }
    }
    {
      Stmt s(db_, &path_,
             "SELECT flow, flow_version, count(DISTINCT case_id) FROM inbox GROUP BY flow, flow_version");
      while (s.step()) {
        use("flow", std::string(s.text(0)), static_cast<int>(s.integer(1))).running = static_cast<std::uint64_t>(s.integer(2));
      }
    }
    if (tx) tx->commit();
    std::vector<DefinitionUse> out;
    out.reserve(uses.size());
    for (auto& [k, u] : uses) out.push_back(std::move(u));
    return out;
  }

  SqliteInfo info() override {
    std::lock_guard lock(mu_);
    if (batch_depth_ > 0) flush_or_abort();
    std::optional<ReadTx> tx;
    if (batch_depth_ == 0) tx.emplace(*this);
    SqliteInfo i;
    i.path = path_;
    i.schema_version = static_cast<int>(query_int("PRAGMA user_version"));
    i.immutable = immutable_;
    {
      Stmt s(db_, &path_, "PRAGMA journal_mode");
      if (s.step()) i.journal_mode = s.text(0);
    }
    i.cases = static_cast<std::uint64_t>(query_int("SELECT count(*) FROM cases"));
    i.finished_cases = static_cast<std::uint64_t>(query_int(fmt::format("SELECT count(*) FROM cases WHERE status = {}", finished_status)));
    i.events = static_cast<std::uint64_t>(query_int("SELECT count(*) FROM events"));
    i.open_tasks = static_cast<std::uint64_t>(query_int("SELECT count(*) FROM (SELECT DISTINCT case_id, task FROM inbox)"));
    if (tx) tx->commit();
    std::error_code ec;
    if (path_ != ":memory:") {
      const auto size = std::filesystem::file_size(path_, ec);
      if (!ec) i.file_bytes = size;
    }
    return i;
  }

  std::string integrity_check() override {
    std::lock_guard lock(mu_);
    if (batch_depth_ > 0) flush_or_abort();
    std::string out;
    Stmt s(db_, &path_, "PRAGMA integrity_check");
    while (s.step()) {
      if (!out.empty()) out += '\n';
      out += s.text(0);
    }
    return out;
  }

  void begin_batch() override {
    std::lock_guard lock(mu_);
    if (batch_depth_ > 0) {
      ++batch_depth_;
      return;
    }
    begin_locked();
  }

  void end_batch() override {
    std::lock_guard lock(mu_);
    if (batch_depth_ == 0) throw Error(ErrorCode::invalid_state, fmt::format("{}: end_batch without begin_batch", path_));
    if (batch_depth_ > 1) {
      --batch_depth_;
      return;
    }
    end_locked();
  }

  void abort_batch() override {
    std::lock_guard lock(mu_);
    if (batch_depth_ == 0) return;
    abort_locked();
  }

 private:
  // A transaction, rolled back unless committed. Tx: a write transaction
  // (BEGIN IMMEDIATE: takes the write lock first, so a version read inside
  // it cannot go stale). ReadTx: one consistent view for a multi-statement
  // read.
  template <bool Write>
  class Transaction {
   public:
    explicit Transaction(SqliteStoreImpl& s) : s_(s) { (Write ? s_.st_.begin_immediate : s_.st_.begin_read).run(); }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    ~Transaction() {
      if (!done_) s_.rollback_quietly();
    }
    void commit() {
      s_.st_.commit.run();
      done_ = true;
    }

   private:
    SqliteStoreImpl& s_;
    bool done_ = false;
  };
  using Tx = Transaction<true>;
  using ReadTx = Transaction<false>;

  struct Statements {
    Stmt begin_immediate, begin_read, commit, rollback;
    Stmt select_row, select_snapshot, insert_case, update_full, update_timer, update_plain;
    Stmt select_events;
    std::array<Stmt, 6> insert_events;  // [i]: 2^i events at once
    Stmt insert_inbox, delete_inbox;
    Stmt due, case_ids, reserve_ids, bump_ids;
    Stmt insert_definition, next_version, next_target, next_kind, count_running, count_by_status;
    Stmt flow_fingerprint, set_fingerprint, count_cases, count_target, meta_value, set_meta;
  };

  void open(const std::vector<SqliteMigration>& migrations) {
    // SQLite takes the busy timeout as an int of milliseconds.
    if (options_.busy_timeout.count() < 0 || options_.busy_timeout.count() > std::numeric_limits<int>::max()) {
      throw Error(ErrorCode::invalid_input,
                  fmt::format("{}: busy_timeout is {} ms, not from 0 to {} ms (what SQLite takes, about 24 days)", path_,
                              options_.busy_timeout.count(), std::numeric_limits<int>::max()));
    }
    connect(path_, 0);
    if (options_.read_only && path_ != ":memory:") read_where_nothing_may_be_created();

    // Look before touching anything: a foreign or newer database is refused
    // before a single byte of it changes.
    const int latest = migrations.back().version;
    int schema = check_identity(latest);
    if (schema == 0 && options_.read_only) {
      // Nothing in it yet: a writer would make it a new store; a reader has
      // nothing to read.
      throw Error(ErrorCode::storage,
                  fmt::format("{}: is not a onestop database (an empty file, or an SQLite database with nothing in "
                              "it); opened read-only, it is not made into one",
                              path_));
    }
    if (schema < latest && options_.read_only) {
      throw Error(ErrorCode::storage,
                  fmt::format("{}: schema version {} is older than this build's {} and the store is opened read-only; "
                              "open it once for writing to upgrade it",
                              path_, schema, latest));
    }
    if (!options_.read_only) {
      exec("PRAGMA journal_mode = WAL");
      exec(options_.synchronous == SqliteSync::full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    }
    exec("PRAGMA temp_store = MEMORY");
    exec(fmt::format("PRAGMA cache_size = -{}", std::max<std::int64_t>(options_.cache_kib, 64)));
    if (options_.mmap_bytes > 0) exec(fmt::format("PRAGMA mmap_size = {}", options_.mmap_bytes));
    if (options_.max_bytes > 0) {
      const std::int64_t page = query_int("PRAGMA page_size");
      exec(fmt::format("PRAGMA max_page_count = {}", std::max<std::int64_t>(options_.max_bytes / page, 1)));
    }
    if (schema < latest) migrate(migrations, latest);
    prepare();
  }

  void connect(const std::string& name, int extra_flags) {
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | extra_flags;
    flags |= options_.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | (options_.create ? SQLITE_OPEN_CREATE : 0));
    const int rc = sqlite3_open_v2(name.c_str(), &db_, flags,
                                   options_.coalesce_wal_writes ? sqlite_detail::coalescing_vfs() : nullptr);
    if (rc != SQLITE_OK) fail(path_, "cannot open", rc, db_);
    sqlite3_busy_timeout(db_, static_cast<int>(options_.busy_timeout.count()));
  }

  // Even a read-only connection to a WAL database needs PATH-wal and
  // PATH-shm (the log and its shared index) and creates them when they are
  // missing, as they are whenever no connection is open; SQLite reads a
  // read-only WAL database only if they exist, can be created, or the file
  // is opened as immutable (wal.html, "Read-Only Databases"). Where the
  // directory may not be written (a backup on a read-only mount, another
  // user's directory with mode 555) the first read fails. Without a log the
  // database file alone holds every committed transaction, and SQLite reads
  // it so when told it is immutable (uri.html: read-only, no locks, no log,
  // no change detection). A non-empty log may hold committed transactions
  // the file lacks, and an immutable connection would ignore them: refused.
  void read_where_nothing_may_be_created() {
    const int rc = first_read();
    if (rc == SQLITE_OK) return;
    // A lock held past the busy timeout is reported now: check_identity
    // would wait for it once more.
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
      fail(path_, "PRAGMA application_id", rc, db_);
    }
    // Anything else (not a database, ...) check_identity reports.
    if ((rc & 0xff) != SQLITE_READONLY && (rc & 0xff) != SQLITE_CANTOPEN) return;
    // SQLite keeps the log beside the file a symbolic link names.
    std::error_code ec;
    const std::filesystem::path real = std::filesystem::canonical(path_, ec);
    const std::filesystem::path file = ec ? std::filesystem::path(path_) : real;
    const std::string dir = file.has_parent_path() ? file.parent_path().string() : ".";
    if (::faccessat(AT_FDCWD, dir.c_str(), W_OK, AT_EACCESS) == 0) return;
    const std::string wal = file.string() + "-wal";
    if (std::filesystem::exists(std::filesystem::status(wal, ec))) {
      const auto bytes = std::filesystem::file_size(wal, ec);
      if (ec || bytes > 0) {
        throw Error(ErrorCode::storage,
                    fmt::format("{}: cannot be read here: {} holds {} of log that may contain committed transactions "
                                "not yet in the database file; SQLite reads a log only through {}-shm, which it can "
                                "neither create nor use because its directory {} is not writable, and the database file "
                                "alone would show an older state. Copy both files into a writable directory and read the "
                                "copy, or have someone who may write there open the store for writing once (that moves "
                                "the log into the file)",
                                path_, wal, ec ? std::string("an unknown amount") : fmt::format("{} bytes", bytes),
                                file.string(), dir));
      }
    }
    close();
    connect(sqlite_detail::file_uri(path_, "immutable=1"), SQLITE_OPEN_URI);
    immutable_ = true;
  }

  // SQLITE_OK when the file's header can be read, else the error code.
  int first_read() {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, "PRAGMA application_id", -1, &s, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? SQLITE_OK : rc;
  }

  // The schema version of a onestop database, 0 for an empty file; throws
  // Error(storage) for anything else.
  int check_identity(int latest) {
    const std::int64_t app = header_int("PRAGMA application_id");
    const std::int64_t schema = header_int("PRAGMA user_version");
    if (app == onestop_application_id) {
      if (schema > latest) {
        throw Error(ErrorCode::storage,
                    fmt::format("{}: written by a newer onestop: schema version {}, this build knows versions up to {}; "
                                "open it with a newer build (the file was not changed)",
                                path_, schema, latest));
      }
      return static_cast<int>(schema);
    }
    std::vector<std::string> tables;
    {
      Stmt s(db_, &path_, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name");
      while (s.step()) tables.emplace_back(s.text(0));
    }
    if (app == 0 && schema == 0 && tables.empty()) {
      if (query_int("SELECT count(*) FROM sqlite_schema") == 0) return 0;
    }
    std::string names;
    for (std::size_t i = 0; i < tables.size() && i < 5; ++i) names += (i ? ", " : "") + tables[i];
    if (tables.size() > 5) names += ", ...";
    throw Error(ErrorCode::storage,
                fmt::format("{}: is not a onestop database (an SQLite database with application_id {}, user_version {} "
                            "and {} table{}{}{}); refusing to touch it",
                            path_, app, schema, tables.size(), tables.size() == 1 ? "" : "s",
                            tables.empty() ? "" : ": ", names));
  }

  void migrate(const std::vector<SqliteMigration>& migrations, int latest) {
    exec("BEGIN IMMEDIATE");
    try {
      // Another process may have created or upgraded the file meanwhile.
      const int schema = check_identity(latest);
      for (const auto& m : migrations) {
        if (m.version <= schema) continue;
        char* message = nullptr;
        const int rc = sqlite3_exec(db_, m.sql.c_str(), nullptr, nullptr, &message);
        if (rc != SQLITE_OK) {
          const std::string what = message ? message : describe(rc, db_);
          sqlite3_free(message);
          throw Error(ErrorCode::storage, fmt::format("{}: migration {} ({}) to schema version {} failed: {}", path_,
                                                      m.version, m.description, m.version, what));
        }
      }
      exec(fmt::format("PRAGMA user_version = {}", latest));
      if (schema == 0) {
        exec(fmt::format("INSERT OR IGNORE INTO meta(key, value) VALUES ('created_by', 'onestop {}'), ('created_at', {})",
                         ONESTOP_VERSION_STRING,
                         seconds(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()))));
      }
      exec("COMMIT");
    } catch (...) {
      rollback_quietly();
      throw;
    }
  }

  void prepare() {
    auto p = [&](std::string_view sql) { return Stmt(db_, &path_, sql); };
    st_.begin_immediate = p("BEGIN IMMEDIATE");
    st_.begin_read = p("BEGIN");
    st_.commit = p("COMMIT");
    st_.rollback = p("ROLLBACK");
    st_.select_row = p(
        "SELECT version, status, target, is_theme, target_version, next_timer, open_tasks FROM cases WHERE id = ?1");
    st_.select_snapshot = p("SELECT version, snapshot FROM cases WHERE id = ?1");
    st_.insert_case = p(
        "INSERT INTO cases(id, target, is_theme, target_version, status, version, submitted, finished, next_timer, "
        "open_tasks, snapshot) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11, ?10)");
    // Three updates so that an action that changes neither header nor timer
    // leaves the indexes alone.
    st_.update_full = p(
        "UPDATE cases SET target = ?2, is_theme = ?3, target_version = ?4, status = ?5, version = ?6, submitted = ?7, "
        "finished = ?8, next_timer = ?9, open_tasks = ?11, snapshot = ?10 WHERE id = ?1");
    st_.update_timer = p(
        "UPDATE cases SET version = ?6, finished = ?8, next_timer = ?9, open_tasks = ?11, snapshot = ?10 WHERE id = ?1");
    st_.update_plain = p("UPDATE cases SET version = ?6, finished = ?8, open_tasks = ?11, snapshot = ?10 WHERE id = ?1");
    // Events 1, 2, 4, ... 32 at once: a commit's events go in a few
    // statement runs (24 events: 16 + 8) instead of one run each.
    for (std::size_t i = 0; i < st_.insert_events.size(); ++i) {
      std::string sql =
          "INSERT INTO events(case_id, seq, at, actor, kind, task, node, from_state, to_state, payload, prev_hash, hash) "
          "VALUES ";
      for (int r = 0; r < (1 << i); ++r) {
        sql += r == 0 ? "(" : ",(";
        for (int c = 1; c <= event_columns; ++c) sql += fmt::format("{}?{}", c == 1 ? "" : ",", r * event_columns + c);
        sql += ")";
      }
      st_.insert_events[i] = p(sql);
    }
    st_.select_events = p(
        "SELECT seq, at, actor, kind, task, node, from_state, to_state, payload, prev_hash, hash FROM events "
        "WHERE case_id = ?1 ORDER BY seq");
    st_.insert_inbox = p(
        "INSERT OR IGNORE INTO inbox(kind, name, created, case_id, task, item, flow, flow_version, node_index, "
        "assigned_user, extra_users, due) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    st_.delete_inbox = p("DELETE FROM inbox WHERE kind = ?1 AND name = ?2 AND created = ?3 AND case_id = ?4 AND task = ?5");
    st_.due = p("SELECT id FROM cases WHERE next_timer <= ?1 ORDER BY next_timer, id LIMIT ?2");
    st_.case_ids = p("SELECT id FROM cases ORDER BY id");
    st_.reserve_ids = p("UPDATE meta SET value = value + ?1 WHERE key = 'case_seq' RETURNING value - ?1");
    st_.bump_ids = p("UPDATE meta SET value = ?1 WHERE key = 'case_seq' AND value < ?1");
    st_.insert_definition = p(
        "INSERT OR IGNORE INTO definitions(kind, id, version, name, first_deployed_at) VALUES (?1, ?2, ?3, ?4, ?5)");
    // A loose index scan over cases_definition: the next distinct definition
    // cases use, one column at a time (a row-value comparison would seek on
    // the first column only and scan the rest).
    st_.next_version = p(
        "SELECT is_theme, target, target_version FROM cases WHERE is_theme = ?1 AND target = ?2 AND target_version > ?3 "
        "ORDER BY is_theme, target, target_version LIMIT 1");
    st_.next_target = p(
        "SELECT is_theme, target, target_version FROM cases WHERE is_theme = ?1 AND target > ?2 "
        "ORDER BY is_theme, target, target_version LIMIT 1");
    st_.next_kind = p(
        "SELECT is_theme, target, target_version FROM cases WHERE is_theme > ?1 "
        "ORDER BY is_theme, target, target_version LIMIT 1");
    st_.count_running = p(fmt::format(
        "SELECT count(*), min(id) FROM cases WHERE is_theme = ?1 AND target = ?2 AND target_version = ?3 AND status < {}",
        finished_status));
    st_.flow_fingerprint = p("SELECT fingerprint FROM definitions WHERE kind = 'flow' AND id = ?1 AND version = ?2");
    st_.set_fingerprint = p("UPDATE definitions SET fingerprint = ?3 WHERE kind = 'flow' AND id = ?1 AND version = ?2");
    st_.count_cases = p("SELECT count(*), min(id) FROM cases");
    st_.count_target = p("SELECT count(*), min(id) FROM cases WHERE is_theme = ?1 AND target = ?2");
    st_.meta_value = p("SELECT value FROM meta WHERE key = ?1");
    st_.set_meta = p("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)");
    st_.count_by_status = p(fmt::format(
        "SELECT (SELECT count(*) FROM cases WHERE is_theme = ?1 AND target = ?2 AND target_version = ?3 AND status < {0}),"
        " (SELECT count(*) FROM cases WHERE is_theme = ?1 AND target = ?2 AND target_version = ?3 AND status = {0})",
        finished_status));
  }

  void close() {
    st_ = Statements{};
    inbox_streams_.clear();
    inbox_streams_item_.clear();
    if (db_ != nullptr) {
      sqlite3_close_v2(db_);
      db_ = nullptr;
    }
  }

  void exec(const std::string& sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    sqlite3_free(message);
    if (rc != SQLITE_OK) fail(path_, sql, rc, db_);
  }

  // Reads the file header; a file that is no database fails here.
  std::int64_t header_int(const char* sql) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &s, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    const std::int64_t value = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    if (rc != SQLITE_ROW) {
      const std::string what = describe(rc, db_);
      sqlite3_finalize(s);
      throw Error(ErrorCode::storage, fmt::format("{}: {}", path_, what));
    }
    sqlite3_finalize(s);
    return value;
  }

  std::int64_t query_int(const std::string& sql) {
    Stmt s(db_, &path_, sql);
    return s.step() ? s.integer(0) : 0;
  }

  void rollback_quietly() noexcept {
    if (db_ != nullptr && sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  void require_bound(std::string_view what) const {
    if (!binding_) {
      throw Error(ErrorCode::invalid_state,
                  fmt::format("{}: {} before bind(): open an engine on the store first (it binds its catalog)", path_, what));
    }
  }

  [[noreturn]] static void conflict(const Commit& c, std::uint64_t current) {
    throw Error(ErrorCode::conflict,
                fmt::format("case {} is at version {}, not {}: another action was committed first", c.case_id, current,
                            c.expected_version));
  }
  // A conflict also means the cached state of the case (load_for_change) is stale.
  void check_version(const Commit& c, std::uint64_t current) {
    if (current != c.expected_version) {
      forget(c.case_id);
      conflict(c, current);
    }
  }

  void copy_hash(std::string_view bytes, Hash& out, CaseId id, std::uint64_t seq) const {
    if (bytes.size() != out.size()) {
      throw Error(ErrorCode::storage,
                  fmt::format("{}: event {} of case {} has a {}-byte hash, not {}: the database is corrupt", path_, seq, id,
                              bytes.size(), out.size()));
    }
    std::copy(bytes.begin(), bytes.end(), out.begin());
  }

  std::optional<Row> read_row(CaseId id) {
    Stmt& s = st_.select_row;
    Reset r(s);
    s.bind(1, static_cast<std::int64_t>(id));
    if (!s.step()) return std::nullopt;
    Row row;
    row.version = static_cast<std::uint64_t>(s.integer(0));
    row.status = s.integer(1);
    row.target = s.text(2);
    row.is_theme = s.integer(3) != 0;
    row.target_version = s.integer(4);
    row.next_timer = s.optional_integer(5);
    row.open_tasks = s.text(6);
    return row;
  }

  // Refuses a catalog whose flow versions or warning rules changed in place
  // under the store's cases, and records those of `cat`: checked and
  // recorded in one write transaction (a read one when read-only, and the
  // batch's inside a batch), so two engines binding at once see each
  // other's record.
  void check_and_record(const Catalog& cat) {
    std::optional<Tx> tx;
    std::optional<ReadTx> read;
    if (batch_depth_ == 0) {
      if (options_.read_only) {
        read.emplace(*this);
      } else {
        tx.emplace(*this);
      }
    }
    // Refuse a flow version changed in place (core::structure_fingerprint)
    // while the store holds cases that may have run it: their states name
    // its nodes by position, and their histories replay (verify, import)
    // on it. Likewise the warning rules, which states name by position.
    std::vector<std::pair<const Flow*, std::string>> fingerprints;  // to record
    for (const auto& f : cat.flows) {
      std::string now_is = core::structure_fingerprint(f);
      std::optional<std::string> recorded;
      {
        Stmt& s = st_.flow_fingerprint;
        Reset r(s);
        s.bind(1, f.id).bind(2, std::int64_t{f.version});
        if (s.step() && !s.is_null(0)) recorded = std::string(s.text(0));
      }
      if (recorded == now_is) continue;
      if (recorded) {
        const auto [cases, first] = cases_reaching(cat, f.id, f.version);
        if (cases > 0) {
          throw Error(ErrorCode::invalid_input,
                      fmt::format("{}: flow '{}' version {}{} is not the one this store recorded: it changed in place, "
                                  "and the store's cases that may have run it refer to its nodes by position in their "
                                  "states and replay their histories on it ({} case{}, case {} first); deploy the change "
                                  "as a new version beside the old",
                                  path_, f.id, f.version,
                                  f.where.file.empty() ? std::string() : fmt::format(" ({}:{})", f.where.file, f.where.line),
                                  cases, cases == 1 ? "" : "s", first));
        }
      }
      fingerprints.emplace_back(&f, std::move(now_is));
    }
    const std::string rules = core::rules_fingerprint(cat.rules);
    std::optional<std::string> recorded_rules;
    {
      Stmt& s = st_.meta_value;
      Reset r(s);
      s.bind(1, "warning_rules");
      if (s.step() && !s.is_null(0)) recorded_rules = std::string(s.text(0));
    }
    if (recorded_rules && *recorded_rules != rules) {
      Stmt& u = st_.count_cases;
      Reset r(u);
      u.step();
      if (const std::int64_t cases = u.integer(0); cases > 0) {
        throw Error(ErrorCode::invalid_input,
                    fmt::format("{}: the catalog's warning rules are not the ones this store recorded (changed, added, "
                                "removed or reordered), and the store's cases name the warnings they raised by the "
                                "rules' positions ({} case{}, case {} first); keep the rules as they were, adding new "
                                "ones after them",
                                path_, cases, cases == 1 ? "" : "s", u.integer(1)));
      }
    }
    if (!options_.read_only) {
      const std::int64_t now =
          seconds(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
      auto record = [&](std::string_view kind, const std::string& id, int version, const std::string& name) {
        st_.insert_definition.bind(1, kind).bind(2, id).bind(3, std::int64_t{version}).bind(4, name).bind(5, now);
        st_.insert_definition.run();
      };
      for (const auto& i : cat.items) record("item", i.code, i.version, i.name);
      for (const auto& f : cat.flows) record("flow", f.id, f.version, f.name);
      for (const auto& t : cat.themes) record("theme", t.id, t.version, t.name);
      for (const auto& [f, fingerprint] : fingerprints) {
        st_.set_fingerprint.bind(1, f->id).bind(2, std::int64_t{f->version}).bind(3, fingerprint);
        st_.set_fingerprint.run();
      }
      if (recorded_rules != rules) {
        st_.set_meta.bind(1, "warning_rules").bind(2, rules);
        st_.set_meta.run();
      }
    }
    if (tx) tx->commit();
  }

  // The store's cases whose item or theme may run flow `flow` version
  // `version` by the catalog: directly, or through subflows, with any
  // version of an item (a case keeps the one it started on); their count
  // and the first of them.
  std::pair<std::int64_t, std::int64_t> cases_reaching(const Catalog& cat, const std::string& flow, int version) {
    // An item runs the flow unless it is pinned to another version of it.
    auto runs = [&](const Item& i, const std::set<std::string>& flows) {
      return flows.count(i.flow) > 0 && !(i.flow == flow && i.flow_version && *i.flow_version != version);
    };
    std::set<std::string> flows{flow};  // the flow and those that run it as a subflow
    for (bool grew = true; grew;) {
      grew = false;
      for (const auto& f : cat.flows) {
        if (flows.count(f.id)) continue;
        const bool calls = std::any_of(f.nodes.begin(), f.nodes.end(), [&](const Node& n) {
          return (!n.flow.empty() && flows.count(n.flow)) ||
                 (!n.item.empty() && std::any_of(cat.items.begin(), cat.items.end(),
                                                 [&](const Item& i) { return i.code == n.item && runs(i, flows); }));
        });
        if (calls) {
          flows.insert(f.id);
          grew = true;
        }
      }
    }
    std::set<std::pair<bool, std::string>> targets;
    for (const auto& i : cat.items) {
      if (runs(i, flows)) targets.emplace(false, i.code);
    }
    for (const auto& t : cat.themes) {
      if (flows.count(t.flow)) targets.emplace(true, t.id);
    }
    std::int64_t count = 0, first = 0;
    for (const auto& [is_theme, target] : targets) {
      Stmt& s = st_.count_target;
      Reset r(s);
      s.bind(1, std::int64_t{is_theme}).bind(2, target);
      s.step();
      if (s.integer(0) == 0) continue;
      count += s.integer(0);
      first = first == 0 ? s.integer(1) : std::min(first, s.integer(1));
    }
    return {count, first};
  }

  // The distinct (is_theme, target, target_version) of all cases, by a loose
  // index scan over cases_definition (a few seeks, whatever the case count).
  std::vector<std::tuple<bool, std::string, std::int64_t>> used_definitions() {
    std::vector<std::tuple<bool, std::string, std::int64_t>> out;
    std::int64_t is_theme = -1;
    std::string target;
    std::int64_t version = 0;
    auto next = [&](Stmt& s) {
      Reset r(s);
      const int n = sqlite3_bind_parameter_count(s.get());
      s.bind(1, is_theme);
      if (n >= 2) s.bind(2, target);
      if (n >= 3) s.bind(3, version);
      if (!s.step()) return false;
      is_theme = s.integer(0);
      target = s.text(1);
      version = s.integer(2);
      return true;
    };
    while (next(st_.next_version) || next(st_.next_target) || next(st_.next_kind)) {
      out.emplace_back(is_theme != 0, target, version);
    }
    return out;
  }

  // Writes one case's latest state, its new events and its open tasks.
  // `row` is what the database holds for it (nullopt: a new case). Returns
  // the open-task records written.
  std::string write_case(const Commit& c, const std::optional<Row>& row, const std::vector<std::vector<Event>>& events) {
    const std::string bytes = binding_->encode(*c.snapshot);
    const std::string open_tasks = write_inbox(c, row ? row->open_tasks : std::string_view());
    const std::int64_t status = static_cast<std::int64_t>(c.header.status);
    const std::optional<std::int64_t> timer = seconds(c.next_timer);
    Stmt* s = &st_.insert_case;
    if (row) {
      const bool header_same = row->status == status && row->target == c.header.target &&
                               row->is_theme == c.header.is_theme && row->target_version == c.header.target_version;
      s = !header_same ? &st_.update_full : row->next_timer != timer ? &st_.update_timer : &st_.update_plain;
    }
    {
      Reset r(*s);
      s->bind(1, static_cast<std::int64_t>(c.case_id));
      if (s != &st_.update_timer && s != &st_.update_plain) {
        s->bind(2, c.header.target)
            .bind(3, std::int64_t{c.header.is_theme})
            .bind(4, std::int64_t{c.header.target_version})
            .bind(5, status)
            .bind(7, seconds(c.header.submitted));
      }
      s->bind(6, static_cast<std::int64_t>(c.new_version)).bind(8, seconds(c.header.finished));
      if (s != &st_.update_plain) s->bind(9, timer);
      s->bind_blob(10, bytes.data(), bytes.size());
      s->bind(11, open_tasks);
      s->step();
    }
    if (!row) {
      // An imported case keeps its id: never hand it out again.
      if (c.case_id >= reserved_top_) {
        st_.bump_ids.bind(1, static_cast<std::int64_t>(c.case_id) + 1);
        st_.bump_ids.run();
      }
      if (next_id_ <= c.case_id && c.case_id < id_end_) next_id_ = c.case_id + 1;
    }
    write_events(events);
    return open_tasks;
  }

  static constexpr int event_columns = 12;

  // Events are written in runs of 32, 16, ... 1 (insert_events).
  void write_events(const std::vector<std::vector<Event>>& lists) {
    static const Hash zero{};
    std::vector<const Event*> all;
    for (const auto& events : lists) {
      for (const auto& e : events) all.push_back(&e);
    }
    const Hash* before = nullptr;  // the hash of the event before, when written in this call
    auto bind = [&](Stmt& s, int base, const Event& e) {
      s.bind(base + 1, static_cast<std::int64_t>(e.case_id))
          .bind(base + 2, static_cast<std::int64_t>(e.seq))
          .bind(base + 3, seconds(e.at))
          .bind(base + 4, e.actor)
          .bind(base + 5, static_cast<std::int64_t>(e.kind))
          .bind(base + 6, std::int64_t{e.task})
          .bind(base + 7, e.node)
          .bind(base + 8, e.from)
          .bind(base + 9, e.to)
          .bind(base + 10, e.payload);
      const bool derived = before != nullptr ? e.prev_hash == *before : (e.seq == 1 && e.prev_hash == zero);
      if (derived) {
        s.bind_null(base + 11);
      } else {
        s.bind_blob(base + 11, e.prev_hash.data(), e.prev_hash.size());
      }
      s.bind_blob(base + 12, e.hash.data(), e.hash.size());
      before = &e.hash;
    };
    std::size_t k = 0;
    for (std::size_t i = st_.insert_events.size(); i-- > 0;) {
      const std::size_t rows = std::size_t{1} << i;
      while (all.size() - k >= rows) {
        Stmt& s = st_.insert_events[i];
        Reset r(s);
        for (std::size_t j = 0; j < rows; ++j) bind(s, static_cast<int>(j) * event_columns, *all[k + j]);
        s.step();
        k += rows;
      }
    }
  }

  // Brings the inbox rows of a case from its stored task records (`old`) to
  // its open tasks now; rows of unchanged tasks stay as they are. Returns
  // the new records.
  std::string write_inbox(const Commit& c, std::string_view old) {
    const auto id = static_cast<std::int64_t>(c.case_id);
    std::vector<TaskRecord> before;
    for (auto text : split(old, record_separator)) {
      auto r = parse_record(text);
      if (!r) {
        throw Error(ErrorCode::storage,
                    fmt::format("{}: case {} lists an open task the store cannot read: the database is corrupt", path_, id));
      }
      before.push_back(*r);
    }
    std::vector<bool> kept(before.size(), false);
    std::string records;
    std::vector<std::pair<const OpenTaskView*, std::vector<std::string>>> added;
    for (const auto& e : c.open_tasks) {
      std::vector<std::string> keys = candidates_of(e);
      std::string record = task_record(e, keys);
      auto it = std::find_if(before.begin(), before.end(),
                             [&](const TaskRecord& r) { return r.task == static_cast<std::int64_t>(e.task); });
      if (it != before.end() && it->text == record) {
        kept[static_cast<std::size_t>(it - before.begin())] = true;
      } else {
        added.emplace_back(&e, std::move(keys));
      }
      if (!records.empty()) records += record_separator;
      records += record;
    }
    for (std::size_t i = 0; i < before.size(); ++i) {
      if (kept[i]) continue;
      for (auto key : split(before[i].keys, list_separator)) {
        if (key.empty()) continue;
        st_.delete_inbox.bind(1, kind_name(key[0])).bind(2, key.substr(1)).bind(3, before[i].created).bind(4, id)
            .bind(5, before[i].task);
        st_.delete_inbox.run();
      }
    }
    for (const auto& [e, keys] : added) {
      const std::string extra = join(e->extra_users);
      for (const auto& key : keys) {
        Stmt& s = st_.insert_inbox;
        Reset r(s);
        s.bind(1, kind_name(key[0]))
            .bind(2, std::string_view(key).substr(1))
            .bind(3, seconds(e->created))
            .bind(4, id)
            .bind(5, std::int64_t{e->task})
            .bind(6, e->item)
            .bind(7, e->flow)
            .bind(8, std::int64_t{e->flow_version})
            .bind(9, std::int64_t{e->node_index})
            .bind(10, e->assigned_user)
            .bind(11, extra)
            .bind(12, seconds(e->due));
        s.step();
      }
    }
    return records;
  }

  // --- deferred batches (mu_ held) ------------------------------------------

  void begin_locked() {
    st_.begin_immediate.run();
    batch_depth_ = 1;
    reserved_top_before_batch_ = reserved_top_;
    ids_reserved_in_batch_ = false;
  }

  // Writes what is pending, commits, and moves the states into the cache.
  void end_locked() {
    try {
      flush();
      st_.commit.run();
    } catch (const Error& e) {
      abort_locked();
      if (e.code() != ErrorCode::storage) throw;
      throw Error(ErrorCode::storage, fmt::format("{} (the batch was rolled back: none of its actions were stored)", e.what()));
    } catch (...) {
      abort_locked();
      throw;
    }
    batch_depth_ = 0;
    recorded_in_batch_ = false;
    for (auto& [id, p] : pending_) remember(id, p.version, std::move(p.latest.snapshot));
    pending_.clear();
    pending_events_ = 0;
  }

  void abort_locked() {
    rollback_quietly();
    batch_depth_ = 0;
    pending_.clear();
    pending_events_ = 0;
    if (recorded_in_batch_ && binding_) {
      // The binding's record was rolled back with the batch: made again,
      // else at the next bind (the engine open now goes on as bound).
      recorded_in_batch_ = false;
      try {
        check_and_record(binding_->catalog());
      } catch (...) {
        unrecorded_ = true;
      }
    }
    if (ids_reserved_in_batch_) {
      // The reservation was rolled back with the batch: other processes may
      // get those ids now, so this one must not.
      next_id_ = id_end_ = 0;
      reserved_top_ = reserved_top_before_batch_;
      ids_reserved_in_batch_ = false;
    }
  }

  void add_pending(Commit c, std::optional<Row> row) {
    auto it = pending_.find(c.case_id);
    const std::uint64_t current = it != pending_.end() ? it->second.version : row ? row->version : 0;
    check_version(c, current);
    if (it == pending_.end()) {
      it = pending_.emplace(c.case_id, Pending{}).first;
      it->second.db = std::move(row);
    }
    Pending& p = it->second;
    p.version = c.new_version;
    pending_events_ += c.events.size();
    p.events.push_back(std::move(c.events));
    c.events.clear();
    p.latest = std::move(c);
    p.dirty = true;
  }

  // Writes the pending cases into the batch's transaction (it stays open).
  void flush() {
    std::vector<std::pair<CaseId, Pending*>> order;
    order.reserve(pending_.size());
    for (auto& [id, p] : pending_) {
      if (p.dirty) order.emplace_back(id, &p);
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [id, p] : order) {
      std::string open_tasks = write_case(p->latest, p->db, p->events);
      Row written;
      written.version = p->version;
      written.status = static_cast<std::int64_t>(p->latest.header.status);
      written.target = p->latest.header.target;
      written.is_theme = p->latest.header.is_theme;
      written.target_version = p->latest.header.target_version;
      written.next_timer = seconds(p->latest.next_timer);
      written.open_tasks = std::move(open_tasks);
      p->db = std::move(written);
      p->events.clear();
      p->dirty = false;
    }
    pending_events_ = 0;
  }

  void flush_or_abort() {
    try {
      flush();
    } catch (const Error& e) {
      abort_locked();
      if (e.code() != ErrorCode::storage) throw;
      throw Error(ErrorCode::storage, fmt::format("{} (the batch was rolled back: none of its actions were stored)", e.what()));
    } catch (...) {
      abort_locked();
      throw;
    }
  }

  // --- decoded snapshots, least recently used first out (mu_ held) ---------

  struct Cached {
    CaseId id;
    std::uint64_t version;
    std::shared_ptr<const CaseSnapshot> snapshot;
  };

  // The batch's latest state of a case, else the cached one (any version
  // when `unchecked`), else the stored one.
  std::shared_ptr<const CaseSnapshot> load_locked(CaseId id, bool unchecked) {
    require_bound("load");
    if (batch_depth_ > 0) {
      if (auto it = pending_.find(id); it != pending_.end()) return it->second.latest.snapshot;
    }
    if (unchecked) {
      if (auto cached = cached_snapshot(id, std::nullopt)) return cached;
    }
    Stmt& s = st_.select_snapshot;
    Reset r(s);
    s.bind(1, static_cast<std::int64_t>(id));
    if (!s.step()) return nullptr;
    const auto version = static_cast<std::uint64_t>(s.integer(0));
    if (auto cached = cached_snapshot(id, version)) return cached;
    std::shared_ptr<const CaseSnapshot> snapshot;
    try {
      snapshot = binding_->decode(s.blob(1));
    } catch (const Error& e) {
      // The codec knows neither the file nor the case: a damaged snapshot,
      // or one on a flow version the catalog lacks, says which.
      throw Error(e.code(), fmt::format("{}: case {}: {}", path_, id, e.what()));
    }
    remember(id, version, snapshot);
    return snapshot;
  }

  // The cached state of a case, if it is at `version` (any, when nullopt).
  std::shared_ptr<const CaseSnapshot> cached_snapshot(CaseId id, std::optional<std::uint64_t> version) {
    auto it = cache_index_.find(id);
    if (it == cache_index_.end()) return nullptr;
    if (version && it->second->version != *version) return nullptr;
    cache_.splice(cache_.begin(), cache_, it->second);
    return it->second->snapshot;
  }

  void forget(CaseId id) {
    if (auto it = cache_index_.find(id); it != cache_index_.end()) {
      cache_.erase(it->second);
      cache_index_.erase(it);
    }
  }

  void remember(CaseId id, std::uint64_t version, std::shared_ptr<const CaseSnapshot> snapshot) {
    if (options_.snapshot_cache == 0 || !snapshot) return;
    if (auto it = cache_index_.find(id); it != cache_index_.end()) {
      it->second->version = version;
      it->second->snapshot = std::move(snapshot);
      cache_.splice(cache_.begin(), cache_, it->second);
      return;
    }
    cache_.push_front(Cached{id, version, std::move(snapshot)});
    cache_index_[id] = cache_.begin();
    if (cache_.size() > options_.snapshot_cache) {
      cache_index_.erase(cache_.back().id);
      cache_.pop_back();
    }
  }

  std::mutex mu_;
  std::string path_;
  SqliteOptions options_;
  sqlite3* db_ = nullptr;
  // Read-only, as an immutable file without its log (read_where_nothing_may_be_created).
  bool immutable_ = false;
  Statements st_;
  std::vector<Stmt> inbox_streams_;
  std::vector<Stmt> inbox_streams_item_;
  std::shared_ptr<const CatalogBinding> binding_;
  std::vector<std::shared_ptr<const CatalogBinding>> earlier_bindings_;  // see bind()

  CaseId next_id_ = 0;
  CaseId id_end_ = 0;
  CaseId reserved_top_ = 0;  // ids below this were reserved by this store object
  CaseId reserved_top_before_batch_ = 0;
  bool ids_reserved_in_batch_ = false;
  bool recorded_in_batch_ = false;  // bind recorded the catalog inside the open batch
  bool unrecorded_ = false;         // an aborted batch took the record, and making it again failed

  std::list<Cached> cache_;
  std::unordered_map<CaseId, std::list<Cached>::iterator> cache_index_;

  int batch_depth_ = 0;
  std::unordered_map<CaseId, Pending> pending_;
  std::size_t pending_events_ = 0;
};

}  // namespace

const std::vector<SqliteMigration>& sqlite_migrations() {
  static const std::vector<SqliteMigration> migrations = parse_migrations(sqlite_detail::schema_sql);
  return migrations;
}

std::shared_ptr<SqliteStore> open_sqlite_store(const std::string& path, const SqliteOptions& options) {
  return open_sqlite_store(path, options, sqlite_migrations());
}

std::shared_ptr<SqliteStore> open_sqlite_store(const std::string& path, const SqliteOptions& options,
                                               const std::vector<SqliteMigration>& migrations) {
  return std::make_shared<SqliteStoreImpl>(path, options, migrations);
}

}  // namespace onestop
