// Inputs as JSON for the history (so replay can re-apply them), and the
// public views of the internal state.

#include "core/machine.hpp"

#include "common/json_fields.hpp"
#include "core/recorded_enums.hpp"

#include <boost/container/small_vector.hpp>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cstring>
#include <limits>
#include <type_traits>

namespace onestop::core {

using json = nlohmann::json;
using json_fields::field;
using json_fields::flag_of;
using json_fields::kind_of;
using json_fields::list_if_any;
using json_fields::list_of;
using json_fields::object_if_any;
using json_fields::object_of;
using json_fields::text_of;
using json_fields::texts_of;
using json_fields::whole;

namespace {

// Whether `s` goes into JSON as it is between quotes: no quote, backslash or
// control character, and with `ascii` nothing but printable ASCII. Eight
// bytes at a time (these run on every name and file of every input): a
// byte below 0x20 shows as a borrow, a given byte as a zero after xor.
template <bool ascii>
bool plain_json(std::string_view s) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  auto zero_byte = [&](std::uint64_t w) { return ((w - ones) & ~w & highs) != 0; };
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, sizeof w);
    if (((w - 0x20 * ones) & ~w & highs) != 0 || zero_byte(w ^ ('"' * ones)) || zero_byte(w ^ ('\\' * ones))) return false;
    if (ascii && ((w & highs) != 0 || zero_byte(w ^ (0x7F * ones)))) return false;
  }
  for (; i < s.size(); ++i) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (u < 0x20 || u == '"' || u == '\\' || (ascii && u >= 0x7F)) return false;
  }
  return true;
}

// The most bytes put_quoted writes for `t`: an escaped control character
// takes six.
std::size_t quoted_bound(std::string_view t) { return 6 * t.size() + 2; }

// Writes `t` at `p` exactly as nlohmann's dump writes it (valid UTF-8 as it
// is; quotes, backslashes and control characters escaped) and returns the
// end: between quotes as it is when plain_json<ascii>, else through
// nlohmann. With `ascii`, anything but printable ASCII goes through
// nlohmann, which refuses invalid UTF-8 (texts not checked before); action
// texts have been (check_action).
template <bool ascii>
char* put_quoted(char* p, const std::string& t) {
  if (plain_json<ascii>(t)) {
    *p++ = '"';
    std::memcpy(p, t.data(), t.size());
    p += t.size();
    *p++ = '"';
    return p;
  }
  const std::string escaped = json(t).dump();
  std::memcpy(p, escaped.data(), escaped.size());
  return p + escaped.size();
}

template <bool ascii>
void append_quoted(std::string& out, const std::string& t) {
  const std::size_t at = out.size();
  out.resize(at + quoted_bound(t));
  out.resize(static_cast<std::size_t>(put_quoted<ascii>(out.data() + at, t) - out.data()));
}

