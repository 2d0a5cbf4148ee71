#pragma once

// The pure core: applies one input (a submission, an action, a handler
// result, a timer) to a case state at a given instant and returns the
// events it produced. No I/O, no clock, no randomness: the same inputs give
// the same state and events, which is what replay relies on.

#include "core/compiled.hpp"
#include "core/state.hpp"

#include <onestop/engine.hpp>

#include <functional>
#include <string>
#include <vector>

namespace onestop::core {

// Something due at an instant: a timer node, a warning threshold, a step's
// timeout action, the end of a special procedure's maximum.
struct Deadline {
  enum class Kind : std::uint8_t { timer, warning, timeout, special_end, follow_up };
  Instant at{};
  Kind kind = Kind::timer;
  std::uint32_t token = 0;  // 0: the case's own limit
  std::uint16_t rule = 0;
  bool statutory = false;   // warning on the statutory rather than the promised limit
};
// The flows a case's frames ran, in the order they started, read from its
// history (the `flow` and `flow_version` of its submitted, resubmitted and
// subflow_started events) for replay: a later version of a flow may sit
// beside the one the case ran. A version of 0: not recorded (a history
// written before they were), the catalog's choice applies.
struct FlowPins {
  std::vector<std::pair<std::string, int>> flows;
  std::size_t next = 0;
};

class Machine {
 public:
  // `hash`: whether the events get their hashes (else they are left zero
  // and the state's chain marked pending: Commit::unhashed). A state whose
  // chain is pending is hashed on only once its chain's end is set again.
  Machine(const CompiledCatalog& catalog, CaseSnapshot& state, Instant now, std::string actor, bool hash = true);
  ~Machine();  // hands its event buffer back (core::recycle_events) unless a commit took it
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // A new case: records the submission and starts the root flow (or keeps a draft).
  void submit(Submission submission, bool draft);
  // One action; throws Error before changing anything when it is refused.
  void act(const Action& action);
  // The result of an automatic step's handler.
  void handler_result(TaskId task, const StepResult& result);
  // Fires timers due at or before now; returns how many fired.
  std::size_t fire_timers();

  std::vector<Event>& events() noexcept { return events_; }
  // Replay: frames start on the flows `pins` recorded (shared by the
  // machines that replay one history, in turn).
  void pin_flows(FlowPins* pins) noexcept { pins_ = pins; }

 private:
  struct Outcomes {
    Decision decision = Decision::none;
    std::uint32_t approvals = 0;
    std::uint32_t rejections = 0;
  };

  void emit(EventKind kind, TaskId task, std::string node, std::string from, std::string to,
            std::string payload = {});
  void start_flow(const CompiledFlow* root);
  const CompiledFlow* root_flow(bool& record);
  const CompiledFlow* pinned(const CompiledFlow* resolved, bool& record, bool same_id);
  static std::string flow_pin(const CompiledFlow& f);
  std::uint32_t spawn(std::uint16_t frame, std::uint32_t node, std::uint32_t in_edge,
                      Decision decision = Decision::none);
  void enter(std::uint32_t token_id);
  void leave(std::uint32_t token_id, const Outcomes& outcomes);
  void finish_frame(std::uint16_t frame, Outcome outcome);
  void finish_case(Outcome outcome, std::string_view why);
  // Clears something of the case's extras; drops the record once empty.
  template <class F>
  void change_extras(F&& change);
  void cancel_token(std::size_t index, std::string_view why);
  void cancel_frame_tokens(std::uint16_t frame, std::string_view why);
  void fail(std::string message);
  TaskRecord& create_task(Token& token);
  void complete_task(TaskRecord& task, Decision decision);

