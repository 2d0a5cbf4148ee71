#pragma once

// A flow-test script, parsed and checked: what the runner executes.

#include <onestop/case.hpp>
#include <onestop/engine.hpp>
#include <onestop/error.hpp>
#include <onestop/model.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace onestop::flowtest {

// A task named in a script: `node`, `item/node` (item code, or the id of
// the subflow node that runs the item), or a task id number.
struct TaskRef {
  std::string prefix;
  std::string node;
  TaskId id = 0;
  std::string text;
  SourceLocation where;
};

// Who acts: `as` names an actor of the script's `actors`, `applicant`,
// `system`, or any other user id; `roles` / `departments` on the step
// replace the actor's.
struct ActorRef {
  std::string as;
  SourceLocation where;  // of `as`
  std::optional<std::vector<std::string>> roles;
  std::optional<std::vector<std::string>> departments;
};

// An actor declared once in `actors:`.
struct ActorSpec {
  Actor::Kind kind = Actor::Kind::staff;
  std::vector<std::string> roles;
  std::vector<std::string> departments;
  SourceLocation where;  // the actor's entry
};

struct MaterialSpec {
  std::string id;
  std::string file;  // derived from the material's first file type when empty
  std::int64_t bytes = 1000;
  std::optional<MaterialForm> form;  // the material's own form when absent
};

// A list of materials, or `all`: every material the applicant provides for
// the target's items.
struct Materials {
  bool all = false;
  std::vector<MaterialSpec> list;
};

// What a scripted automatic-step handler reports.
struct HandlerSpec {
  bool ok = true;
  Decision decision = Decision::approved;
  std::string message = "done (flow test)";
  std::map<std::string, Value> form;
  SourceLocation where;  // the handler's name in the script
};

struct Submit {
  std::string case_name;
  std::string target;
  Applicant applicant;
  std::map<std::string, Value> form;
  Materials materials;
  bool keep_draft = false;
  std::optional<ActorRef> actor;  // the applicant when absent
  std::optional<ErrorCode> expect_error;
  std::optional<std::vector<std::string>> expect_notice;  // material ids pre-review must report
};

struct Act {
  std::string case_name;
  ActionKind kind = ActionKind::approve;
  std::optional<TaskRef> task;
  ActorRef actor;
  std::string target;
  std::optional<TimeLimit> limit;
  int rating = 0;
  std::string comment;
  std::map<std::string, Value> form;
  Materials materials;
  std::optional<ErrorCode> expect_error;
};

struct Advance {
  std::optional<TimeLimit> by;
  std::optional<Instant> to;
};

struct Tick {
  std::optional<std::size_t> fired;
};

struct SetHandlers {
  std::map<std::string, HandlerSpec> handlers;
};

template <typename T>
struct Checked {
  T value;
  SourceLocation where;
};

struct TaskExpect {
  TaskRef ref;
  std::optional<Assignees> assignees;
  SourceLocation assignees_where;
  std::optional<std::string> assigned_user;
  std::optional<Instant> due;
};

struct EventExpect {
  std::optional<EventKind> kind;
  std::optional<TaskRef> node;
  std::optional<std::string> actor;
  std::optional<std::string> to;
  std::optional<std::string> payload;  // a substring of the JSON payload
  std::string text;                    // as written, for messages
  SourceLocation where;
};

struct InboxExpect {
  InboxQuery query;
  bool roles_given = false;        // `roles` written (else a declared actor's)
  bool departments_given = false;  // `departments` written (else a declared actor's)
  std::optional<std::size_t> count;
  std::optional<std::vector<TaskRef>> tasks;
  std::string text;
  SourceLocation where;
};

struct Expect {
  std::string case_name;
  std::optional<Checked<CaseStatus>> status;
  std::optional<Checked<std::optional<Outcome>>> outcome;  // nullopt inside: no outcome yet
  std::optional<Checked<std::vector<TaskExpect>>> open_tasks;
  std::optional<Checked<std::size_t>> yellow;
  std::optional<Checked<std::size_t>> red;
  std::vector<EventExpect> history_contains;
  std::vector<EventExpect> history_excludes;
  std::vector<InboxExpect> inbox;
  std::optional<Checked<Instant>> promised_due;
  std::optional<Checked<bool>> clock_paused;
  std::optional<Checked<std::map<std::string, Value>>> form;
};

using StepBody = std::variant<Submit, Act, Advance, Tick, Expect, SetHandlers>;

struct Step {
  SourceLocation where;
  std::string kind;  // "submit", "act", ...
  StepBody body;
};

struct Test {
  std::string name;
  SourceLocation where;
  Instant start{};
  std::vector<Step> steps;
};

enum class Certificates : std::uint8_t { all, none, listed };

struct Script {
  std::string file;
  std::vector<std::filesystem::path> definitions;
  SourceLocation definitions_where;
  std::optional<std::string> calendar;
  SourceLocation calendar_where;
  std::map<std::string, HandlerSpec> handlers;
  Certificates certificates = Certificates::all;
  std::vector<std::string> certificate_list;  // material ids or licence types
  SourceLocation certificates_where;
  std::map<std::string, ActorSpec> actors;
  std::vector<Test> tests;
};

// Parses a script; every problem goes to `diagnostics` (file:line:col).
// Relative definition paths resolve against `base_dir`.
Script parse_script(const std::string& name, std::string_view text, const std::filesystem::path& base_dir,
                    std::vector<Diagnostic>& diagnostics);

// Checks the names a parsed script uses against the loaded catalog (targets,
// node ids and the flows they belong to, handler names, the calendar,
// certificates, the actors' and queries' roles and departments, items);
// problems go to `diagnostics`. Runs on whatever parsed, errors or not.
void check_script(const Script& script, const Catalog& catalog, std::vector<Diagnostic>& diagnostics);

// Error codes by name ("not_permitted", ...).
std::optional<ErrorCode> parse_error_code(std::string_view text);

}  // namespace onestop::flowtest
