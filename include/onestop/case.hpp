#pragma once

// Cases (办件) at run time: who applied, for what, where the case stands,
// its tasks, and its append-only, hash-chained history.

#include <onestop/clock.hpp>
#include <onestop/expr.hpp>
#include <onestop/model.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace onestop {

using CaseId = std::uint64_t;
// Unique within its case.
using TaskId = std::uint32_t;

// Who acts. The host authenticates people; the engine checks that the actor
// is entitled to the task (a candidate user, role or department).
struct Actor {
  enum class Kind : std::uint8_t {
    staff,       // a handler in a department
    applicant,   // the citizen or company the case belongs to (user = their ID number)
    supervisor,  // electronic supervision (电子监察): may terminate, urge, retry
    system,      // the engine itself or a host integration (handlers, timers)
  };
  Kind kind = Kind::staff;
  std::string user;
  std::vector<std::string> roles;
  std::vector<std::string> departments;

  static Actor staff_member(std::string user, std::vector<std::string> roles = {},
                            std::vector<std::string> departments = {}) {
    return Actor{Kind::staff, std::move(user), std::move(roles), std::move(departments)};
  }
  static Actor applicant_of(std::string id) { return Actor{Kind::applicant, std::move(id), {}, {}}; }
  static Actor supervisor_named(std::string user) { return Actor{Kind::supervisor, std::move(user), {}, {}}; }
  static Actor system_actor() { return Actor{Kind::system, "system", {}, {}}; }
};

// The applicant: a natural person (resident ID number) or a legal person
// (unified social credit code); both are checked on submission.
struct Applicant {
  ApplicantKind kind = ApplicantKind::natural_person;
  std::string id;
  std::string name;
};

// A material as offered by the applicant (or fetched on their behalf).
struct OfferedMaterial {
  std::string id;
  std::string file_name;  // its extension is checked against the material's file types
  std::int64_t bytes = 0;
  MaterialForm form = MaterialForm::electronic;
};

// What a submission asks for.
struct Submission {
  std::string target;  // an item code or a theme id
  Applicant applicant;
  std::map<std::string, Value> form;
  std::vector<OfferedMaterial> materials;
  // When pre-review finds deficiencies: keep the case as a draft awaiting the
  // applicant (true) or refuse the submission with the notice (false).
  bool keep_draft_if_deficient = false;
};

// One deficiency found by pre-review (预审).
struct Deficiency {
  enum class Kind : std::uint8_t { missing, wrong_form, wrong_file_type, too_large, not_available };
  Kind kind = Kind::missing;
  std::string item;      // the item whose material it is
  std::string material;  // material id
  std::string message;   // for the applicant: what to bring, in which form
};

// The one-time notification (一次性告知): every deficiency at once.
struct PreReviewNotice {
  std::vector<Deficiency> deficiencies;
  bool ok() const noexcept { return deficiencies.empty(); }
  std::string to_string() const;
};

enum class CaseStatus : std::uint8_t {
  draft,                  // submitted with deficiencies, waiting for the applicant
  running,
  waiting_for_applicant,  // correction (补正) requested: the clock stops
  error,                  // a step failed (handler error, no gateway branch): retry or terminate
  finished,
};

enum class TaskState : std::uint8_t { open, completed, cancelled };

// How a task ended.
enum class Decision : std::uint8_t { none, approved, rejected, deemed_approved };

// One signature on a countersign task.
struct Signature {
  std::string user;
  std::string slot;  // the user, role or department signed for
  Decision decision = Decision::none;
  Instant at{};
};

// A unit of work for a person (or, for automatic steps, for a handler).
struct Task {
  TaskId id = 0;
  std::string node;             // node id in its flow
  std::string name;
  NodeKind kind = NodeKind::task;
  std::string item;             // item whose flow the node belongs to ("" for the root flow)
  Assignees candidates;
  std::string assigned_user;    // after a transfer (转办), only this user may act
  std::vector<std::string> slots;  // countersign: who must sign (users, roles, departments)
  std::vector<Signature> signatures;
  TaskState state = TaskState::open;
  Decision decision = Decision::none;
  Instant created{};
  std::optional<Instant> due;
  int urges = 0;
};

