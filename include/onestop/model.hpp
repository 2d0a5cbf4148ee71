#pragma once

// The definitions a process designer writes, as plain immutable data:
// service items and their materials, flows, themes, calendars, warning rules
// and the organisation (departments and roles). Loaded from YAML by
// load_catalog() (definitions.hpp); the YAML reference is docs/yaml-reference.md.

#include <onestop/error.hpp>
#include <onestop/expr.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace onestop {

// How a time limit is counted.
enum class TimeUnit : std::uint8_t {
  working_days,   // 工作日: weekends and public holidays excluded, make-up days worked
  natural_days,   // 自然日
  working_hours,  // hours inside the calendar's working hours on working days
  natural_hours,
};

// A limit such as "20 working days". amount 0 means "immediate" (即办件).
struct TimeLimit {
  std::int64_t amount = 0;
  TimeUnit unit = TimeUnit::working_days;

  // "20 working days", "1 working day", "8 working hours", "5 natural days".
  std::string to_string() const;
  friend bool operator==(const TimeLimit&, const TimeLimit&) = default;
};

// The largest amount a written limit has: parse_time_limit reads at most
// six digits ("999999 working days").
inline constexpr std::int64_t max_written_limit_amount = 999'999;

// Parses "20 working days", "1 working day", "8 working hours", "5 natural
// days" / "5 calendar days", "36 hours", and the Chinese forms "20个工作日",
// "20工作日", "5自然日", "8工作小时". Returns nullopt on anything else.
std::optional<TimeLimit> parse_time_limit(std::string_view text);

// Approximate length in working days (8 working hours = 1 day, 7 natural
// days = 5 working days), used only to compare limits of different units.
double approx_working_days(const TimeLimit& limit) noexcept;

// The statutory limit (法定时限) and the shorter promised one (承诺时限).
struct TimeLimits {
  std::optional<TimeLimit> statutory;
  std::optional<TimeLimit> promised;
};

// GB/T 39046-2020 appendix A item types (codes 01..10, 20).
enum class ItemType : std::uint8_t {
  administrative_licence = 1,        // 行政许可 01
  administrative_penalty = 2,        // 行政处罚 02
  administrative_compulsion = 3,     // 行政强制 03
  administrative_levy = 4,           // 行政征收 04
  administrative_benefit = 5,        // 行政给付 05
  administrative_inspection = 6,     // 行政检查 06
  administrative_confirmation = 7,   // 行政确认 07
  administrative_award = 8,          // 行政奖励 08
  administrative_adjudication = 9,   // 行政裁决 09
  other_power = 10,                  // 其他行政权力 10
  public_service = 20,               // 公共服务 20
};

// Who may apply: 自然人 or 法人 (and other organisations).
enum class ApplicantKind : std::uint8_t { natural_person, legal_person, other_organisation };

// Level at which an item is exercised (GB/T 39046: 1 national .. 6 village).
enum class ServiceLevel : std::uint8_t { national = 1, provincial, city, county, town, village };

// How far an item can be handled online (网上办理深度, levels one to four).
enum class OnlineDepth : std::uint8_t {
  information = 1,   // guide published online
  forms = 2,         // forms downloadable
  submission = 3,    // application submitted and pre-reviewed online
  full = 4,          // handled entirely online, result delivered
};

// Physical form in which a material is handed in.
enum class MaterialForm : std::uint8_t { original, copy, original_and_copy, electronic };

// Whether a material must be provided.
enum class Necessity : std::uint8_t {
  required,
  optional,
  conditional,  // required only when `required_if` holds on the application
  deferrable,   // 容缺: accepted now, supplied later
};

// Where a material comes from. Anything but `applicant` is fetched, never
// demanded from the applicant again (信息一次采集, 全程共享).
enum class MaterialSource : std::uint8_t {
  applicant,
  certificate_library,   // 电子证照库
  shared_data,           // shared by another department
  issued_by_department,  // produced by the department itself
};

// A material (材料) an item requires.
struct Material {
  std::string id;
  std::string name;
  MaterialForm form = MaterialForm::original;
  int copies = 1;
  Necessity necessity = Necessity::required;
  Expr required_if;               // valid only when necessity == conditional
  MaterialSource source = MaterialSource::applicant;
  std::string licence_type;       // certificate-library licence type, when fetched
  std::string issuer;             // issuing body
  std::vector<std::string> file_types;  // accepted extensions, lower case: "pdf", "jpg"
  std::int64_t max_bytes = 0;     // 0 = no limit
  std::string sample;             // path or URL of a blank form / filled sample
  std::string note;
  SourceLocation where;
};