template <typename Int>
void append_int(std::string& out, Int v) {
  if (static_cast<std::make_unsigned_t<Int>>(v) < 10u) {  // one digit (kinds, forms): no conversion
    out += static_cast<char>('0' + static_cast<int>(v));
    return;
  }
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

std::string quote_json(const std::string& s) {
  std::string out;
  append_quoted<false>(out, s);
  return out;
}

namespace {

json to_json(const Value& v) {
  switch (v.type()) {
    case Value::Type::null: return nullptr;
    case Value::Type::boolean: return v.as_bool();
    case Value::Type::number: return v.as_number();
    case Value::Type::string: return v.as_string();
    case Value::Type::list: {
      json out = json::array();
      for (const auto& x : v.as_list()) out.push_back(to_json(x));
      return out;
    }
  }
  return nullptr;
}

Value from_json(const json& j) {
  if (j.is_boolean()) return Value(j.get<bool>());
  if (j.is_number()) return Value(j.get<double>());
  if (j.is_string()) return Value(j.get<std::string>());
  if (j.is_array()) {
    Value::List list;
    for (const auto& x : j) list.push_back(from_json(x));
    return Value(std::move(list));
  }
  return Value();
}

json form_json(const std::map<std::string, Value>& form) {
  json out = json::object();
  for (const auto& [k, v] : form) out[k] = to_json(v);
  return out;
}

std::map<std::string, Value> form_from(const json& j) {  // `j`: an object (object_of, object_if_any)
  std::map<std::string, Value> out;
  for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = from_json(it.value());
  return out;
}

json materials_json(const std::vector<OfferedMaterial>& ms) {
  json out = json::array();
  for (const auto& m : ms) {
    out.push_back({{"id", m.id}, {"file", m.file_name}, {"bytes", m.bytes}, {"form", static_cast<int>(m.form)}});
  }
  return out;
}

std::vector<OfferedMaterial> materials_from(const json& j) {
  std::vector<OfferedMaterial> out;  // `j`: a list (list_of, list_if_any)
  for (const auto& m : j) {
    out.push_back(OfferedMaterial{text_of(m, "id"), text_of(m, "file"), whole(m, "bytes", std::int64_t{0}),
                                  kind_of(m, "form", MaterialForm::original, last_of<MaterialForm>)});
  }
  return out;
}

}  // namespace

std::string encode_submission(const Submission& s, bool theme, int version) {
  // Hand-written, byte for byte what nlohmann's dump of the object (keys in
  // order) gives: this runs for every submission.
  std::string out;
  std::size_t size = 128 + s.applicant.id.size() + s.applicant.name.size() + s.target.size() + 48 * s.form.size();
  for (const auto& m : s.materials) size += 72 + m.file_name.size() + m.id.size();
  out.reserve(size);  // one allocation: themes offer dozens of materials
  out += "{\"applicant\":{\"id\":";
  append_quoted<true>(out, s.applicant.id);
  out += ",\"kind\":";
  append_int(out, static_cast<int>(s.applicant.kind));
  out += ",\"name\":";
  append_quoted<true>(out, s.applicant.name);
  out += "},\"form\":";
  out += s.form.empty() ? std::string("{}") : form_json(s.form).dump();
  out += ",\"materials\":[";
  for (std::size_t i = 0; i < s.materials.size(); ++i) {
    // Written straight into room made for it (a theme offers dozens).
    const OfferedMaterial& m = s.materials[i];
    const std::size_t at = out.size();
    out.resize(at + 64 + quoted_bound(m.file_name) + quoted_bound(m.id));  // keys and two numbers: at most 64
    char* p = out.data() + at;
    char* const end = out.data() + out.size();
    auto put = [&](std::string_view text) {
      std::memcpy(p, text.data(), text.size());
      p += text.size();
    };
    put(i ? ",{\"bytes\":" : "{\"bytes\":");
    p = std::to_chars(p, end, m.bytes).ptr;
    put(",\"file\":");
    p = put_quoted<true>(p, m.file_name);
    put(",\"form\":");
    p = std::to_chars(p, end, static_cast<int>(m.form)).ptr;
    put(",\"id\":");
    p = put_quoted<true>(p, m.id);
    *p++ = '}';
    out.resize(static_cast<std::size_t>(p - out.data()));
  }
  out += "],\"target\":";
  append_quoted<true>(out, s.target);
  out += theme ? ",\"theme\":true,\"version\":" : ",\"theme\":false,\"version\":";
  append_int(out, version);
  out += '}';
  return out;
}

Submission decode_submission(const std::string& text, bool& theme, int& version, int& rules) {
  const json j = json_fields::parse(text, "the submission");
  Submission s;
  theme = flag_of(j, "theme", false);
  version = whole(j, "version", 1);
  if (version < 1) {
    throw Error(ErrorCode::invalid_input,
                fmt::format("the submission names {} {} version {}; versions are whole numbers from 1",
                            theme ? "theme" : "item", text_of(j, "target"), version));
  }
  rules = whole(j, "rules", 1);  // written since the second rules
  if (rules < 1 || rules > current_rules) {
    throw Error(ErrorCode::invalid_input, fmt::format("the submission: rules {} are not rules this engine knows (1..{})",
                                                      rules, current_rules));
  }
  s.target = text_of(j, "target");
  const json& a = object_of(j, "applicant");
  s.applicant = Applicant{kind_of(a, "kind", ApplicantKind::natural_person, last_of<ApplicantKind>),
                          text_of(a, "id"), text_of(a, "name")};
  s.form = form_from(object_of(j, "form"));
  s.materials = materials_from(list_of(j, "materials"));
  return s;
}

std::string encode_action(const Action& a) {
  // Hand-written, written straight into room sized for it: this runs for
  // every action and nlohmann's tree is slow here. What is rare (a limit, a
  // form, materials) is made first.
  const std::string limit = a.limit ? a.limit->to_string() : std::string();
  const std::string form = a.form.empty() ? std::string() : form_json(a.form).dump();
  const std::string materials = a.materials.empty() ? std::string() : materials_json(a.materials).dump();
  std::size_t size = 192 + quoted_bound(a.actor.user) + quoted_bound(a.target) + quoted_bound(a.comment) +
                     quoted_bound(limit) + form.size() + materials.size();  // keys and numbers: < 192
  for (const auto& r : a.actor.roles) size += quoted_bound(r) + 1;
  for (const auto& d : a.actor.departments) size += quoted_bound(d) + 1;
  std::string out(size, '\0');
  char* p = out.data();
  char* const end = out.data() + out.size();
  auto put = [&](std::string_view text) {
    std::memcpy(p, text.data(), text.size());
    p += text.size();
  };
  auto number = [&](auto v) { p = std::to_chars(p, end, v).ptr; };
  auto list = [&](std::string_view name, const std::vector<std::string>& items) {
    if (items.empty()) return;
    put(name);
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i) *p++ = ',';
      p = put_quoted<false>(p, items[i]);
    }
    *p++ = ']';
  };
  put("{\"kind\":");
  number(static_cast<int>(a.kind));
  put(",\"actor\":{\"kind\":");
  number(static_cast<int>(a.actor.kind));
  put(",\"user\":");
  p = put_quoted<false>(p, a.actor.user);
  list(",\"roles\":[", a.actor.roles);
  list(",\"departments\":[", a.actor.departments);
  *p++ = '}';
  if (a.task != 0) {
    put(",\"task\":");
    number(a.task);
  }
  if (!a.target.empty()) {
    put(",\"target\":");
    p = put_quoted<false>(p, a.target);
  }
  if (!a.comment.empty()) {
    put(",\"comment\":");
    p = put_quoted<false>(p, a.comment);
  }
  if (a.limit) {
    put(",\"limit\":");
    p = put_quoted<false>(p, limit);
  }
  if (a.rating != 0) {
    put(",\"rating\":");
    number(a.rating);
  }
  if (!form.empty()) {
    put(",\"form\":");
    put(form);
  }
  if (!materials.empty()) {
    put(",\"materials\":");
    put(materials);
  }
  *p++ = '}';
  out.resize(static_cast<std::size_t>(p - out.data()));
  return out;
}

