// The in-memory store: everything in maps under one mutex. Commits are
// atomic because they are applied under the lock after the version check.
// Histories are kept encoded (varints, strings with their length, fields
// that follow from the previous event left out, hashes the engine made from
// the events' content computed again when read), about a quarter of the
// memory of the events themselves, in one append-only log shared by all
// cases.

#include "core/state.hpp"
#include "core/timer_index.hpp"

#include <onestop/store.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace onestop {

namespace {

// Encoding writes through a pointer into room reserved beforehand
// (HistoryLog::open, sized by encoded_bound): no capacity check per byte.
constexpr std::size_t kMaxVarint = 10;

void put_varint(char*& out, std::uint64_t v) {
  while (v >= 0x80) {
    *out++ = static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<char>(v);
}

void put_bytes(char*& out, const void* data, std::size_t n) {
  if (n > 0) std::memcpy(out, data, n);
  out += n;
}

void put_text(char*& out, const std::string& s) {
  put_varint(out, s.size());
  put_bytes(out, s.data(), s.size());
}

std::uint64_t get_varint(std::string_view in, std::size_t& pos) {
  std::uint64_t v = 0;
  for (int shift = 0; pos < in.size(); shift += 7) {
    const auto b = static_cast<unsigned char>(in[pos++]);
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) break;
  }
  return v;
}

std::string get_text(std::string_view in, std::size_t& pos) {
  const std::size_t n = get_varint(in, pos);
  std::string out(in.substr(pos, n));
  pos += n;
  return out;
}

// What a case's encoded history implies for its next event: the previous
// event's seq, instant, actor (a pointer into the history log) and hash.
struct Chain {
  std::uint64_t seq = 0;
  Instant at{};
  const char* actor = nullptr;
  std::uint32_t actor_size = 0;
  std::uint32_t events = 0;
  Hash last_hash{};
};

enum : std::uint8_t {
  other_case = 1,     // case_id written (else the store's key)
  seq_jump = 2,       // seq written (else one more than the previous)
  chain_broken = 4,   // prev_hash written (else the previous event's hash)
  new_actor = 8,      // actor written (else the previous event's)
  later = 16,         // at written as seconds after the previous event's (else the same instant)
  earlier = 32,       // at written as seconds before it
  hash_kept = 64,     // hash written (else hash_event of the event: a Commit::chained or ::unhashed commit's)
};

// The most bytes encode_event can write for `e`.
std::size_t encoded_bound(const Event& e) {
  return 2 + 5 * kMaxVarint + e.actor.size() + e.prev_hash.size() + 4 * kMaxVarint + e.node.size() + e.from.size() +
         e.to.size() + e.payload.size() + e.hash.size();
}

// Writes event `k` of `events` at `out` (room for encoded_bound) and moves
// `out` past it. The event before it is events[k-1], or, for the first,
// the case's last stored event as `chain` describes it. `chained`: the
// events' hashes are those of their content (Commit::chained); `unhashed`:
// they have none, and each follows the one before (Commit::unhashed). Sets
// `actor_at` to where an actor was written.
void encode_event(char*& out, const Chain& chain, CaseId id, const std::vector<Event>& events, std::size_t k,
                  bool chained, bool unhashed, const char*& actor_at) {
  const Event& e = events[k];
  Hash prev{};
  std::string_view prev_actor;
  std::uint64_t prev_seq = chain.seq;
  Instant prev_at = chain.at;
  const bool first = k == 0 && chain.events == 0;
  if (k > 0) {
    prev = events[k - 1].hash;
    prev_actor = events[k - 1].actor;
    prev_seq = events[k - 1].seq;
    prev_at = events[k - 1].at;
  } else if (!first) {
    prev = chain.last_hash;
    prev_actor = std::string_view(chain.actor, chain.actor_size);
  }
  // The step in unsigned arithmetic: two instants far apart (a synthetic
  // history's) differ by more than an int64 holds.
  const std::int64_t at = e.at.time_since_epoch().count();
  const std::int64_t before = prev_at.time_since_epoch().count();
  const std::uint64_t step = at >= before ? static_cast<std::uint64_t>(at) - static_cast<std::uint64_t>(before)
                                          : static_cast<std::uint64_t>(before) - static_cast<std::uint64_t>(at);
  std::uint8_t flags = 0;
  if (e.case_id != id) flags |= other_case;
  if (e.seq != prev_seq + 1) flags |= seq_jump;
  if (!unhashed && e.prev_hash != prev) flags |= chain_broken;
  if (first || e.actor != prev_actor) flags |= new_actor;
  if (at > before) flags |= later;
  if (at < before) flags |= earlier;
  if (!chained && !unhashed) flags |= hash_kept;
  *out++ = static_cast<char>(flags);
  *out++ = static_cast<char>(e.kind);
  if (flags & other_case) put_varint(out, e.case_id);
  if (flags & seq_jump) put_varint(out, e.seq);
  if (flags & (later | earlier)) put_varint(out, step);
  if (flags & new_actor) {
    put_varint(out, e.actor.size());
    actor_at = out;
    put_bytes(out, e.actor.data(), e.actor.size());
  }
  if (flags & chain_broken) put_bytes(out, e.prev_hash.data(), e.prev_hash.size());
  put_varint(out, e.task);
  put_text(out, e.node);
  put_text(out, e.from);
  put_text(out, e.to);
  put_text(out, e.payload);
  if (flags & hash_kept) put_bytes(out, e.hash.data(), e.hash.size());
}

// Every case's history in one append-only log of 2 MiB blocks that never
// move: a commit's encoded events are one record, [previous record of the
// case][size][bytes], so appending allocates nothing per action and leaves
// no slack per case (a byte string per case cost a reallocation and copy
// every few actions, and fragmented the heap).
class HistoryLog {
 public:
  // Room for the bytes of a record of at most `most` bytes: where to write
  // them. Nothing is appended until close(); a later open() reuses the room.
  char* open(std::size_t most) {
    if (most > std::numeric_limits<std::uint32_t>::max()) {
      throw Error(ErrorCode::invalid_input, "memory store: one action's history is larger than 4 GiB");
    }
    const std::size_t need = header + most;
    if (blocks_.empty() || used_ + need > size_) {
      const std::size_t size = std::max<std::size_t>(block, need);
      blocks_.push_back(size == block ? next_block() : Block(size));  // may throw: nothing has changed yet
      size_ = size;
      used_ = 0;
    } else if (used_ > size_ / 2 && !spare_.valid()) {
      prepare_next_block();
    }
    return blocks_.back().data + used_ + header;
  }