// A fee charged for an item.
struct Fee {
  std::string name;
  double amount = 0;  // yuan
  std::string basis;  // legal basis of the fee
};

// What a case produces when approved (e.g. a licence).
struct ItemResult {
  std::string name;
  std::string licence_type;
};

// A service item (事项): one thing a citizen or company can apply for.
// The code, name, type and legal basis are the same at every level (三级四同).
struct Item {
  std::string code;                 // basic code, e.g. "XK-PLAN-0012"
  std::string implementation_code;  // optional, an..24
  int version = 1;
  std::string name;
  ItemType type = ItemType::administrative_licence;
  std::optional<ServiceLevel> level;
  std::string department;           // implementing department id
  std::vector<std::string> joint_departments;  // 联办机构
  std::vector<std::string> legal_basis;
  std::vector<ApplicantKind> applicants;
  TimeLimits time_limit;
  std::vector<Fee> fees;
  OnlineDepth online_depth = OnlineDepth::submission;
  int max_visits = 1;               // 0 = 不见面, 1 = 最多跑一次
  std::string conditions;           // acceptance conditions, free text
  std::vector<Material> materials;
  std::string flow;                 // flow id handling this item
  std::optional<int> flow_version;  // pinned version; newest when absent
  ItemResult result;
  SourceLocation where;

  const Material* find_material(std::string_view id) const noexcept;
};

// Kinds of flow nodes.
enum class NodeKind : std::uint8_t {
  start,
  task,         // one human step
  countersign,  // 会签: several signers, completes on all / any / quota
  parallel,     // parallel split (AND)
  join,         // join of the matching parallel or inclusive split
  exclusive,    // exclusive gateway (XOR): first true guard, else default
  inclusive,    // inclusive gateway (OR): every true guard, else default
  subflow,      // runs an item's flow (themes call their items this way)
  automatic,    // host-registered StepHandler
  timer,        // waits for a duration
  end,          // ends the case with an outcome
};

// Who may act on a task: any listed user, any holder of a listed role, or
// anyone in a listed department.
struct Assignees {
  std::vector<std::string> users;
  std::vector<std::string> roles;
  std::vector<std::string> departments;
  bool empty() const noexcept { return users.empty() && roles.empty() && departments.empty(); }
};

// When a countersign step completes.
enum class CompletionRule : std::uint8_t { all, any, quota };

// What happens when a step's limit runs out.
enum class TimeoutAction : std::uint8_t {
  warn,          // warnings only (the default)
  escalate,      // 督办: escalate to `escalate_to`
  deem_consent,  // 逾期视为同意: the step completes as approved, recorded as deemed
};

// How a case ends.
enum class Outcome : std::uint8_t {
  approved,
  rejected,
  not_accepted,  // 不予受理
  withdrawn,
  terminated,
  completed,     // neutral end for non-decision items (public services)
};

// One node of a flow.
struct Node {
  std::string id;
  NodeKind kind = NodeKind::task;
  std::string name;
  Assignees assignees;
  std::optional<TimeLimit> time_limit;
  TimeoutAction on_timeout = TimeoutAction::warn;
  std::string escalate_to;           // department or role id
  CompletionRule complete_when = CompletionRule::all;
  int quota = 0;                     // signers needed, for CompletionRule::quota
  double quota_share = 0;            // or a share of the signers (0 < share <= 1)
  std::vector<std::string> signers;  // fixed countersign signers (user ids), optional
  std::string item;                  // subflow: the item whose flow runs
  std::string flow;                  // subflow: or a flow id directly
  std::string handler;               // automatic: StepHandler name
  std::optional<TimeLimit> wait;     // timer: how long
  Outcome outcome = Outcome::completed;  // end
  SourceLocation where;
};

// A directed edge; `guard` is valid when the edge is guarded.
struct Edge {
  std::string from;
  std::string to;
  Expr guard;
  bool is_default = false;  // taken when no guard holds ("otherwise")
  bool loop = false;        // a declared loop back edge
  SourceLocation where;
};

// What happens to the other branches of a parallel section when a step
// inside it returns the case upstream of the split.
enum class ReturnSiblings : std::uint8_t { cancel, keep };

// A declared return (退回): `from` may send the case back to any of `to`.
struct Return {
  std::string from;
  std::vector<std::string> to;
  ReturnSiblings siblings = ReturnSiblings::cancel;
  SourceLocation where;
};