// The applicant's rating of a finished case (好差评, GB/T 39734):
// 1 very satisfied, 2 satisfied, 3 basically satisfied, 4 dissatisfied,
// 5 very dissatisfied. 4 and 5 are "poor" and open a rectification follow-up.
struct Evaluation {
  int rating = 0;
  std::string comment;
  Instant at{};
  bool poor() const noexcept { return rating >= 4; }
};

// The rectification of a poor rating (差评整改): its own limit and outcome.
struct FollowUp {
  Instant opened{};
  Instant due{};
  std::optional<Instant> closed;
  std::string outcome;  // what was done, when closed
};

// The state of a case as the host sees it.
struct Case {
  CaseId id = 0;
  std::string target;       // item code or theme id
  bool is_theme = false;
  int target_version = 1;
  std::string flow;
  int flow_version = 1;
  Applicant applicant;
  std::map<std::string, Value> form;
  std::vector<OfferedMaterial> materials;
  CaseStatus status = CaseStatus::running;
  std::optional<Outcome> outcome;
  std::uint64_t version = 0;  // grows by one with every accepted action
  std::optional<Instant> promised_due;   // the overall promised limit runs out (moves with suspensions)
  std::optional<Instant> statutory_due;
  bool clock_paused = false;             // correction or a special procedure under way
  std::string special_procedure;         // its kind, while one is under way
  std::optional<Evaluation> evaluation;
  std::optional<FollowUp> follow_up;
  Instant submitted{};
  std::optional<Instant> finished;
  std::string error;          // when status == error
  std::vector<Task> tasks;    // every task, open and closed, in creation order

  std::vector<const Task*> open_tasks() const;
  const Task* find_task(TaskId id) const noexcept;
};

// What happened, one entry of the append-only history (办件过程信息).
enum class EventKind : std::uint8_t {
  submitted,     // input: the submission (payload: the application)
  acted,         // input: an action (payload: the action)
  handler_ran,   // input: an automatic step's result
  timer_fired,   // input: timers due at this instant fired
  drafted,
  task_created,
  task_completed,
  task_cancelled,
  signed_,
  transferred,
  signer_added,
  urged,
  commented,
  returned,
  correction_requested,
  resubmitted,
  withdrawn,
  terminated,
  handler_failed,
  retried,
  timer_done,
  subflow_started,
  subflow_finished,
  step_error,
  finished,
  warning,              // a warning threshold was crossed (payload: rule, level, scope, notify)
  escalated,            // 督办: a step ran out and was escalated
  deemed_consent,       // 逾期视为同意: a step ran out and counts as approved
  clock_paused,
  clock_resumed,
  special_started,      // 特别程序: hearing, expert review, inspection, ... (time not counted)
  special_ended,
  evaluated,            // 好差评: the applicant rated the case
  follow_up_opened,     // a poor rating opened a rectification
  follow_up_closed,
};

std::string_view to_string(EventKind kind) noexcept;
std::string_view to_string(CaseStatus status) noexcept;
std::string_view to_string(Decision decision) noexcept;

using Hash = std::array<std::uint8_t, 32>;

// One history entry. Each carries the SHA-256 of the previous one, so an
// edited, removed or reordered entry is detected by verify_history.
struct Event {
  CaseId case_id = 0;
  std::uint64_t seq = 0;  // 1, 2, 3, ... within the case
  Instant at{};
  std::string actor;
  EventKind kind = EventKind::submitted;
  TaskId task = 0;
  std::string node;
  std::string from;  // state before (e.g. "open", "running")
  std::string to;    // state after
  std::string payload;  // details as compact JSON
  Hash prev_hash{};
  Hash hash{};

  bool operator==(const Event&) const = default;
};

// The hash of an event's content chained to `prev` (SHA-256, OpenSSL).
Hash hash_event(const Event& event, const Hash& prev);
// Lower-case hex of a hash.
std::string to_hex(const Hash& hash);

// The result of checking a history chain.
struct HistoryCheck {
  bool ok = true;
  std::uint64_t first_bad_seq = 0;  // 0 when ok
  std::string message;
};

// Verifies sequence numbers and the hash chain of one case's history.
HistoryCheck verify_history(const std::vector<Event>& events);

}  // namespace onestop