Action decode_action(const std::string& text, CaseId id) {
  const json j = json_fields::parse(text, "the action");
  Action a;
  a.case_id = id;
  a.kind = kind_of(j, "kind", ActionKind::accept, last_of<ActionKind>);
  const json& actor = object_of(j, "actor");
  a.actor.kind = kind_of(actor, "kind", Actor::Kind::staff, last_of<Actor::Kind>);
  a.actor.user = text_of(actor, "user");
  a.actor.roles = texts_of(actor, "roles");
  a.actor.departments = texts_of(actor, "departments");
  a.task = whole(j, "task", TaskId{0});
  a.target = text_of(j, "target");
  a.comment = text_of(j, "comment");
  if (const json* limit = field(j, "limit")) {
    a.limit = parse_time_limit(json_fields::text_value(*limit, "limit"));
    if (!a.limit) json_fields::bad_field("limit", *limit, "a time limit");
  }
  a.rating = whole(j, "rating", 0);
  if (const json* form = object_if_any(j, "form")) a.form = form_from(*form);
  if (const json* materials = list_if_any(j, "materials")) a.materials = materials_from(*materials);
  return a;
}

std::string encode_step_result(const StepResult& r) {
  json j = {{"ok", r.ok}, {"decision", static_cast<int>(r.decision)}};
  if (!r.message.empty()) j["message"] = r.message;
  if (!r.form.empty()) j["form"] = form_json(r.form);
  return j.dump();
}

StepResult decode_step_result(const std::string& text) {
  const json j = json_fields::parse(text, "the step result");
  StepResult r;
  r.ok = flag_of(j, "ok", true);
  r.decision = kind_of(j, "decision", Decision::approved, last_of<Decision>);
  r.message = text_of(j, "message");
  if (const json* form = object_if_any(j, "form")) r.form = form_from(*form);
  return r;
}

std::string_view frame_item(const CaseSnapshot& s, std::uint16_t frame) {
  const Frame& f = s.frames[frame];
  if (f.parent < 0) return s.is_theme ? std::string_view() : std::string_view(*s.target);
  const Frame& p = s.frames[static_cast<std::size_t>(f.parent)];
  for (const auto& t : s.tokens) {
    if (t.id == f.parent_token && t.frame == f.parent) {
      const CompiledNode& n = p.flow->nodes[t.node];
      if (n.subflow_item) return n.subflow_item->code;
    }
  }
  for (const auto& n : p.flow->nodes) {
    if (n.subflow == f.flow && n.subflow_item) return n.subflow_item->code;
  }
  return {};
}