  // Appends the record open() made room for, its bytes written up to `end`,
  // after `prev` (nullptr for a case's first); returns where its bytes start.
  const char* close(const char* prev, const char* end) {
    char* at = blocks_.back().data + used_;
    const auto n = static_cast<std::uint32_t>(end - (at + header));
    std::memcpy(at, &prev, sizeof prev);
    std::memcpy(at + sizeof prev, &n, sizeof n);
    used_ += header + n;
    return at + header;
  }

  // The bytes of the records ending with `last`, oldest first.
  static std::string gather(const char* last) {
    std::vector<std::string_view> records;
    std::size_t total = 0;
    for (const char* r = last; r != nullptr;) {
      const char* prev = nullptr;
      std::uint32_t n = 0;
      std::memcpy(&prev, r - header, sizeof prev);
      std::memcpy(&n, r - header + sizeof prev, sizeof n);
      records.emplace_back(r, n);
      total += n;
      r = prev;
    }
    std::string out;
    out.reserve(total);
    for (auto it = records.rbegin(); it != records.rend(); ++it) out.append(*it);
    return out;
  }

 private:
  static constexpr std::size_t header = sizeof(const char*) + sizeof(std::uint32_t);
  static constexpr std::size_t block = std::size_t{2} << 20;
  // A block of its own pages, on Linux asked for as one transparent huge
  // page: a growing store then takes one page fault per 2 MiB, not 512.
  struct Block {
    char* data = nullptr;
    std::size_t size = 0;
    explicit Block(std::size_t n) : size(n) {
#ifdef __linux__
      void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      ::madvise(p, n, MADV_HUGEPAGE);
      data = static_cast<char*>(p);
#else
      data = new char[n];
#endif
    }
    Block(Block&& o) noexcept : data(std::exchange(o.data, nullptr)), size(o.size) {}
    Block(const Block&) = delete;
    Block& operator=(const Block&) = delete;
    Block& operator=(Block&&) = delete;
    ~Block() {
      if (data == nullptr) return;
#ifdef __linux__
      ::munmap(data, size);
#else
      delete[] data;
#endif
    }
  };
  // The next block: the one prepared in the background, else a new one.
  Block next_block() {
    if (spare_.valid()) {
      try {
        return spare_.get();
      } catch (const std::bad_alloc&) {  // the helper could not map it: try once more here
      }
    }
    return Block(block);
  }

