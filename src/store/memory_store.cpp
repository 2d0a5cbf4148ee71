// The in-memory store: everything in maps under one mutex. Commits are
// atomic because they are applied under the lock after the version check.

#include "core/state.hpp"

#include <onestop/store.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <unordered_map>

namespace onestop {

namespace {

bool matches(const InboxEntry& e, const InboxQuery& q) {
  if (!q.item.empty() && e.item != q.item) return false;
  if (!e.assigned_user.empty()) return !q.user.empty() && e.assigned_user == q.user;
  const Assignees& a = e.node->assignees;
  auto has = [](const std::vector<std::string>& list, const std::string& x) {
    return std::find(list.begin(), list.end(), x) != list.end();
  };
  if (!q.user.empty() && (has(a.users, q.user) || has(e.node->signers, q.user) || has(e.extra_users, q.user))) return true;
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
  CaseId allocate_case_id() override { return next_id_.fetch_add(1); }

  std::shared_ptr<const CaseSnapshot> load(CaseId id) override {
    std::lock_guard lock(mu_);
    auto it = cases_.find(id);
    return it == cases_.end() ? nullptr : it->second.snapshot;
  }

  void commit(Commit c) override {
    std::lock_guard lock(mu_);
    apply(c);
  }

  void commit_batch(std::vector<Commit> commits) override {
    std::lock_guard lock(mu_);
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

  std::vector<Event> history(CaseId id) override {
    std::lock_guard lock(mu_);
    auto it = cases_.find(id);
    return it == cases_.end() ? std::vector<Event>{} : it->second.history;
  }

  std::vector<InboxEntry> inbox(const InboxQuery& q) override {
    std::lock_guard lock(mu_);
    std::vector<const InboxEntry*> found;
    for (const auto& [id, entry] : cases_) {
      for (const auto& e : entry.open) {
        if (matches(e, q)) found.push_back(&e);
      }
    }
    std::sort(found.begin(), found.end(), [](const InboxEntry* a, const InboxEntry* b) {
      return std::tie(a->created, a->case_id, a->task) < std::tie(b->created, b->case_id, b->task);
    });
    std::vector<InboxEntry> out;
    for (std::size_t i = q.offset; i < found.size() && out.size() < q.limit; ++i) out.push_back(*found[i]);
    return out;
  }

  std::vector<CaseId> due_cases(Instant now, std::size_t limit) override {
    std::lock_guard lock(mu_);
    std::vector<CaseId> out;
    for (auto it = timers_.begin(); it != timers_.end() && it->first <= now && out.size() < limit; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  std::vector<CaseId> case_ids() override {
    std::lock_guard lock(mu_);
    std::vector<CaseId> out;
    out.reserve(cases_.size());
    for (const auto& [id, e] : cases_) out.push_back(id);
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  struct Entry {
    std::shared_ptr<const CaseSnapshot> snapshot;
    std::uint64_t version = 0;
    std::vector<Event> history;
    std::vector<InboxEntry> open;
    std::optional<Instant> timer;
  };

  [[noreturn]] static void conflict(const Commit& c, std::uint64_t current) {
    throw Error(ErrorCode::conflict,
                fmt::format("case {} is at version {}, not {}: another action was committed first", c.case_id,
                            current, c.expected_version));
  }

  void apply(Commit& c) {
    auto it = cases_.find(c.case_id);
    const std::uint64_t current = it == cases_.end() ? 0 : it->second.version;
    if (current != c.expected_version) conflict(c, current);
    if (it == cases_.end()) {
      it = cases_.emplace(c.case_id, Entry{}).first;
      // An imported case keeps its id: never hand it out again.
      CaseId next = next_id_.load();
      while (next <= c.case_id && !next_id_.compare_exchange_weak(next, c.case_id + 1)) {
      }
    }
    Entry& e = it->second;
    e.snapshot = c.snapshot;
    e.version = c.new_version;
    e.history.insert(e.history.end(), std::make_move_iterator(c.events.begin()), std::make_move_iterator(c.events.end()));
    e.open = std::move(c.open_tasks);
    if (e.timer) timers_.erase({*e.timer, c.case_id});
    e.timer = c.next_timer;
    if (e.timer) timers_.insert({*e.timer, c.case_id});
  }

  std::mutex mu_;
  std::atomic<CaseId> next_id_{1};
  std::unordered_map<CaseId, Entry> cases_;
  std::set<std::pair<Instant, CaseId>> timers_;
};

}  // namespace

std::shared_ptr<Store> open_memory_store() { return std::make_shared<MemoryStore>(); }

}  // namespace onestop