Case to_case(const CompiledCatalog&, const CaseSnapshot& s) {
  Case c;
  c.id = s.id;
  c.target = *s.target;
  c.is_theme = s.is_theme;
  c.target_version = s.target_version;
  if (!s.frames.empty()) {
    c.flow = s.frames[0].flow->def->id;
    c.flow_version = s.frames[0].flow->def->version;
  }
  c.applicant = s.applicant;
  c.form = s.form;
  c.materials = s.materials;
  c.status = s.status;
  c.outcome = s.outcome;
  c.version = s.version;
  c.submitted = s.submitted;
  c.finished = s.finished;
  c.error = s.extras->error;
  if (s.promised_clock) c.promised_due = s.promised_clock->due;
  if (s.statutory_clock) c.statutory_due = s.statutory_clock->due;
  c.clock_paused = s.paused;
  c.special_procedure = s.extras->special_kind;
  c.evaluation = s.extras->evaluation;
  c.follow_up = s.extras->follow_up;
  c.tasks.reserve(s.tasks.size());
  for (const auto& t : s.tasks) {
    const Node& def = *s.frames[t.frame].flow->nodes[t.node].def;
    Task out;
    out.id = t.id;
    out.node = def.id;
    out.name = def.name.empty() ? def.id : def.name;
    out.kind = def.kind;
    out.item = std::string(frame_item(s, t.frame));
    out.candidates = def.assignees;
    out.assigned_user = t.assigned_user();
    if (def.kind == NodeKind::countersign) out.slots = countersign_slots(def, t.added_signers());
    out.signatures = t.signatures();
    out.state = t.state;
    out.decision = t.decision;
    out.created = t.created;
    out.due = t.due;
    for (const auto& k : s.tokens) {
      if (k.task == t.id && k.clock) out.due = k.clock->due;
    }
    out.urges = t.urges;
    c.tasks.push_back(std::move(out));
  }
  return c;
}

std::vector<OpenTaskView> open_task_views(const CompiledCatalog&, const CaseSnapshot& s) {
  // Every open task is held by a live token (invariant_violation): the few
  // tokens name them, and the task list, dozens of records in a theme's
  // case spread over as many allocations, is not walked at every commit.
  // With each, the token's step clock: its due instant moves with
  // suspensions, the task record's does not (as in to_case).
  boost::container::small_vector<std::pair<TaskId, const Token*>, 16> held;
  for (const auto& k : s.tokens) {
    if (k.task != 0 && k.task <= s.tasks.size() && s.tasks[k.task - 1].state == TaskState::open) held.emplace_back(k.task, &k);
  }
  std::sort(held.begin(), held.end(), [](const auto& a, const auto& b) { return a.first < b.first; });  // in task order, as stores merge them
  held.erase(std::unique(held.begin(), held.end(), [](const auto& a, const auto& b) { return a.first == b.first; }), held.end());
  std::vector<OpenTaskView> out;
  out.reserve(held.size());
  for (const auto& [id, token] : held) {
    const TaskRecord& t = s.tasks[id - 1];
    const Node* def = s.frames[t.frame].flow->nodes[t.node].def;
    if (def->kind == NodeKind::automatic) continue;
    const Flow& flow = *s.frames[t.frame].flow->def;
    std::optional<Instant> due = t.due;
    if (token->clock) due = token->clock->due;
    out.push_back(OpenTaskView{t.id, def, frame_item(s, t.frame), flow.id, flow.version, t.node, t.assigned_user(),
                               t.added_signers(), t.created, due});
  }
#ifndef NDEBUG
  // Debug builds (the asan and dev presets run every test on them) check the
  // shortcut against the whole list.
  std::vector<TaskId> walked;
  for (const auto& t : s.tasks) {
    if (t.state == TaskState::open && s.frames[t.frame].flow->nodes[t.node].def->kind != NodeKind::automatic) walked.push_back(t.id);
  }
  assert(walked.size() == out.size() && "an open task without a live token");
  for (std::size_t i = 0; i < walked.size(); ++i) assert(walked[i] == out[i].task && "open tasks out of order");
#endif
  return out;
}

