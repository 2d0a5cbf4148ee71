#pragma once

// The full internal state of one case. Tasks reference their node in the
// compiled flow instead of copying names and candidates, to keep an open
// case small.

#include "core/compiled.hpp"

#include <onestop/calendar.hpp>
#include <onestop/case.hpp>
#include <onestop/store.hpp>

#include <cstdint>
#include <array>
#include <atomic>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace onestop {

namespace core {

// The engine rules a case submitted now runs under (CaseSnapshot::rules).
// 2 (2026-11-27): a split entered again after a return that kept the other
// branches re-runs the branches that miss work (nested sections too) and
// waits for what arrives, runs and starts now; a join whose choice failed
// keeps its wait for a retry; a step started while the clocks are stopped
// starts stopped; a special procedure's maximum resumes the clocks at the
// maximum; a countersign is not transferred, a signer added by name takes
// its own place, a holder of a place by name is not added again; a task a
// return completed decides nothing (withdrawal stays open); a guard reads
// applicant.age on the Beijing date.
inline constexpr std::uint8_t current_rules = 2;

// A value snapshots share until one of them changes it. A case's
// application (applicant, form, materials) is written at submission and on
// resubmission but read by every action, so the copy of the state each
// action makes copies a pointer, not every material's strings.
template <class T>
class Shared {
 public:
  Shared() = default;
  // An empty value (anything with empty(): a container, a string, an
  // extras record) takes no record: many items have no form.
  Shared(T value) {  // NOLINT: as the value
    if constexpr (requires { value.empty(); }) {
      if (value.empty()) return;
    }
    p_ = std::make_shared<T>(std::move(value));
  }
  // A value that outlives every state referring to it, as the catalog does
  // (an item's code): referred to without owning it, so that copies of the
  // states of many cases, on many threads, do not all count references on
  // one shared counter. Changing it copies it first.
  static Shared borrowed(const T& value) {
    Shared s;
    s.p_ = std::shared_ptr<T>(std::shared_ptr<T>(), const_cast<T*>(&value));  // no owner: use_count() == 0
    return s;
  }
  const T& get() const { return p_ ? *p_ : empty(); }
  // Whether a record is held (else get() is the empty value); drop it.
  bool held() const noexcept { return p_ != nullptr; }
  void reset() noexcept { p_.reset(); }
  const T& operator*() const { return get(); }
  const T* operator->() const { return &get(); }
  operator const T&() const { return get(); }  // NOLINT: reads as the value
  // The value to change: copied first when another snapshot shares it.
  T& edit() {
    if (!p_) {
      p_ = std::make_shared<T>();
    } else if (p_.use_count() != 1) {  // shared, or borrowed (0)
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

// What a token is waiting for. `none` at a node in a case in error: its
// choice of edge failed, a retry makes it again; `join` the same at a join
// that has fired (its JoinWait, kept until then, holds the branches' counts).
enum class Wait : std::uint8_t { none, task, subflow, timer, handler, join };

// next_timer's note of a step clock's earliest warning instant, with all
// it was worked out from (the catalog's rules, the calendar, the clock's
// due instant, limit and pause): at the next commit, a clock the action did
// not touch is read from its note, not worked out again. Copied with its
// token; never saved (a read state works its notes out afresh).
struct WarnNote {
  std::uint64_t catalog = 0;  // the catalog's serial; 0: no note
  const WorkingCalendar* calendar = nullptr;
  std::int64_t due = 0;
  std::int64_t amount = 0;
  std::int64_t first = 0;  // the earliest warning instant (seconds), or none
  TimeUnit unit{};
  bool paused = false;

  // The note for `clock` under a catalog and calendar, its earliest instant `first`.
  static WarnNote of(std::uint64_t catalog, const WorkingCalendar& cal, const LimitClock& clock, std::int64_t first) {
    return {catalog, &cal, clock.due.time_since_epoch().count(), clock.limit.amount, first, clock.limit.unit,
            clock.paused_at.has_value()};
  }
  // Whether the note was made for `clock` as it is, under that catalog and calendar.
  bool fits(std::uint64_t catalog_serial, const WorkingCalendar& cal, const LimitClock& clock) const noexcept {
    return catalog == catalog_serial && calendar == &cal && due == clock.due.time_since_epoch().count() &&
           amount == clock.limit.amount && unit == clock.limit.unit && paused == clock.paused_at.has_value();
  }
};

// Fields in an order that leaves no padding between them: every action
// copies the live tokens.
struct Token {
  std::uint32_t id = 0;
  std::uint32_t node = npos;
  TaskId task = 0;               // Wait::task / handler: the task
  std::uint32_t in_edge = npos;  // the edge it arrived by (joins)
  Instant due{};                 // Wait::timer
  std::uint16_t frame = 0;
  std::uint16_t child = 0;    // Wait::subflow: the child frame
  Wait wait = Wait::none;
  Decision decision = Decision::none;  // the decision of the step it came from (joins count it; retries reuse it)
  bool timed_out = false;              // its on_timeout action has been taken
  std::optional<LimitClock> clock;     // the step's time limit, when it has one
  WarnNote note;                       // next_timer's, for `clock`
};
static_assert(sizeof(Token) <= 144, "every action copies the live tokens: keep them small");

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

// An optional instant in 8 bytes, where std::optional takes 16: the
// earliest instant, which no calendar reaches, stands for none. Reads as
// the optional it replaces.
class MaybeInstant {
 public:
  MaybeInstant() = default;
  MaybeInstant(std::optional<Instant> at) : at_(at ? *at : none) {}  // NOLINT: as the optional
  MaybeInstant& operator=(Instant at) {
    at_ = at;
    return *this;
  }
  bool has_value() const noexcept { return at_ != none; }
  explicit operator bool() const noexcept { return has_value(); }
  const Instant& operator*() const noexcept { return at_; }
  const Instant* operator->() const noexcept { return &at_; }
  operator std::optional<Instant>() const {  // NOLINT: as the optional
    return has_value() ? std::optional<Instant>(at_) : std::nullopt;
  }
  void reset() noexcept { at_ = none; }

 private:
  static constexpr Instant none = Instant::min();
  Instant at_ = none;
};

// What only some tasks have: a transfer's assignee, a countersign's added
// signers and signatures.
struct TaskExtras {
  std::string assigned_user;
  std::vector<std::string> added_signers;
  std::vector<Signature> signatures;

  // Nothing set (Shared then takes no record).
  bool empty() const { return assigned_user.empty() && added_signers.empty() && signatures.empty(); }
};

// What few cases have: an error, a correction or special procedure under
// way, an evaluation and its follow-up. Shared until changed, like a task's
// extras: every action copies the state, and a finished case is kept for
// years, without the 232 bytes these take. An empty record is dropped
// (Shared takes none for it; Machine::change_extras drops one an action
// emptied).
struct CaseExtras {
  std::string error;
  std::optional<Instant> suspended_since;  // waiting for the applicant since
  // A special procedure (特别程序) under way: its kind and latest end.
  std::string special_kind;
  std::optional<Instant> special_until;
  // 好差评 and the rectification of a poor rating.
  std::optional<Evaluation> evaluation;
  std::optional<FollowUp> follow_up;
  bool follow_up_warned = false;

  void end_special() {
    special_kind.clear();
    special_until.reset();
  }
  // Nothing set (Shared then takes no record): every field above is part of it.
  bool empty() const {
    return error.empty() && !suspended_since && special_kind.empty() && !special_until && !evaluation && !follow_up &&
           !follow_up_warned;
  }
};

struct TaskRecord {
  TaskId id = 0;
  std::uint32_t node = npos;
  std::uint16_t frame = 0;
  std::uint16_t urges = 0;
  TaskState state = TaskState::open;
  Decision decision = Decision::none;
  bool failed = false;    // automatic step whose handler failed
  bool returned = false;  // completed by a return (decision rejected): it decided nothing
  Instant created{};
  MaybeInstant due;
  // Shared until changed, and absent on most tasks: a task is 48 bytes, and
  // a copy of the state copies no finished task's lists.
  Shared<TaskExtras> extras;

  const std::string& assigned_user() const { return extras->assigned_user; }
  const std::vector<std::string>& added_signers() const { return extras->added_signers; }
  const std::vector<Signature>& signatures() const { return extras->signatures; }
};
static_assert(sizeof(TaskRecord) <= 48, "tasks are copied in chunks at every action: keep them small");

// A case's tasks in creation order (task id N at index N - 1), kept in
// chunks of four that snapshots share until one of them changes a task of
// the chunk. Every action copies the case state; with a plain vector that
// copied every task the case ever had (about thirty on a theme of eight
// items), now it copies the chunk pointers and, when it changes or adds a
// task, the one or two chunks concerned. Reading is as from a vector;
// changing goes through edit() and push_back(). A reference from edit()
// stays valid until the list is copied or destroyed (push_back never moves
// a chunk).
class TaskList {
 public:
  static constexpr std::size_t chunk_size = 4;

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = TaskRecord;
    using difference_type = std::ptrdiff_t;
    using pointer = const TaskRecord*;
    using reference = const TaskRecord&;
    const_iterator() = default;
    const_iterator(const TaskList* list, std::size_t i) : list_(list), i_(i) {}
    reference operator*() const { return (*list_)[i_]; }
    pointer operator->() const { return &(*list_)[i_]; }
    const_iterator& operator++() {
      ++i_;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++i_;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) { return a.i_ == b.i_; }

   private:
    const TaskList* list_ = nullptr;
    std::size_t i_ = 0;
  };

  TaskList() = default;
  TaskList(const TaskList&) = default;
  TaskList& operator=(const TaskList&) = default;
  // A moved-from list is empty (not a size without chunks).
  TaskList(TaskList&& o) noexcept : chunks_(std::move(o.chunks_)), size_(std::exchange(o.size_, 0)) {}
  TaskList& operator=(TaskList&& o) noexcept {
    if (this != &o) {
      chunks_ = std::move(o.chunks_);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const TaskRecord& operator[](std::size_t i) const { return chunks_[i / chunk_size].get()[i % chunk_size]; }
  const TaskRecord& back() const { return (*this)[size_ - 1]; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }

  // The task at `i`, to change: its chunk is copied first when another
  // snapshot shares it.
  TaskRecord& edit(std::size_t i) { return chunks_[i / chunk_size].edit()[i % chunk_size]; }
  // Appends a task and returns it, to change.
  TaskRecord& push_back(TaskRecord task) {
    if (size_ % chunk_size == 0) chunks_.emplace_back();  // made by its first edit()
    TaskRecord& slot = chunks_[size_ / chunk_size].edit()[size_ % chunk_size];
    slot = std::move(task);
    ++size_;
    return slot;
  }
  void clear() {
    chunks_.clear();
    size_ = 0;
  }

 private:
  using Chunk = std::array<TaskRecord, chunk_size>;
  std::vector<Shared<Chunk>> chunks_;
  std::size_t size_ = 0;
};

// Event vectors handed back once written, kept per thread with their room:
// an action's events travel from the machine to the store in a vector, and
// a store that has written them hands it back, so that a busy engine does
// not allocate an event buffer per action (an action that opens several
// parallel tasks outgrew the first buffer, and the larger one, past
// malloc's per-thread cache, took its slow path every time).
// An empty vector, with the room of one handed back when there is one.
std::vector<Event> event_buffer();
// Empties `events` and keeps its room for the next event_buffer() on this
// thread (up to a bounded number of vectors; more are freed).
void recycle_events(std::vector<Event>& events) noexcept;

}  // namespace core

struct CaseSnapshot {
  // Public part.
  CaseId id = 0;
  core::Shared<std::string> target;  // the catalog's text (Shared::borrowed), or the case's own
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

  // Execution.
  std::vector<core::Frame> frames;
  std::vector<core::Token> tokens;  // live tokens only
  std::vector<core::JoinWait> joins;
  core::TaskList tasks;
  std::uint32_t next_token = 1;
  TaskId next_task = 1;
  CaseStatus status_before_wait = CaseStatus::running;  // restored on resubmit

  // Time limits (限时办结): the overall promised and statutory limits of the
  // case; step limits live on their tokens.
  std::optional<LimitClock> promised_clock;
  std::optional<LimitClock> statutory_clock;
  // Warning thresholds already crossed: (0 for the case or a token id, rule index).
  std::vector<std::pair<std::uint32_t, std::uint16_t>> warned;
  bool paused = false;  // clocks stopped (correction or special procedure)
  // The engine rules the case runs under (core::current_rules for a case
  // submitted now): a case keeps the rules it started with, so that its
  // history replays to the same events after the engine's behaviour has
  // changed. 1: the rules before 2026-11-27 (snapshots and histories
  // written before then); 0: not yet submitted.
  std::uint8_t rules = 0;
  core::Shared<core::CaseExtras> extras;  // error, correction, special procedure, evaluation

  // History chain.
  std::uint64_t seq = 0;
  Hash last_hash{};
  // Events since last_hash were committed unhashed (Commit::unhashed): the
  // chain's end is in the store's history, not here. Never stored (stores
  // that keep snapshots as bytes derive no chain).
  bool chain_pending = false;
};

}  // namespace onestop