  // Once the current block is half full, the next one is mapped and its
  // pages touched on another thread: a growing store's page faults (on a
  // virtual machine the kernel zeroing a fresh 2 MiB page costs some
  // milliseconds) then overlap its commits instead of stalling one. A
  // store that never fills half a block starts no thread.
  void prepare_next_block() {
    try {
      spare_ = std::async(std::launch::async, [] {
        Block b(block);
        for (std::size_t i = 0; i < b.size; i += 4096) b.data[i] = 0;
        return b;
      });
    } catch (...) {  // no thread to be had (system_error, bad_alloc): the next block is mapped when needed
    }
  }

  std::vector<Block> blocks_;
  std::size_t used_ = 0;
  std::size_t size_ = 0;
  std::future<Block> spare_;  // declared last: destroyed (waited for) first
};

std::vector<Event> decode_history(std::string_view in, CaseId id, std::size_t count) {
  std::vector<Event> out;
  out.reserve(count);
  std::uint64_t seq = 0;
  Instant at{};
  Hash hash{};
  std::string actor;
  std::size_t pos = 0;
  while (pos < in.size()) {
    Event& e = out.emplace_back();
    const auto flags = static_cast<std::uint8_t>(in[pos++]);
    e.kind = static_cast<EventKind>(in[pos++]);
    e.case_id = flags & other_case ? get_varint(in, pos) : id;
    e.seq = flags & seq_jump ? get_varint(in, pos) : seq + 1;
    e.at = at;
    if (flags & (later | earlier)) {  // modulo 2^64, as encode_event took the step
      const std::uint64_t step = get_varint(in, pos);
      const auto base = static_cast<std::uint64_t>(at.time_since_epoch().count());
      e.at = Instant(std::chrono::seconds(static_cast<std::int64_t>(flags & later ? base + step : base - step)));
    }
    if (flags & new_actor) actor = get_text(in, pos);
    e.actor = actor;
    e.prev_hash = hash;
    if (flags & chain_broken) {
      std::memcpy(e.prev_hash.data(), in.data() + pos, e.prev_hash.size());
      pos += e.prev_hash.size();
    }
    e.task = static_cast<TaskId>(get_varint(in, pos));
    e.node = get_text(in, pos);
    e.from = get_text(in, pos);
    e.to = get_text(in, pos);
    e.payload = get_text(in, pos);
    if (flags & hash_kept) {
      std::memcpy(e.hash.data(), in.data() + pos, e.hash.size());
      pos += e.hash.size();
    } else {
      e.hash = hash_event(e, e.prev_hash);
    }
    seq = e.seq;
    at = e.at;
    hash = e.hash;
  }
  return out;
}

// An open task as the memory store indexes it: item and flow codes interned
// (one copy per store), what is rare (a transfer, added signers) apart. About
// 64 bytes instead of an InboxEntry's 170.
struct OpenTask {
  struct Reassigned {
    std::string user;
    std::vector<std::string> extra_users;
  };
  TaskId task = 0;
  std::uint32_t node_index = 0;
  const Node* node = nullptr;
  const std::string* item = nullptr;
  const std::string* flow = nullptr;
  Instant created{};
  Instant due{};
  int flow_version = 1;
  bool has_due = false;
  std::unique_ptr<Reassigned> reassigned;