namespace {

// The warning instants of one clock under each rule (the rule's index;
// `no_instant` where the rule does not apply to the clock), in seconds.
// They depend on the rules, the calendar, the clock's due instant and
// limit, its pause, and whether it is a step's clock and a statutory one:
// nothing else (a suspension is in the due instant already).
constexpr std::size_t memo_rules = 8;  // more rules than this are not memoised
constexpr std::int64_t no_instant = std::numeric_limits<std::int64_t>::min();
using ClockInstants = std::array<std::int64_t, memo_rules>;

void compute_instants(const std::vector<WarningRule>& rules, const LimitClock& clock, const WorkingCalendar& cal,
                      bool step, bool statutory, std::int64_t* out) {
  for (std::size_t r = 0; r < rules.size(); ++r) {
    const WarningRule& rule = rules[r];
    out[r] = no_instant;
    if (rule.scope == (step ? RuleScope::case_limit : RuleScope::step_limit)) continue;
    // Statutory clocks only raise the red "exceeded" warnings.
    if (statutory && !(rule.used_share && *rule.used_share >= 1.0)) continue;
    std::optional<Instant> at;
    if (rule.used_share) at = cal.when_used(clock, *rule.used_share);
    if (rule.before_deadline) {
      at = cal.before(clock.due, static_cast<double>(rule.before_deadline->amount), rule.before_deadline->unit);
    }
    if (at) out[r] = at->time_since_epoch().count();
  }
}

// Every commit asks for its case's next due instant (Store::Commit::
// next_timer), so the same clocks' warning instants are asked for at every
// action: a small per-thread memo answers them, one lookup per clock, keyed
// by the serials of the catalog (its rules) and of the calendar, never
// reused, and by what the instants depend on. An entry also keeps the
// earliest of its instants: next_timer, for a clock that has warned of
// nothing yet, needs only that one.
struct ClockMemo {
  std::uint64_t catalog = 0;  // 0: empty
  std::uint64_t calendar = 0;
  std::int64_t due = 0;
  std::int64_t amount = 0;
  std::uint32_t shape = 0;  // unit and flags, one word (bytes compared apart stalled on a partial load)
  std::int64_t first = no_instant;  // the earliest of `at`, no_instant if none applies
  ClockInstants at;
};
constexpr std::size_t memo_slots = 4096;

// This thread's memo (found once per case, not once per clock: a
// thread_local in a shared library costs a call).
ClockMemo* clock_memo() {
  thread_local std::unique_ptr<ClockMemo[]> memo;
  if (!memo) memo = std::make_unique<ClockMemo[]>(memo_slots);
  return memo.get();
}

// The memo's entry for the clock (the reference is good until the next
// call: a later clock may take its slot).
const ClockMemo& clock_instants(ClockMemo* memo, const CompiledCatalog& catalog, const LimitClock& clock,
                                const WorkingCalendar& cal, bool step, bool statutory) {
  const std::int64_t due = clock.due.time_since_epoch().count();
  const std::uint32_t shape = static_cast<std::uint32_t>(clock.limit.unit) << 8 | (step ? 1u : 0u) | (statutory ? 2u : 0u) |
                              (clock.paused_at ? 4u : 0u);
  const std::uint64_t catalog_serial = catalog.serial();
  const std::uint64_t calendar_serial = cal.serial();
  std::uint64_t h = (catalog_serial * 0x9E3779B97F4A7C15ULL) ^ (static_cast<std::uint64_t>(due) * 0xC2B2AE3D27D4EB4FULL) ^
                    (calendar_serial * 0x165667B19E3779F9ULL) ^ (static_cast<std::uint64_t>(clock.limit.amount) << 12) ^ shape;
  h ^= h >> 29;
  ClockMemo& m = memo[h & (memo_slots - 1)];
  if (m.catalog == catalog_serial && m.calendar == calendar_serial && m.due == due && m.amount == clock.limit.amount &&
      m.shape == shape) {
    return m;
  }
  ClockInstants at;
  const auto& rules = catalog.rules();
  compute_instants(rules, clock, cal, step, statutory, at.data());  // may throw: the slot is untouched
  std::int64_t first = no_instant;
  for (std::size_t r = 0; r < rules.size(); ++r) {
    if (at[r] != no_instant && (first == no_instant || at[r] < first)) first = at[r];
  }
  m = ClockMemo{catalog_serial, calendar_serial, due, clock.limit.amount, shape, first, at};
  return m;
}

// Calls visit(const Deadline&) for every deadline of the case: a template,
// so that next_timer, run at every commit, inlines its comparison. With
// `earliest`, a clock's warnings may be visited as their earliest alone
// (all next_timer asks for); a state handed in to change (`Snapshot` not
// const) has its tokens' warning notes read and brought up to date.
template <bool earliest = false, class Snapshot, class Visit>
void visit_deadlines(const CompiledCatalog& catalog, Snapshot& s, Visit&& visit) {
  constexpr bool noting = earliest && !std::is_const_v<Snapshot>;
  const CaseExtras& x = *s.extras;
  if (x.follow_up && !x.follow_up->closed && !x.follow_up_warned) {
    visit(Deadline{x.follow_up->due, Deadline::Kind::follow_up, 0, 0, false});
  }
  if (s.status == CaseStatus::finished || s.status == CaseStatus::draft || s.frames.empty()) return;
  for (const auto& t : s.tokens) {
    if (t.wait == Wait::timer) visit(Deadline{t.due, Deadline::Kind::timer, t.id, 0, false});
  }
  if (x.special_until) visit(Deadline{*x.special_until, Deadline::Kind::special_end, 0, 0, false});
  if (s.paused) return;  // stopped clocks fire nothing
  const auto& rules = catalog.rules();
  auto warned = [&](std::uint32_t key, std::uint16_t rule) {
    return std::find(s.warned.begin(), s.warned.end(), std::pair<std::uint32_t, std::uint16_t>{key, rule}) != s.warned.end();
  };
  ClockMemo* const memo = rules.size() <= memo_rules ? clock_memo() : nullptr;
  ClockMemo computed{};
  // What `computed` was computed for: the branches of a parallel section
  // start their steps' clocks together, and a clock like the one before
  // needs no look in the memo.
  struct Shape {
    const WorkingCalendar* cal = nullptr;
    std::int64_t due = 0;
    std::int64_t amount = 0;
    TimeUnit unit{};
    bool step = false, statutory = false, paused = false;
    bool operator==(const Shape&) const = default;
  } last;
  std::vector<std::int64_t> many;  // more rules than the memo holds
  // `note`: the token's note, to read when `noted` (it fits the clock),
  // else to make.
  auto schedule = [&](const LimitClock& clock, const WorkingCalendar& cal, std::uint32_t key, bool step, bool statutory,
                      WarnNote* note, bool noted) {
    const std::int64_t* at = nullptr;
    std::int64_t first = no_instant;
    const Shape shape{&cal, clock.due.time_since_epoch().count(), clock.limit.amount, clock.limit.unit, step, statutory,
                      clock.paused_at.has_value()};
    auto instants = [&] {
      if (!(shape == last)) {
        computed = clock_instants(memo, catalog, clock, cal, step, statutory);
        last = shape;
      }
      at = computed.at.data();
      first = computed.first;
    };
    if (memo != nullptr) {
      if (noted) {
        first = note->first;  // `at` only if a rule has warned already
      } else {
        instants();
        if (note != nullptr) *note = WarnNote::of(catalog.serial(), cal, clock, first);
      }
      if (first == no_instant) return;  // no rule applies to the clock
    } else {
      many.resize(rules.size());
      compute_instants(rules, clock, cal, step, statutory, many.data());
      at = many.data();
    }
    // The rules this clock has warned of: one look through the case's
    // list (which grows with its warnings), not one per rule.
    std::uint64_t done = 0;
    const bool few = rules.size() <= 64;
    if (few) {
      for (const auto& [k, id] : s.warned) {
        if (k == key && ((id & 0x8000) != 0) == statutory && (id & 0x7FFF) < 64) done |= std::uint64_t{1} << (id & 0x7FFF);
      }
    }
    if (earliest && memo != nullptr && done == 0) {
      visit(Deadline{Instant{std::chrono::seconds{first}}, Deadline::Kind::warning, key, 0, statutory});
      return;
    }
    if (at == nullptr) instants();
    for (std::uint16_t r = 0; r < rules.size(); ++r) {
      if (at[r] == no_instant) continue;
      const std::uint16_t id = static_cast<std::uint16_t>(statutory ? r + 0x8000 : r);
      const bool already = few ? ((done >> r) & 1) != 0 : warned(key, id);
      if (!already) visit(Deadline{Instant{std::chrono::seconds{at[r]}}, Deadline::Kind::warning, key, id, statutory});
    }
  };
  const WorkingCalendar& root = catalog.calendar_of(*s.frames[0].flow);
  if (s.promised_clock) schedule(*s.promised_clock, root, 0, false, false, nullptr, false);
  if (s.statutory_clock) schedule(*s.statutory_clock, root, 0, false, true, nullptr, false);
  for (auto& t : s.tokens) {
    if (!t.clock) continue;
    const CompiledFlow& cf = *s.frames[t.frame].flow;
    const WorkingCalendar& cal = catalog.calendar_of(cf);
    WarnNote* note = nullptr;
    bool noted = false;
    if constexpr (noting) {
      note = &t.note;
      noted = memo != nullptr && note->fits(catalog.serial(), cal, *t.clock);
    }
    // Most clocks are as their note has them and have warned of nothing:
    // their earliest instant, without the general path's set-up.
    if (noted && std::none_of(s.warned.begin(), s.warned.end(), [&](const auto& w) { return w.first == t.id && (w.second & 0x8000) == 0; })) {
      if (note->first != no_instant) visit(Deadline{Instant{std::chrono::seconds{note->first}}, Deadline::Kind::warning, t.id, 0, false});
    } else {
      schedule(*t.clock, cal, t.id, true, false, note, noted);
    }
    if (cf.nodes[t.node].times_out && !t.timed_out) {
      visit(Deadline{t.clock->due, Deadline::Kind::timeout, t.id, 0, false});
    }
  }
}

}  // namespace