// A flow: a graph of nodes, versioned. Running cases keep their version.
struct Flow {
  std::string id;
  int version = 1;
  std::string name;
  TimeLimits time_limit;
  std::vector<Node> nodes;  // in definition order
  std::vector<Edge> edges;
  std::vector<Return> returns;
  std::string calendar;     // calendar id; the catalog default when empty
  SourceLocation where;

  const Node* find_node(std::string_view id) const noexcept;
};

// A theme (主题): several items handled together under one acceptance by a
// lead department and one overall limit; its flow calls the items' flows
// through subflow nodes (e.g. enterprise investment projects, business start-up).
struct Theme {
  std::string id;
  int version = 1;
  std::string name;
  std::string lead_department;
  std::string flow;                 // the theme's flow id
  std::vector<std::string> items;   // item codes; derived from the flow when omitted
  TimeLimits time_limit;
  SourceLocation where;
};

// A department (部门).
struct Department {
  std::string id;
  std::string name;
  std::string parent;        // parent department id, optional
  std::string credit_code;   // unified social credit code of the body, optional
  SourceLocation where;
};

// A role (角色) that users hold, optionally within one department.
struct Role {
  std::string id;
  std::string name;
  std::string department;
  SourceLocation where;
};

// A daily working period, minutes after local midnight.
struct WorkingPeriod {
  int start_minute = 0;
  int end_minute = 0;
};

// A working-day calendar: zone offset, weekly rest days, public holidays,
// make-up working days (调休) and working hours. A calendar may extend
// another (a county calendar adds local days to the national one).
struct Calendar {
  std::string id;
  std::string name;
  std::string extends;
  std::optional<int> utc_offset_minutes;      // inherited when absent; +480 for China
  std::optional<std::vector<int>> rest_weekdays;  // 0 = Sunday .. 6 = Saturday
  std::vector<std::chrono::sys_days> holidays;
  std::vector<std::chrono::sys_days> workdays;    // make-up working days
  std::optional<std::vector<WorkingPeriod>> working_hours;
  SourceLocation where;
};

// Warning colours of electronic supervision (电子监察).
enum class WarningLevel : std::uint8_t { yellow, red };

// What a warning rule applies to.
enum class RuleScope : std::uint8_t { case_limit, step_limit, both };

// A warning rule: fires once when a share of a limit is used, or a given
// time before the deadline.
struct WarningRule {
  std::string id;
  RuleScope scope = RuleScope::both;
  std::optional<double> used_share;           // "used >= 80%": 0.8
  std::optional<TimeLimit> before_deadline;   // "remaining <= 1 working day"
  WarningLevel level = WarningLevel::yellow;
  std::vector<std::string> notify;            // assignee, department_head, role/department ids
  std::string escalate_to;
  SourceLocation where;
};

// Everything loaded, immutable. Lookups return nullptr when absent; without
// a version they return the newest.
class Catalog {
 public:
  std::vector<Item> items;
  std::vector<Flow> flows;
  std::vector<Theme> themes;
  std::vector<Calendar> calendars;
  std::vector<WarningRule> rules;
  std::vector<Department> departments;
  std::vector<Role> roles;
  std::string default_calendar;

  const Item* find_item(std::string_view code, std::optional<int> version = {}) const noexcept;
  const Flow* find_flow(std::string_view id, std::optional<int> version = {}) const noexcept;
  const Theme* find_theme(std::string_view id, std::optional<int> version = {}) const noexcept;
  const Calendar* find_calendar(std::string_view id) const noexcept;
  const Department* find_department(std::string_view id) const noexcept;
  const Role* find_role(std::string_view id) const noexcept;
  // Item codes a theme covers: its `items`, else the items of its flow's subflows.
  std::vector<std::string> theme_items(const Theme& theme) const;
};

std::string_view to_string(NodeKind) noexcept;
std::string_view to_string(ItemType) noexcept;
std::string_view to_string(ApplicantKind) noexcept;
std::string_view to_string(MaterialForm) noexcept;
std::string_view to_string(Necessity) noexcept;
std::string_view to_string(MaterialSource) noexcept;
std::string_view to_string(CompletionRule) noexcept;
std::string_view to_string(TimeoutAction) noexcept;
std::string_view to_string(Outcome) noexcept;
std::string_view to_string(WarningLevel) noexcept;
// GB/T 39046 two-digit code of an item type: "01" .. "10", "20".
std::string_view gb_code(ItemType) noexcept;

}  // namespace onestop
