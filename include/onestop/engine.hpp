#pragma once

// The Engine: submit cases, act on tasks, query inboxes, fire due timers,
// read and verify history. Every action is one atomic store commit;
// observers hear about it after the commit.

#include <onestop/case.hpp>
#include <onestop/clock.hpp>
#include <onestop/definitions.hpp>
#include <onestop/store.hpp>
#include <onestop/supervision.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace onestop {

// What a staff member, applicant, supervisor or the system does to a case.
enum class ActionKind : std::uint8_t {
  accept,              // 受理 (completes the task as approved)
  refuse,              // 不予受理 (completes the task as rejected)
  approve,
  reject,
  return_to,           // 退回 to `target`, a declared return of the task's node
  request_correction,  // 补正: the case waits for the applicant, the clock stops
  resubmit,            // the applicant answers a correction request (or completes a draft)
  withdraw,            // 撤回 by the applicant, before the case is decided
  transfer,            // 转办 to user `target`
  add_signer,          // 加签: user `target` must also sign a countersign
  urge,                // 催办
  comment,
  terminate,           // by a supervisor
  retry,               // re-run a failed step
  start_special,       // 特别程序 `target` (hearing, expert_review, inspection, testing, public_notice, ...)
                       // with its maximum in `limit`: the clocks stop
  end_special,         // the special procedure ends: the clocks run again
  evaluate,            // 好差评 by the applicant after the case ends: `rating` 1..5, `comment`
  rectify,             // closes the follow-up of a poor rating (`comment`: what was done)
};

std::string_view to_string(ActionKind kind) noexcept;

// One action. `task` is required for task actions; `expected_version`, when
// non-zero, must equal the case version (else Error(conflict)).
struct Action {
  ActionKind kind = ActionKind::approve;
  CaseId case_id = 0;
  TaskId task = 0;
  Actor actor;
  std::string target;   // return_to: node id; transfer / add_signer: user id; start_special: its kind
  std::optional<TimeLimit> limit;  // start_special: the longest it may take
  int rating = 0;                  // evaluate: 1 very satisfied .. 5 very dissatisfied
  std::string comment;
  std::uint64_t expected_version = 0;
  // resubmit: form fields to set and materials to add or replace.
  std::map<std::string, Value> form;
  std::vector<OfferedMaterial> materials;
};

// What submit returns.
struct SubmitResult {
  std::optional<CaseId> case_id;  // set when a case (or a draft) was created
  PreReviewNotice notice;         // every deficiency at once
  bool accepted() const noexcept { return case_id.has_value() && notice.ok(); }
};

// Supplies materials from the electronic certificate library (电子证照库) or
// shared data, so they are never demanded from the applicant again.
class CertificateProvider {
 public:
  virtual ~CertificateProvider() = default;
  // The material for this applicant, or nullopt when the library has none.
  virtual std::optional<OfferedMaterial> fetch(const Applicant& applicant, const Material& material) = 0;
};

// What an automatic step's handler reports.
struct StepResult {
  bool ok = true;                        // false: the case enters the error state
  Decision decision = Decision::approved;
  std::string message;                   // recorded in the history
  std::map<std::string, Value> form;     // fields to add to the case's form data
};

// A host-registered automatic step (e.g. a household-registry check). Called
// outside any store transaction; its result is applied as its own action.
class StepHandler {
 public:
  virtual ~StepHandler() = default;
  virtual StepResult run(const Case& c, const Task& task) = 0;
};

// Hears about committed changes. An observer that throws is logged and
// ignored: it cannot undo or corrupt anything.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_event(const Event& event, const Case& c) = 0;
};

// Engine settings; defaults suit tests.
struct EngineOptions {
  std::shared_ptr<Store> store;                  // open_memory_store() when null
  std::shared_ptr<Clock> clock;                  // the system clock when null
  std::shared_ptr<CertificateProvider> certificates;  // none: fetched materials count as missing
  // Check applicant ID numbers strictly (false: a wrong credit-code check
  // character is accepted with a warning in the history).
  bool strict_identity = true;
  // Run automatic steps as soon as they are reached (inside act/submit,
  // after the commit). False: call run_automatic() yourself.
  bool run_handlers_inline = true;
  // How long the rectification of a poor rating may take (5-15 working
  // days in local rules; Zhejiang: 15).
  TimeLimit follow_up_limit{15, TimeUnit::working_days};
};

// Options for inbox queries are in store.hpp (InboxQuery).

// The engine. Safe to share between threads; actions on one case serialise
// through the store's version check.
class Engine {
 public:
  virtual ~Engine() = default;

  // Submits an application: pre-review, then a case (or draft, or refusal).
  virtual SubmitResult submit(const Submission& submission, const Actor& actor) = 0;
  // Performs one action. Throws Error: not_found (no such case or task),
  // not_permitted (actor not entitled), invalid_state (task finished, case
  // not running), conflict (stale version), invalid_input (bad target).
  // On any throw nothing has changed. Returns the new case version. When the
  // commit finds that someone committed first, the action is applied once
  // more to the case as it is then; only a second conflict is thrown.
  virtual std::uint64_t act(const Action& action) = 0;
  // The current state of a case. Throws Error(not_found).
  virtual Case get(CaseId id) = 0;
  // Open tasks for a user, role, department or item, oldest first.
  virtual std::vector<InboxEntry> inbox(const InboxQuery& query) = 0;
  // Fires everything due at or before `now` (timers, warnings, timeouts,
  // special-procedure maxima, overdue follow-ups) through the store's due
  // index; returns how many fired.
  virtual std::size_t tick(Instant now) = 0;
  // Runs pending automatic steps of a case; returns how many ran.
  virtual std::size_t run_automatic(CaseId id) = 0;
  // The history of a case.
  virtual std::vector<Event> history(CaseId id) = 0;
  // Checks the history's hash chain and that replaying it rebuilds the
  // stored state.
  virtual HistoryCheck verify(CaseId id) = 0;
  // Adds a case from its whole history (an export of another store): checks
  // the hash chain, rebuilds the state by replaying the inputs and commits
  // it under the same case id in one step. Throws Error(invalid_input) when
  // the chain is broken or the replay does not end where the history does,
  // Error(conflict) when the store already has that case.
  virtual void import_case(const std::vector<Event>& history) = 0;

  virtual void register_handler(const std::string& name, std::shared_ptr<StepHandler> handler) = 0;
  virtual void subscribe(std::shared_ptr<Observer> observer) = 0;

  // Supervision figures (电子监察) over the cases in the store.
  virtual SupervisionStats statistics(const StatsQuery& query) = 0;

  // The catalog the engine runs.
  virtual std::shared_ptr<const Catalog> catalog() const = 0;
};

// Opens an engine on a checked catalog. Throws Error(invalid_input) when the
// catalog has errors. The catalog must not change once handed over (the
// engine and the cases it stores refer into it): engines opened on the same
// catalog object, at a time, share one checked and compiled form of it, so
// opening an engine per request on one catalog is cheap and a store that
// outlives them keeps one compiled catalog, not one per engine.
std::unique_ptr<Engine> open_engine(std::shared_ptr<const Catalog> catalog, EngineOptions options = {});

}  // namespace onestop