void for_each_deadline(const CompiledCatalog& catalog, const CaseSnapshot& s,
                       const std::function<void(const Deadline&)>& visit) {
  visit_deadlines(catalog, s, visit);
}

std::optional<Instant> next_timer_noting(const CompiledCatalog& catalog, CaseSnapshot& s) {
  std::optional<Instant> best;
  visit_deadlines<true>(catalog, s, [&](const Deadline& d) {
    if (!best || d.at < *best) best = d.at;
  });
#ifndef NDEBUG
  // Debug builds (the asan and dev presets) check the notes and the earliest-
  // only shortcut against every deadline, rule by rule.
  std::optional<Instant> every;
  for_each_deadline(catalog, s, [&](const Deadline& d) {
    if (!every || d.at < *every) every = d.at;
  });
  assert(best == every && "a token's warning note is stale, or a memo's earliest instant wrong");
#endif
  return best;
}

std::string invariant_violation(const CaseSnapshot& s) {
  for (const auto& t : s.tasks) {
    if (t.state != TaskState::open) continue;
    if (s.status == CaseStatus::finished) return fmt::format("finished, yet task {} is open", t.id);
    const bool held = std::any_of(s.tokens.begin(), s.tokens.end(), [&](const Token& k) { return k.task == t.id; });
    if (!held) return fmt::format("open task {} has no live token", t.id);
  }
  for (const auto& k : s.tokens) {
    if (s.status == CaseStatus::finished) return fmt::format("finished, yet token {} is live", k.id);
    if (k.frame >= s.frames.size() || s.frames[k.frame].done) return fmt::format("token {} sits in an ended flow", k.id);
    if (k.wait == Wait::task || k.wait == Wait::handler) {
      if (k.task == 0 || k.task > s.tasks.size() || s.tasks[k.task - 1].state != TaskState::open) {
        return fmt::format("token {} waits on task {}, which is not open", k.id, k.task);
      }
    }
    if ((k.wait == Wait::none || k.wait == Wait::join) && s.status != CaseStatus::error) {
      return fmt::format("token {} is stuck", k.id);
    }
  }
  if (s.status == CaseStatus::finished && !s.outcome) return "finished without an outcome";
  return {};
}