  const std::string& assigned_user() const {
    static const std::string none;
    return reassigned ? reassigned->user : none;
  }
};

bool matches(const OpenTask& e, const InboxQuery& q) {
  if (!q.item.empty() && *e.item != q.item) return false;
  if (!e.assigned_user().empty()) return !q.user.empty() && e.assigned_user() == q.user;
  const Assignees& a = e.node->assignees;
  auto has = [](const std::vector<std::string>& list, const std::string& x) {
    return std::find(list.begin(), list.end(), x) != list.end();
  };
  if (!q.user.empty() && (has(a.users, q.user) || has(e.node->signers, q.user) ||
                          (e.reassigned && has(e.reassigned->extra_users, q.user)))) {
    return true;
  }
  for (const auto& r : q.roles) {
    if (has(a.roles, r)) return true;
  }
  for (const auto& d : q.departments) {
    if (has(a.departments, d)) return true;
  }
  return false;
}

class MemoryStore final : public Store {
 public:
  // Snapshots refer into the catalog of the engine that made them (their
  // flows, their target's code): each engine's binding is kept as long as
  // the store, so that cases stay readable after their engine is closed.
  void bind(std::shared_ptr<const CatalogBinding> binding) override {
    std::lock_guard lock(mu_);
    // Engines opened on one catalog hand the same binding: kept once.
    if (std::find(bindings_.begin(), bindings_.end(), binding) == bindings_.end()) bindings_.push_back(std::move(binding));
  }

  CaseId allocate_case_id() override { return next_id_.fetch_add(1); }

  std::shared_ptr<const CaseSnapshot> load(CaseId id) override {
    std::lock_guard lock(mu_);
    auto it = cases_.find(id);
    return it == cases_.end() ? nullptr : it->second.snapshot;
  }

  void commit(Commit c) override {
    {
      std::lock_guard lock(mu_);
      apply(c);
    }
    core::recycle_events(c.events);  // written: its room serves the next action (its strings freed unlocked)
  }

  void commit_batch(std::vector<Commit> commits) override {
    {
      std::lock_guard lock(mu_);
      apply_batch(commits);
    }
    for (auto& c : commits) core::recycle_events(c.events);
  }

  std::vector<Event> history(CaseId id) override {
    std::string bytes;
    std::size_t count = 0;
    {
      std::lock_guard lock(mu_);
      auto it = cases_.find(id);
      if (it == cases_.end()) return {};
      bytes = HistoryLog::gather(it->second.last);
      count = it->second.chain.events;
    }
    // Decoded (and the left-out hashes computed) without holding up commits.
    return decode_history(bytes, id, count);
  }

  std::vector<InboxEntry> inbox(const InboxQuery& q) override {
    std::lock_guard lock(mu_);
    std::vector<std::pair<CaseId, const OpenTask*>> found;
    for (CaseId id : with_open_) {  // not every case: finished ones far outnumber them
      const auto it = cases_.find(id);
      if (it == cases_.end()) continue;
      for (const auto& e : it->second.open) {
        if (matches(e, q)) found.emplace_back(id, &e);
      }
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
      return std::tie(a.second->created, a.first, a.second->task) < std::tie(b.second->created, b.first, b.second->task);
    });
    std::vector<InboxEntry> out;
    for (std::size_t i = q.offset; i < found.size() && out.size() < q.limit; ++i) {
      out.push_back(unpack(found[i].first, *found[i].second));
    }
    return out;
  }

  std::vector<CaseId> due_cases(Instant now, std::size_t limit) override {
    std::lock_guard lock(mu_);
    return timers_.due(now, limit);
  }

  std::vector<CaseId> case_ids() override {
    std::lock_guard lock(mu_);
    std::vector<CaseId> out;
    out.reserve(cases_.size());
    for (const auto& [id, e] : cases_) out.push_back(id);
    std::sort(out.begin(), out.end());
    return out;
  }

