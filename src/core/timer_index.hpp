#pragma once

// Cases by their next due instant: what Store::due_cases answers from (the
// memory store, and the simulator's tap while it writes its store behind).

#include <onestop/case.hpp>
#include <onestop/clock.hpp>

#include <cstddef>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace onestop::core {

class TimerIndex {
 public:
  // Moves case `id` from its timer `before` to `after` (either may be none).
  // Throws (std::bad_alloc) only when adding a case that had none; nothing
  // has changed then.
  void move(CaseId id, std::optional<Instant> before, std::optional<Instant> after) {
    if (before == after) return;
    if (before && after) {
      // Re-keys the index node rather than freeing one and allocating another.
      auto node = set_.extract({*before, id});
      node.value().first = *after;
      set_.insert(std::move(node));
    } else if (before) {
      set_.erase({*before, id});
    } else {
      set_.insert({*after, id});
    }
  }

  // Cases due at or before `now`, earliest first (ties by id), at most `limit`.
  std::vector<CaseId> due(Instant now, std::size_t limit) const {
    std::vector<CaseId> out;
    for (auto it = set_.begin(); it != set_.end() && it->first <= now && out.size() < limit; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

 private:
  std::set<std::pair<Instant, CaseId>> set_;
};

}  // namespace onestop::core