std::string dump(const CaseSnapshot& s) {
  json j;
  j["id"] = s.id;
  j["target"] = *s.target;
  j["theme"] = s.is_theme;
  j["status"] = std::string(to_string(s.status));
  j["outcome"] = s.outcome ? std::string(to_string(*s.outcome)) : std::string();
  j["version"] = s.version;
  j["rules"] = s.rules;
  j["seq"] = s.seq;
  j["form"] = form_json(s.form);
  j["materials"] = materials_json(s.materials);
  j["error"] = s.extras->error;
  j["finished"] = s.finished ? s.finished->time_since_epoch().count() : -1;
  json frames = json::array();
  for (const auto& f : s.frames) {
    frames.push_back({f.flow->def->id, f.flow->def->version, f.parent, f.parent_token, f.done, static_cast<int>(f.outcome)});
  }
  j["frames"] = frames;
  json tokens = json::array();
  for (const auto& t : s.tokens) {
    tokens.push_back({t.id, t.frame, t.node, static_cast<int>(t.wait), t.task, t.child, t.due.time_since_epoch().count(), t.in_edge, static_cast<int>(t.decision)});
  }
  j["tokens"] = tokens;
  json joins = json::array();
  for (const auto& w : s.joins) joins.push_back({w.frame, w.node, w.expected, w.arrived, w.approvals, w.rejections});
  j["joins"] = joins;
  json tasks = json::array();
  for (const auto& t : s.tasks) {
    json sigs = json::array();
    for (const auto& g : t.signatures()) sigs.push_back({g.user, g.slot, static_cast<int>(g.decision)});
    tasks.push_back({t.id, t.frame, t.node, static_cast<int>(t.state), static_cast<int>(t.decision),
                     t.created.time_since_epoch().count(), t.due ? t.due->time_since_epoch().count() : -1,
                     t.assigned_user(), t.added_signers(), sigs, t.urges, t.failed, t.returned});
  }
  j["tasks"] = tasks;
  j["next"] = {s.next_token, s.next_task};
  j["hash"] = to_hex(s.last_hash);
  auto clock_json = [](const std::optional<LimitClock>& c) -> json {
    if (!c) return nullptr;
    return {c->started.time_since_epoch().count(), c->due.time_since_epoch().count(),
            c->paused_at ? c->paused_at->time_since_epoch().count() : -1, c->suspended.count(), c->limit.to_string()};
  };
  j["clocks"] = {clock_json(s.promised_clock), clock_json(s.statutory_clock)};
  json token_clocks = json::array();
  for (const auto& t : s.tokens) token_clocks.push_back({clock_json(t.clock), t.timed_out});
  j["token_clocks"] = token_clocks;
  j["warned"] = s.warned;
  const CaseExtras& x = *s.extras;
  j["evaluation"] = x.evaluation ? json{x.evaluation->rating, x.evaluation->comment} : json(nullptr);
  j["follow_up"] = x.follow_up ? json{x.follow_up->due.time_since_epoch().count(), x.follow_up->closed.has_value(),
                                      x.follow_up->outcome, x.follow_up_warned}
                               : json(nullptr);
  j["special"] = {x.special_kind, x.special_until ? x.special_until->time_since_epoch().count() : -1, s.paused};
  return j.dump();
}