  Token* find_token(std::uint32_t id);
  std::size_t token_index(std::uint32_t id) const;
  TaskRecord* find_task(TaskId id);
  TaskRecord& require_open_task(const Action& action);
  const CompiledFlow& flow_of(std::uint16_t frame) const { return *state_.frames[frame].flow; }
  const Node& node_of(const TaskRecord& task) const { return *flow_of(task.frame).nodes[task.node].def; }
  bool is_candidate(const Actor& actor, const TaskRecord& task) const;
  std::vector<std::string> slots_of(const TaskRecord& task) const;
  void sign(TaskRecord& task, const Actor& actor, Decision decision);
  void do_return(TaskRecord& task, const std::string& target);
  void evaluate(const Action& action);
  void pause_clocks(std::string_view why);
  // From `from` (the maximum of a special procedure), else from now.
  void resume_clocks(std::string_view why, std::optional<Instant> from = std::nullopt);
  void time_out(std::uint32_t token_id);
  void warn(const Deadline& d);
  const WorkingCalendar& root_calendar() const { return catalog_.calendar_of(flow_of(0)); }
  bool decided() const;
  LimitClock step_clock(const CompiledFlow& cf, const TimeLimit& limit) const;
  void end_special_at_maximum();
  void end_special_if_past(std::optional<ActionKind> kind);
  std::vector<JoinWait>::iterator find_join(std::uint16_t frame, std::uint32_t node);
  bool runs_in(std::uint16_t frame, const std::vector<bool>& branch) const;
  static bool arrived_from(const JoinWait& wait, const CompiledFlow& cf, const std::vector<bool>& branch);
  bool misses_work(std::uint16_t frame, const std::vector<bool>& branch) const;

  const CompiledCatalog& catalog_;
  CaseSnapshot& state_;
  Instant now_;
  std::string actor_;
  std::vector<Event> events_;
  FlowPins* pins_ = nullptr;
  int depth_ = 0;
  bool hash_ = true;
};

// The item code whose flow a frame runs ("" for a theme's root flow): a
// view into the snapshot or the catalog.
std::string_view frame_item(const CaseSnapshot& s, std::uint16_t frame);

// The places to sign on a countersign: its fixed signers, else one per
// listed user, role and department; then the signers added later.
std::vector<std::string> countersign_slots(const Node& def, const std::vector<std::string>& added_signers);

// Serialises inputs for the history, and reads them back for replay.
std::string encode_submission(const Submission& s, bool theme, int version);
Submission decode_submission(const std::string& json, bool& theme, int& version, int& rules);
std::string encode_action(const Action& a);
Action decode_action(const std::string& json, CaseId id);
std::string encode_step_result(const StepResult& r);
StepResult decode_step_result(const std::string& json);

// A JSON string literal for `s`.
std::string quote_json(const std::string& s);

// The public view of a snapshot.
Case to_case(const CompiledCatalog& catalog, const CaseSnapshot& s);
// Open tasks as stores index them: views into `s` and the catalog.
std::vector<OpenTaskView> open_task_views(const CompiledCatalog& catalog, const CaseSnapshot& s);
// Everything still due for a case, unordered.
void for_each_deadline(const CompiledCatalog& catalog, const CaseSnapshot& s,
                       const std::function<void(const Deadline&)>& visit);
// The earliest of them, for a state no other thread sees yet (an action's
// new state): its tokens keep notes that spare the next commit's look at
// clocks the action did not touch.
std::optional<Instant> next_timer_noting(const CompiledCatalog& catalog, CaseSnapshot& s);
// "" when the state is consistent, else what is wrong: every open task has
// a live token waiting on it and every waiting token an open task; a
// finished case has neither.
std::string invariant_violation(const CaseSnapshot& s);
// A canonical text dump (equality of states in replay checks, debugging).
std::string dump(const CaseSnapshot& s);

// Rebuilds a case from the inputs of its history alone (derived events are
// re-created by them).
std::shared_ptr<CaseSnapshot> replay(const CompiledCatalog& catalog, CaseId id, const std::vector<Event>& events);

// The header stores index and list.
CaseHeader header_of(const CaseSnapshot& s);

// Boost.Serialization binary snapshots (snapshot.cpp). Flows are written as
// id and version and resolved against `catalog` when read.
std::string encode_snapshot(const CaseSnapshot& s);
std::shared_ptr<CaseSnapshot> decode_snapshot(const CompiledCatalog& catalog, std::string_view bytes);

}  // namespace onestop::core
