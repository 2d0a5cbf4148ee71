#pragma once

// The full internal state of one case. Tasks reference their node in the
// compiled flow instead of copying names and candidates, to keep an open
// case small.

#include "core/compiled.hpp"

#include <onestop/calendar.hpp>
#include <onestop/case.hpp>
#include <onestop/store.hpp>

#include <cstdint>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace onestop {

namespace core {

// A value snapshots share until one of them changes it. A case's
// application (applicant, form, materials) is written at submission and on
// resubmission but read by every action, so the copy of the state each
// action makes copies a pointer, not every material's strings.
template <class T>
class Shared {
 public:
  Shared() = default;
  Shared(T value) : p_(std::make_shared<T>(std::move(value))) {}  // NOLINT: as the value
  const T& get() const { return p_ ? *p_ : empty(); }
  const T& operator*() const { return get(); }
  const T* operator->() const { return &get(); }
  operator const T&() const { return get(); }  // NOLINT: reads as the value
  // The value to change: copied first when another snapshot shares it.
  T& edit() {
    if (!p_) {
      p_ = std::make_shared<T>();
    } else if (p_.use_count() > 1) {
      p_ = std::make_shared<T>(*p_);
    } else {
      // The sole owner now: whatever another thread read through a copy it
      // has since dropped happens before the change (use_count is relaxed).
      std::atomic_thread_fence(std::memory_order_acquire);
    }
    return *p_;
  }

 private:
  static const T& empty() {
    static const T value{};
    return value;
  }
  std::shared_ptr<T> p_;
};

// What a token is waiting for.
enum class Wait : std::uint8_t { none, task, subflow, timer, handler, join };

struct Token {
  std::uint32_t id = 0;
  std::uint16_t frame = 0;
  std::uint32_t node = npos;
  Wait wait = Wait::none;
  TaskId task = 0;            // Wait::task / handler: the task
  std::uint16_t child = 0;    // Wait::subflow: the child frame
  Instant due{};              // Wait::timer
  std::uint32_t in_edge = npos;  // the edge it arrived by (joins)
  Decision decision = Decision::none;  // the decision of the step it came from (joins count it; retries reuse it)
  std::optional<LimitClock> clock;     // the step's time limit, when it has one
  bool timed_out = false;              // its on_timeout action has been taken
};

// One running flow: the root (frame 0) or a subflow called by a node.
struct Frame {
  const CompiledFlow* flow = nullptr;
  std::int32_t parent = -1;        // parent frame, -1 for the root
  std::uint32_t parent_token = 0;  // the token waiting at the subflow node
  bool done = false;
  Outcome outcome = Outcome::completed;
};

// A join waiting for the branches of its split.
struct JoinWait {
  std::uint16_t frame = 0;
  std::uint32_t node = npos;
  std::vector<std::uint32_t> expected;  // in-edges to wait for (edge indices)
  std::vector<std::uint32_t> arrived;
  std::uint32_t approvals = 0;
  std::uint32_t rejections = 0;
};

struct TaskRecord {
  TaskId id = 0;
  std::uint16_t frame = 0;
  std::uint32_t node = npos;
  TaskState state = TaskState::open;
  Decision decision = Decision::none;
  Instant created{};
  std::optional<Instant> due;
  std::string assigned_user;
  Shared<std::vector<std::string>> added_signers;  // shared until changed: a copy of the
  Shared<std::vector<Signature>> signatures;        // state then copies no finished task's lists
  std::uint16_t urges = 0;
  bool failed = false;  // automatic step whose handler failed
};

}  // namespace core

struct CaseSnapshot {
  // Public part.
  CaseId id = 0;
  std::string target;
  bool is_theme = false;
  int target_version = 1;
  core::Shared<Applicant> applicant;
  core::Shared<std::map<std::string, Value>> form;
  core::Shared<std::vector<OfferedMaterial>> materials;
  CaseStatus status = CaseStatus::running;
  std::optional<Outcome> outcome;
  std::uint64_t version = 0;
  Instant submitted{};
  std::optional<Instant> finished;
  std::string error;

  // Execution.
  std::vector<core::Frame> frames;
  std::vector<core::Token> tokens;  // live tokens only
  std::vector<core::JoinWait> joins;
  std::vector<core::TaskRecord> tasks;
  std::uint32_t next_token = 1;
  TaskId next_task = 1;
  CaseStatus status_before_wait = CaseStatus::running;  // restored on resubmit
  std::optional<Instant> suspended_since;

  // Time limits (限时办结): the overall promised and statutory limits of the
  // case; step limits live on their tokens.
  std::optional<LimitClock> promised_clock;
  std::optional<LimitClock> statutory_clock;
  // Warning thresholds already crossed: (0 for the case or a token id, rule index).
  std::vector<std::pair<std::uint32_t, std::uint16_t>> warned;
  // A special procedure (特别程序) under way: its kind and latest end.
  std::string special_kind;
  std::optional<Instant> special_until;
  bool paused = false;  // clocks stopped (correction or special procedure)

  // 好差评 and the rectification of a poor rating.
  std::optional<Evaluation> evaluation;
  std::optional<FollowUp> follow_up;
  bool follow_up_warned = false;

  // History chain.
  std::uint64_t seq = 0;
  Hash last_hash{};
};

}  // namespace onestop