namespace {
// The flows the history says the case's frames started on, in order.
FlowPins recorded_flows(const std::vector<Event>& events) {
  FlowPins pins;
  for (const auto& e : events) {
    const bool starts = (e.kind == EventKind::submitted && e.to == "running") ||
                        (e.kind == EventKind::resubmitted && e.from == "draft") || e.kind == EventKind::subflow_started;
    if (!starts) continue;
    std::pair<std::string, int> pin{std::string(), 0};
    if (e.payload.find("\"flow_version\"") != std::string::npos) {
      const json j = json_fields::parse(e.payload, "a frame's start");
      pin = {text_of(j, "flow"), whole(j, "flow_version", 0)};
    }
    pins.flows.push_back(std::move(pin));
  }
  return pins;
}
}  // namespace

std::shared_ptr<CaseSnapshot> replay(const CompiledCatalog& catalog, CaseId id, const std::vector<Event>& events) {
  auto s = std::make_shared<CaseSnapshot>();
  s->id = id;
  FlowPins pins = recorded_flows(events);
  for (const auto& e : events) {
    switch (e.kind) {
      case EventKind::submitted: {
        bool theme = false;
        int version = 1;
        int rules = 1;
        Submission sub = decode_submission(e.payload, theme, version, rules);
        s->is_theme = theme;
        s->target_version = version;
        s->rules = static_cast<std::uint8_t>(rules);  // the rules the case ran under
        Machine m(catalog, *s, e.at, e.actor);
        m.pin_flows(&pins);
        m.submit(std::move(sub), e.to == "draft");
        break;
      }
      case EventKind::acted: {
        Machine m(catalog, *s, e.at, e.actor);
        m.pin_flows(&pins);
        m.act(decode_action(e.payload, id));
        break;
      }
      case EventKind::handler_ran: {
        Machine m(catalog, *s, e.at, e.actor);
        m.pin_flows(&pins);
        m.handler_result(e.task, decode_step_result(e.payload));
        break;
      }
      case EventKind::timer_fired: {
        Machine m(catalog, *s, e.at, e.actor);
        m.pin_flows(&pins);
        m.fire_timers();
        break;
      }
      default:
        break;  // derived events are re-created by the inputs
    }
  }
  return s;
}

CaseHeader header_of(const CaseSnapshot& s) {
  return CaseHeader{*s.target, s.is_theme, s.target_version, s.status, s.submitted, s.finished};
}

}  // namespace onestop::core