  // Histories are kept without hashes and read back with them computed
  // (decode_history): unhashed commits cost nothing more.
  bool derives_chain() override { return true; }

 private:
  void apply_batch(std::vector<Commit>& commits) {
    // Check every version first so the batch is all or nothing.
    std::unordered_map<CaseId, std::uint64_t> versions;
    for (const auto& c : commits) {
      auto v = versions.find(c.case_id);
      std::uint64_t current = 0;
      if (v != versions.end()) {
        current = v->second;
      } else if (auto it = cases_.find(c.case_id); it != cases_.end()) {
        current = it->second.version;
      }
      if (current != c.expected_version) conflict(c, current);
      versions[c.case_id] = c.new_version;
    }
    for (auto& c : commits) apply(c);
  }

  struct Entry {
    std::shared_ptr<const CaseSnapshot> snapshot;
    std::uint64_t version = 0;
    const char* last = nullptr;  // the case's latest record in the history log
    Chain chain;                 // what the next event may leave out
    std::vector<OpenTask> open;
    core::MaybeInstant timer;  // Instant::min() reads as none: outside the calendars' years, never a case's timer
  };

  const std::string* intern(std::string_view text) {
    auto it = strings_.find(text);
    if (it == strings_.end()) it = strings_.emplace(text).first;
    return &*it;
  }

  // `known`: the case's task of the same id as it was open before, if any
  // (its item and flow cannot have changed).
  OpenTask pack(const OpenTaskView& e, const OpenTask* known) {
    OpenTask t;
    t.task = e.task;
    t.node_index = e.node_index;
    t.node = e.node;
    if (known != nullptr) {
      t.item = known->item;
      t.flow = known->flow;
    } else {
      // A node's item and flow are nearly always those it had last time:
      // compared, not hashed and looked up again.
      auto& named = names_[e.node];
      if (named.first == nullptr || *named.first != e.item || *named.second != e.flow) {
        named = {intern(e.item), intern(e.flow)};
      }
      t.item = named.first;
      t.flow = named.second;
    }
    t.created = e.created;
    t.due = e.due.value_or(Instant{});
    t.has_due = e.due.has_value();
    t.flow_version = e.flow_version;
    if (!e.assigned_user.empty() || !e.extra_users.empty()) {
      t.reassigned = std::make_unique<OpenTask::Reassigned>(OpenTask::Reassigned{
          std::string(e.assigned_user), std::vector<std::string>(e.extra_users.begin(), e.extra_users.end())});
    }
    return t;
  }

  static InboxEntry unpack(CaseId id, const OpenTask& t) {
    InboxEntry e;
    e.case_id = id;
    e.task = t.task;
    e.node = t.node;
    e.item = *t.item;
    e.flow = *t.flow;
    e.flow_version = t.flow_version;
    e.node_index = t.node_index;
    if (t.reassigned) {
      e.assigned_user = t.reassigned->user;
      e.extra_users = t.reassigned->extra_users;
    }
    e.created = t.created;
    if (t.has_due) e.due = t.due;
    return e;
  }

  [[noreturn]] static void conflict(const Commit& c, std::uint64_t current) {
    throw Error(ErrorCode::conflict,
                fmt::format("case {} is at version {}, not {}: another action was committed first", c.case_id,
                            current, c.expected_version));
  }

  // All or nothing: everything that can throw (encoding, the log, the
  // inbox entries, a new timer node, a new map entry) comes first; the entry
  // then changes only by assignments that cannot throw. A log record left
  // behind by a failure is referenced by nothing.
  void apply(Commit& c) {
    auto it = cases_.find(c.case_id);
    const std::uint64_t current = it == cases_.end() ? 0 : it->second.version;
    if (current != c.expected_version) conflict(c, current);
    Chain chain = it == cases_.end() ? Chain{} : it->second.chain;
    const char* last = it == cases_.end() ? nullptr : it->second.last;
    append_history(chain, last, c);
    std::vector<OpenTask> open;
    open.reserve(c.open_tasks.size());
    {
      // Most open tasks were open before: both lists go by task id.
      static const std::vector<OpenTask> none;
      const std::vector<OpenTask>& before = it == cases_.end() ? none : it->second.open;
      std::size_t j = 0;
      for (const auto& task : c.open_tasks) {
        while (j < before.size() && before[j].task < task.task) ++j;
        const bool known = j < before.size() && before[j].task == task.task && before[j].node == task.node;
        open.push_back(pack(task, known ? &before[j] : nullptr));
      }
    }
    const bool fresh = it == cases_.end();
    // May throw: before anything changes. A case left listed by a later
    // failure only costs the inbox a look at its (unchanged) open tasks.
    if (!open.empty()) with_open_.insert(c.case_id);
    if (fresh) it = cases_.emplace(c.case_id, Entry{}).first;
    Entry& e = it->second;
    if (std::optional<Instant>(e.timer) != c.next_timer) {
      try {
        timers_.move(c.case_id, e.timer, c.next_timer);
      } catch (...) {
        if (fresh) {
          cases_.erase(it);
          with_open_.erase(c.case_id);
        }
        throw;
      }
      e.timer = c.next_timer;
    }
    e.snapshot = c.snapshot;
    e.version = c.new_version;
    e.last = last;
    e.chain = chain;
    e.open.swap(open);
    if (e.open.empty()) with_open_.erase(c.case_id);
    if (fresh) {
      // An imported case keeps its id: never hand it out again.
      CaseId next = next_id_.load();
      while (next <= c.case_id && !next_id_.compare_exchange_weak(next, c.case_id + 1)) {
      }
    }
  }

  // Encodes the commit's events as one record of the history log after
  // `last`, and moves `chain` and `last` on to it.
  void append_history(Chain& chain, const char*& last, const Commit& c) {
    if (c.events.empty()) return;
#ifndef NDEBUG
    // A chained commit's hashes are left out and computed again when read:
    // one that is not its event's (a wrapper edited the event and kept the
    // flag) would be lost. Debug builds check the promise.
    if (c.chained && !c.unhashed) {
      for (const Event& e : c.events) assert(e.hash == hash_event(e, e.prev_hash) && "Commit::chained, yet a hash is not its event's");
    }
#endif
    std::size_t most = 0;
    for (const Event& e : c.events) most += encoded_bound(e);
    char* const start = log_.open(most);  // may throw: nothing has changed yet
    char* out = start;
    const char* actor_at = nullptr;
    for (std::size_t k = 0; k < c.events.size(); ++k) {
      encode_event(out, chain, c.case_id, c.events, k, c.chained, c.unhashed, actor_at);
    }
    assert(static_cast<std::size_t>(out - start) <= most && "encoded_bound is short");
    last = log_.close(last, out);
    const Event& final_event = c.events.back();
    if (actor_at != nullptr) chain.actor = actor_at;
    chain.actor_size = static_cast<std::uint32_t>(final_event.actor.size());
    chain.last_hash = final_event.hash;
    chain.seq = final_event.seq;
    chain.at = final_event.at;
    chain.events += static_cast<std::uint32_t>(c.events.size());
  }

  std::mutex mu_;
  // Of every engine opened on the store; declared first, destroyed last:
  // the snapshots below refer into them.
  std::vector<std::shared_ptr<const CatalogBinding>> bindings_;
  std::atomic<CaseId> next_id_{1};
  std::unordered_map<CaseId, Entry> cases_;
  std::unordered_set<CaseId> with_open_;  // cases with open tasks (inbox queries look at these only)
  core::TimerIndex timers_;
  HistoryLog log_;
  // Interned item and flow codes, found by their text (string_view).
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
  };
  std::unordered_set<std::string, TextHash, std::equal_to<>> strings_;
  std::unordered_map<const Node*, std::pair<const std::string*, const std::string*>> names_;  // a node's last item and flow
};

}  // namespace

std::shared_ptr<Store> open_memory_store() { return std::make_shared<MemoryStore>(); }

}  // namespace onestop
