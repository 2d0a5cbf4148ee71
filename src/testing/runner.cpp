// Runs flow-test scripts: each test on a fresh in-memory engine with a
// ManualClock, every step through the public Engine API, every expectation
// compared and every difference reported with the script's file:line.

#include "common/text_file.hpp"
#include "core/application.hpp"
#include "testing/script.hpp"

#include <onestop/calendar.hpp>
#include <onestop/definitions.hpp>
#include <onestop/engine.hpp>
#include <onestop/flowtest.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <set>
#include <tuple>

namespace onestop {

std::string FlowTestFailure::to_string() const {
  if (where.file.empty()) return message;
  if (where.line <= 0) return fmt::format("{}: {}", where.file, message);
  return fmt::format("{}:{}: {}", where.file, where.line, message);
}

std::size_t FlowTestReport::passed() const noexcept {
  return static_cast<std::size_t>(std::count_if(results.begin(), results.end(), [](const auto& r) { return r.passed(); }));
}

std::size_t FlowTestReport::failed() const noexcept { return results.size() - passed() + malformed_scripts; }

std::string FlowTestReport::summary() const { return fmt::format("{} passed, {} failed", passed(), failed()); }

void FlowTestReport::merge(FlowTestReport other) {
  for (auto& r : other.results) results.push_back(std::move(r));
  for (auto& e : other.errors) errors.push_back(std::move(e));
  malformed_scripts += other.malformed_scripts;
}

namespace flowtest {
namespace {

// Before what an exception other than onestop::Error says: the engine or
// the runner broke, not the script or the definitions.
constexpr const char* kInternalError = "internal error (a bug in onestop, please report it): ";

// Thrown to end a test after a step that could not be done.
struct StepFailed {};

// The certificate library of a script: everything, nothing, or the listed
// materials (by id or licence type).
class Library final : public CertificateProvider {
 public:
  Library(Certificates mode, std::vector<std::string> listed) : mode_(mode), listed_(std::move(listed)) {}
  std::optional<OfferedMaterial> fetch(const Applicant&, const Material& m) override {
    const bool has = mode_ == Certificates::all ||
                     (mode_ == Certificates::listed &&
                      std::any_of(listed_.begin(), listed_.end(),
                                  [&](const std::string& x) { return x == m.id || (!m.licence_type.empty() && x == m.licence_type); }));
    if (!has) return std::nullopt;
    return OfferedMaterial{m.id, m.id + ".ofd", 1000, MaterialForm::electronic};
  }

 private:
  Certificates mode_;
  std::vector<std::string> listed_;
};

// An automatic step's handler that reports what the script says.
class ScriptedHandler final : public StepHandler {
 public:
  ScriptedHandler(std::string name, const std::map<std::string, HandlerSpec>* table)
      : name_(std::move(name)), table_(table) {}
  StepResult run(const Case&, const Task&) override {
    HandlerSpec spec;
    if (auto it = table_->find(name_); it != table_->end()) spec = it->second;
    return StepResult{spec.ok, spec.decision, spec.message, spec.form};
  }

 private:
  std::string name_;
  const std::map<std::string, HandlerSpec>* table_;
};

// A task as scripts name it: `node`, or `item/node` inside a theme.
std::string label(const Task& t, const Case& c) {
  return t.item.empty() || (!c.is_theme && t.item == c.target) ? t.node : t.item + "/" + t.node;
}

std::string labels(const std::vector<std::string>& list) {
  return list.empty() ? "none" : fmt::format("[{}]", fmt::join(list, ", "));
}

std::string open_labels(const Case& c) {
  std::vector<std::string> out;
  for (const Task* t : c.open_tasks()) out.push_back(label(*t, c));
  std::sort(out.begin(), out.end());
  return labels(out);
}

// Every deficiency of a pre-review notice on one line.
std::string notice_text(const PreReviewNotice& n) {
  std::vector<std::string> out;
  for (const auto& d : n.deficiencies) out.push_back(d.message.empty() ? d.material : d.message);
  return fmt::format("{}", fmt::join(out, "; "));
}

std::string outcome_text(const std::optional<Outcome>& o) { return o ? std::string(to_string(*o)) : "none"; }

class TestRun {
 public:
  TestRun(const Script& script, const Test& test, std::shared_ptr<const Catalog> catalog, FlowTestResult& result)
      : script_(script), test_(test), catalog_(std::move(catalog)), result_(result), handlers_(script.handlers) {
    clock_ = std::make_shared<ManualClock>(test.start);
    EngineOptions o;
    o.store = open_memory_store();
    o.clock = clock_;
    o.certificates = std::make_shared<Library>(script.certificates, script.certificate_list);
    engine_ = open_engine(catalog_, o);
    std::set<std::string> names;
    for (const auto& f : catalog_->flows) {
      for (const auto& n : f.nodes) {
        if (n.kind == NodeKind::automatic) names.insert(n.handler);
      }
    }
    for (const auto& name : names) engine_->register_handler(name, std::make_shared<ScriptedHandler>(name, &handlers_));
  }

  void run() {
    try {
      for (const auto& step : test_.steps) {
        // The engine's refusal of what a step does (a clock moved past the
        // calendars' years, say) is reported at that step, not at the test.
        try {
          std::visit([&](const auto& body) { this->step(step, body); }, step.body);
        } catch (const Error& e) {
          stop(step.where, fmt::format("the step could not run: {}", e.what()));
        }
      }
    } catch (const StepFailed&) {
      return;  // reported; the later steps would only repeat the damage
    }
    for (const auto& [name, id] : cases_) {
      try {
        const HistoryCheck check = engine_->verify(id);
        if (!check.ok) {
          fail(test_.where, fmt::format("case {}: the history does not verify at entry {}: {}", name,
                                        check.first_bad_seq, check.message));
        }
      } catch (const Error& e) {
        fail(test_.where, fmt::format("case {}: verifying the history failed: {}", name, e.what()));
      } catch (const std::exception& e) {
        fail(test_.where, fmt::format("case {}: verifying the history failed: {}{}", name, kInternalError, e.what()),
             true);
      }
    }
  }

 private:
  void fail(const SourceLocation& where, std::string message, bool internal = false) {
    result_.failures.push_back(FlowTestFailure{where, std::move(message), internal});
  }
  [[noreturn]] void stop(const SourceLocation& where, std::string message) {
    fail(where, std::move(message) + " (the rest of the test is skipped)");
    throw StepFailed{};
  }

  WorkingCalendar calendar() {
    try {
      if (script_.calendar) return WorkingCalendar::resolve(*catalog_, *script_.calendar);
      if (!cases_.empty()) {
        const Case c = engine_->get(cases_.begin()->second);
        if (const Flow* f = catalog_->find_flow(c.flow, c.flow_version); f && !f->calendar.empty()) {
          return WorkingCalendar::resolve(*catalog_, f->calendar);
        }
      }
      if (!catalog_->default_calendar.empty()) return WorkingCalendar::resolve(*catalog_, "");
    } catch (const Error&) {
      // fall back to the built-in calendar, as the engine does
    }
    return WorkingCalendar();
  }

  std::string when(Instant t) { return calendar().format_local(t); }

  CaseId case_id(const std::string& name, const SourceLocation& where) {
    auto it = cases_.find(name);
    if (it == cases_.end()) stop(where, fmt::format("case {} was not created (its submission failed)", name));
    return it->second;
  }

  Actor actor(const ActorRef& ref, const Applicant& applicant) {
    Actor a;
    if (ref.as == "applicant") {
      a = Actor::applicant_of(applicant.id);
    } else if (ref.as == "system") {
      a = Actor::system_actor();
    } else if (auto it = script_.actors.find(ref.as); it != script_.actors.end()) {
      a = Actor{it->second.kind, ref.as, it->second.roles, it->second.departments};
    } else {
      a = Actor::staff_member(ref.as);
    }
    if (ref.roles) a.roles = *ref.roles;
    if (ref.departments) a.departments = *ref.departments;
    return a;
  }

  std::vector<const Item*> items_of(const std::string& target) {
    std::vector<const Item*> out;
    if (const Theme* t = catalog_->find_theme(target)) {
      for (const auto& code : catalog_->theme_items(*t)) {
        if (const Item* it = catalog_->find_item(code)) out.push_back(it);
      }
    } else if (const Item* it = catalog_->find_item(target)) {
      out.push_back(it);
    }
    return out;
  }

  std::vector<OfferedMaterial> materials(const Materials& spec, const std::string& target) {
    const auto items = items_of(target);
    std::vector<OfferedMaterial> out;
    std::set<std::string> seen;
    // Unless the script says, a file and form that suit every item taking
    // the material from the applicant (pre-review checks it against each).
    auto offer = [&](const MaterialSpec& s) {
      const core::MaterialListing l = core::material_listing(s.id, items);
      OfferedMaterial m;
      m.id = s.id;
      m.file_name = s.file.empty() ? s.id + "." + l.file_type : s.file;
      m.bytes = s.bytes;
      m.form = s.form ? *s.form : (l.listed ? l.form : MaterialForm::electronic);
      out.push_back(std::move(m));
    };
    if (spec.all) {
      for (const Item* it : items) {
        for (const auto& m : it->materials) {
          if (m.source == MaterialSource::applicant && seen.insert(m.id).second) offer(MaterialSpec{m.id, {}, 1000, {}});
        }
      }
    }
    for (const auto& s : spec.list) offer(s);
    return out;
  }

  // Whether task `t` of case `c` is the one `ref` names.
  bool matches(const Task& t, const TaskRef& ref, const Case& c) {
    if (ref.id != 0) return t.id == ref.id;
    if (t.node != ref.node) return false;
    if (ref.prefix.empty() || t.item == ref.prefix) return true;
    const Flow* root = catalog_->find_flow(c.flow, c.flow_version);
    const Node* n = root ? root->find_node(ref.prefix) : nullptr;
    return n != nullptr && n->kind == NodeKind::subflow && !n->item.empty() && n->item == t.item;
  }

  // The task an action names: the one open task that matches, else the
  // latest task that matches (to test refusals on finished tasks).
  TaskId resolve(const TaskRef& ref, const std::string& who, const Case& c, const SourceLocation& where,
                 bool refusal_expected) {
    std::vector<const Task*> open;
    for (const Task* t : c.open_tasks()) {
      if (matches(*t, ref, c)) open.push_back(t);
    }
    if (open.size() == 1) return open.front()->id;
    if (open.size() > 1) {
      std::vector<std::string> which;
      for (const Task* t : open) which.push_back(fmt::format("{} (task {})", label(*t, c), t->id));
      stop(where, fmt::format("task '{}' is ambiguous: open tasks {}; name the item, e.g. 'ITEM/{}'", ref.text,
                              labels(which), ref.node));
    }
    for (auto it = c.tasks.rbegin(); it != c.tasks.rend(); ++it) {
      if (matches(*it, ref, c)) return it->id;
    }
    // No such task at all: an action expected to be refused goes to the
    // engine with a task id the case does not have (not_found).
    if (refusal_expected) return ref.id != 0 ? ref.id : std::numeric_limits<TaskId>::max();
    stop(where, fmt::format("case {} has no task '{}'; open tasks: {}", who, ref.text, open_labels(c)));
  }

  void step(const Step& step, const Submit& s) {
    Submission sub;
    sub.target = s.target;
    sub.applicant = s.applicant;
    sub.form = s.form;
    sub.materials = materials(s.materials, s.target);
    sub.keep_draft_if_deficient = s.keep_draft;
    const Actor who = s.actor ? actor(*s.actor, s.applicant) : Actor::applicant_of(s.applicant.id);
    SubmitResult r;
    try {
      r = engine_->submit(sub, who);
    } catch (const Error& e) {
      if (s.expect_error && *s.expect_error == e.code()) return;
      if (s.expect_error) {
        stop(step.where, fmt::format("submit {}: expected refusal with {}, got {}: {}", s.case_name,
                                     to_string(*s.expect_error), to_string(e.code()), e.what()));
      }
      stop(step.where, fmt::format("submit {}: refused with {}: {}", s.case_name, to_string(e.code()), e.what()));
    }
    if (s.expect_error) {
      // Pre-review's deficiencies refuse a submission without an error: a
      // notice (expect_notice), not a refusal with a code.
      stop(step.where, r.case_id ? fmt::format("submit {}: expected refusal with {}, but the submission went through "
                                               "as case {}",
                                               s.case_name, to_string(*s.expect_error), *r.case_id)
                                 : fmt::format("submit {}: expected refusal with {}, but pre-review refused it with a "
                                               "notice ({}); expect that with expect_notice",
                                               s.case_name, to_string(*s.expect_error), r.notice.to_string()));
    }
    if (r.case_id) cases_[s.case_name] = *r.case_id;
    if (s.expect_notice) {
      std::vector<std::string> got;
      for (const auto& d : r.notice.deficiencies) got.push_back(d.material);
      std::sort(got.begin(), got.end());
      got.erase(std::unique(got.begin(), got.end()), got.end());
      auto want = *s.expect_notice;
      std::sort(want.begin(), want.end());
      if (got != want) {
        fail(step.where, fmt::format("submit {}: pre-review notice: expected deficient materials {}, got {}{}",
                                     s.case_name, labels(want), labels(got),
                                     r.notice.ok() ? "" : " (" + notice_text(r.notice) + ")"));
      }
      return;
    }
    if (!r.notice.ok()) {
      const std::string msg = fmt::format("submit {}: pre-review found deficiencies: {}", s.case_name, notice_text(r.notice));
      if (!r.case_id) stop(step.where, msg);
      fail(step.where, msg);
    }
  }

  void step(const Step& step, const Act& a) {
    const CaseId id = case_id(a.case_name, step.where);
    const Case before = engine_->get(id);
    Action action;
    action.kind = a.kind;
    action.case_id = id;
    action.actor = actor(a.actor, before.applicant);
    action.target = a.target;
    action.limit = a.limit;
    action.rating = a.rating;
    action.comment = a.comment;
    action.form = a.form;
    action.materials = materials(a.materials, before.target);
    if (a.task) action.task = resolve(*a.task, a.case_name, before, step.where, a.expect_error.has_value());
    const std::string what =
        fmt::format("{} {}{} as {}", to_string(a.kind), a.case_name, a.task ? " task " + a.task->text : "",
                    action.actor.user);
    try {
      engine_->act(action);
    } catch (const Error& e) {
      if (a.expect_error && *a.expect_error == e.code()) {
        const Case after = engine_->get(id);
        if (after.version != before.version) {
          fail(step.where, fmt::format("{}: refused with {} as expected, but the case changed (version {} -> {})", what,
                                       to_string(e.code()), before.version, after.version));
        }
        return;
      }
      if (a.expect_error) {
        fail(step.where, fmt::format("{}: expected refusal with {}, got {}: {}", what, to_string(*a.expect_error),
                                     to_string(e.code()), e.what()));
        return;
      }
      stop(step.where, fmt::format("{}: refused with {}: {}", what, to_string(e.code()), e.what()));
    }
    if (a.expect_error) {
      stop(step.where, fmt::format("{}: expected refusal with {}, but the action was accepted", what,
                                   to_string(*a.expect_error)));
    }
  }

  void step(const Step& step, const Advance& a) {
    const Instant now = clock_->now();
    if (a.to) {
      if (*a.to < now) {
        stop(step.where, fmt::format("advance to {}: the clock is already at {}", when(*a.to), when(now)));
      }
      clock_->set(*a.to);
      return;
    }
    // To the instant a limit of this length started now runs out, counted as
    // the engine counts limits: "advance: 3 working days" after a step with
    // a 3-working-day limit lands exactly on its due instant.
    clock_->set(calendar().due(now, *a.by));
  }

  void step(const Step& step, const Tick& t) {
    const std::size_t fired = engine_->tick(clock_->now());
    if (t.fired && *t.fired != fired) {
      fail(step.where, fmt::format("tick at {}: expected {} to fire, {} fired", when(clock_->now()), *t.fired, fired));
    }
  }

  void step(const Step&, const SetHandlers& h) {
    for (const auto& [name, spec] : h.handlers) handlers_[name] = spec;
  }

  bool event_matches(const Event& e, const EventExpect& x, const Case& c) {
    if (x.kind && e.kind != *x.kind) return false;
    if (x.node) {
      if (x.node->id != 0) {
        if (e.task != x.node->id) return false;
      } else if (e.node != x.node->node) {
        return false;
      } else if (!x.node->prefix.empty()) {
        const Task* t = e.task != 0 ? c.find_task(e.task) : nullptr;
        if (t == nullptr || !matches(*t, *x.node, c)) return false;
      }
    }
    if (x.actor && e.actor != *x.actor) return false;
    if (x.to && e.to != *x.to) return false;
    if (x.payload && e.payload.find(*x.payload) == std::string::npos) return false;
    return true;
  }

  static std::string node_text(const Event& e, const Case& c) {
    if (e.task != 0) {
      if (const Task* t = c.find_task(e.task)) return label(*t, c);
    }
    return e.node.empty() ? "case" : e.node;
  }

  // An entry as the failure shows it: kind, task or node and the state it
  // went to, and the fields the expectation names (actor, payload).
  static std::string event_text(const Event& e, const Case& c, const EventExpect* x = nullptr) {
    std::string out = fmt::format("{} {}", to_string(e.kind), node_text(e, c));
    if (!e.to.empty()) out += " -> " + e.to;
    if (x != nullptr && x->actor) out += fmt::format(" by {}", e.actor);
    if (x != nullptr && x->payload) {
      std::size_t shown = std::min<std::size_t>(e.payload.size(), 120);
      // Not within a character (payloads hold Chinese names): back to its first byte.
      while (shown < e.payload.size() && shown > 0 && (static_cast<unsigned char>(e.payload[shown]) & 0xC0) == 0x80) --shown;
      out += fmt::format(" {}{}", e.payload.substr(0, shown), e.payload.size() > shown ? "..." : "");
    }
    return out;
  }

  void step(const Step& step, const Expect& x) {
    if (x.case_name.empty()) {
      for (const auto& q : x.inbox) inbox(q);
      return;
    }
    const CaseId id = case_id(x.case_name, step.where);
    const Case c = engine_->get(id);
    const std::vector<Event> history = engine_->history(id);
    const std::string who = x.case_name;
    if (x.status && c.status != x.status->value) {
      fail(x.status->where, fmt::format("case {}: status: expected {}, got {}{}", who, to_string(x.status->value),
                                        to_string(c.status), c.error.empty() ? "" : " (" + c.error + ")"));
    }
    if (x.outcome && c.outcome != x.outcome->value) {
      fail(x.outcome->where, fmt::format("case {}: outcome: expected {}, got {}", who, outcome_text(x.outcome->value),
                                         outcome_text(c.outcome)));
    }
    if (x.open_tasks) open_tasks(who, c, *x.open_tasks);
    auto count = [&](std::string_view level) {
      return static_cast<std::size_t>(std::count_if(history.begin(), history.end(), [&](const Event& e) {
        return e.kind == EventKind::warning && e.to == level;
      }));
    };
    auto warnings_text = [&](std::string_view level) {
      std::vector<std::string> out;
      for (const auto& e : history) {
        if (e.kind == EventKind::warning && e.to == level) {
          out.push_back(fmt::format("{} at {}", node_text(e, c), when(e.at)));
        }
      }
      return out.empty() ? std::string() : " " + labels(out);
    };
    if (x.yellow && count("yellow") != x.yellow->value) {
      fail(x.yellow->where, fmt::format("case {}: yellow warnings: expected {}, got {}{}", who, x.yellow->value,
                                        count("yellow"), warnings_text("yellow")));
    }
    if (x.red && count("red") != x.red->value) {
      fail(x.red->where, fmt::format("case {}: red warnings: expected {}, got {}{}", who, x.red->value, count("red"),
                                     warnings_text("red")));
    }
    for (const auto& e : x.history_contains) {
      const bool found = std::any_of(history.begin(), history.end(), [&](const Event& ev) { return event_matches(ev, e, c); });
      if (!found) {
        std::vector<std::string> near;
        for (const auto& ev : history) {
          if (!e.kind || ev.kind == *e.kind) near.push_back(event_text(ev, c, &e));
        }
        if (near.size() > 12) near.erase(near.begin(), near.end() - 12);
        fail(e.where, fmt::format("case {}: history has no entry {}; {} {}", who, e.text,
                                  e.kind ? fmt::format("its '{}' entries:", to_string(*e.kind)) : "its last entries:",
                                  labels(near)));
      }
    }
    for (const auto& e : x.history_excludes) {
      for (const auto& ev : history) {
        if (event_matches(ev, e, c)) {
          fail(e.where, fmt::format("case {}: history should have no entry {}, but has #{} {} at {}", who, e.text, ev.seq,
                                    event_text(ev, c), when(ev.at)));
          break;
        }
      }
    }
    for (const auto& q : x.inbox) inbox(q);
    if (x.promised_due && c.promised_due != x.promised_due->value) {
      fail(x.promised_due->where, fmt::format("case {}: promised_due: expected {}, got {}", who, when(x.promised_due->value),
                                              c.promised_due ? when(*c.promised_due) : "none"));
    }
    if (x.clock_paused && c.clock_paused != x.clock_paused->value) {
      fail(x.clock_paused->where,
           fmt::format("case {}: clock_paused: expected {}, got {}", who, x.clock_paused->value, c.clock_paused));
    }
    if (x.form) {
      for (const auto& [field, value] : x.form->value) {
        auto it = c.form.find(field);
        if (it == c.form.end() || !(it->second == value)) {
          fail(x.form->where, fmt::format("case {}: form.{}: expected {}, got {}", who, field, value.to_string(),
                                          it == c.form.end() ? "nothing" : it->second.to_string()));
        }
      }
    }
  }

  static std::string assignees_text(const Assignees& a) {
    std::vector<std::string> parts;
    if (!a.users.empty()) parts.push_back(fmt::format("user {}", fmt::join(a.users, "/")));
    if (!a.roles.empty()) parts.push_back(fmt::format("role {}", fmt::join(a.roles, "/")));
    if (!a.departments.empty()) parts.push_back(fmt::format("department {}", fmt::join(a.departments, "/")));
    return parts.empty() ? "nobody" : fmt::format("{}", fmt::join(parts, ", "));
  }

  static bool same_set(std::vector<std::string> a, std::vector<std::string> b) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    return a == b;
  }

  void open_tasks(const std::string& who, const Case& c, const Checked<std::vector<TaskExpect>>& want) {
    std::vector<const Task*> open = c.open_tasks();
    std::vector<bool> used(open.size(), false);
    std::vector<std::string> missing;
    for (const auto& te : want.value) {
      std::size_t at = open.size();
      for (std::size_t i = 0; i < open.size(); ++i) {
        if (!used[i] && matches(*open[i], te.ref, c)) {
          at = i;
          break;
        }
      }
      if (at == open.size()) {
        missing.push_back(te.ref.text);
        continue;
      }
      used[at] = true;
      const Task& t = *open[at];
      if (te.assignees) {
        const Assignees& a = *te.assignees;
        if (!same_set(a.users, t.candidates.users) || !same_set(a.roles, t.candidates.roles) ||
            !same_set(a.departments, t.candidates.departments)) {
          fail(te.ref.where, fmt::format("case {}: task {}: assignees: expected {}, got {}", who, label(t, c),
                                         assignees_text(a), assignees_text(t.candidates)));
        }
      }
      if (te.assigned_user && t.assigned_user != *te.assigned_user) {
        fail(te.ref.where, fmt::format("case {}: task {}: assigned_user: expected {}, got {}", who, label(t, c),
                                       *te.assigned_user, t.assigned_user.empty() ? "nobody" : t.assigned_user));
      }
      if (te.due && t.due != *te.due) {
        fail(te.ref.where, fmt::format("case {}: task {}: due: expected {}, got {}", who, label(t, c), when(*te.due),
                                       t.due ? when(*t.due) : "none"));
      }
    }
    std::vector<std::string> unexpected;
    for (std::size_t i = 0; i < open.size(); ++i) {
      if (!used[i]) unexpected.push_back(label(*open[i], c));
    }
    if (!missing.empty() || !unexpected.empty()) {
      std::vector<std::string> expected;
      for (const auto& te : want.value) expected.push_back(te.ref.text);
      std::string detail;
      if (!missing.empty()) detail += fmt::format("missing {}", labels(missing));
      if (!unexpected.empty()) detail += fmt::format("{}unexpected {}", detail.empty() ? "" : ", ", labels(unexpected));
      fail(want.where, fmt::format("case {}: open_tasks: expected {}, got {} ({})", who, labels(expected), open_labels(c),
                                   detail));
    }
  }

  void inbox(const InboxExpect& q) {
    // A declared actor's inbox is what that actor sees: its roles and
    // departments, unless the query gives its own.
    InboxQuery query = q.query;
    if (auto it = script_.actors.find(query.user); !query.user.empty() && it != script_.actors.end()) {
      if (!q.roles_given) query.roles = it->second.roles;
      if (!q.departments_given) query.departments = it->second.departments;
    }
    const auto entries = engine_->inbox(query);
    if (q.count && entries.size() != *q.count) {
      std::vector<std::string> got;
      for (const auto& e : entries) {
        got.push_back(fmt::format("{}{}", e.item.empty() ? "" : e.item + "/", e.node ? e.node->id : "?"));
      }
      fail(q.where, fmt::format("inbox of {}: expected {} tasks, got {}{}", q.text, *q.count, entries.size(),
                                got.empty() ? std::string() : ": " + labels(got)));
    }
    if (q.tasks) {
      std::vector<bool> used(entries.size(), false);
      std::vector<std::string> missing;
      for (const auto& ref : *q.tasks) {
        bool found = false;
        for (std::size_t i = 0; i < entries.size() && !found; ++i) {
          if (used[i] || entries[i].node == nullptr) continue;
          const Case c = engine_->get(entries[i].case_id);
          const Task* t = c.find_task(entries[i].task);
          if (t && matches(*t, ref, c)) used[i] = found = true;
        }
        if (!found) missing.push_back(ref.text);
      }
      std::vector<std::string> unexpected;
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (!used[i]) {
          unexpected.push_back(fmt::format("{}{}", entries[i].item.empty() ? "" : entries[i].item + "/",
                                           entries[i].node ? entries[i].node->id : "?"));
        }
      }
      if (!missing.empty() || !unexpected.empty()) {
        std::string detail;
        if (!missing.empty()) detail += fmt::format("missing {}", labels(missing));
        if (!unexpected.empty()) detail += fmt::format("{}unexpected {}", detail.empty() ? "" : ", ", labels(unexpected));
        fail(q.where, fmt::format("inbox of {}: {}", q.text, detail));
      }
    }
  }

  const Script& script_;
  const Test& test_;
  std::shared_ptr<const Catalog> catalog_;
  FlowTestResult& result_;
  std::map<std::string, HandlerSpec> handlers_;
  std::shared_ptr<ManualClock> clock_;
  std::unique_ptr<Engine> engine_;
  std::map<std::string, CaseId> cases_;
};

// Definitions loaded once per set of paths within one run.
class Catalogs {
 public:
  const LoadResult& load(const std::vector<std::filesystem::path>& paths) {
    std::vector<std::string> key;
    for (const auto& p : paths) key.push_back(p.lexically_normal().string());
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, load_catalog(paths)).first;
    return it->second;
  }

 private:
  std::map<std::vector<std::string>, LoadResult> cache_;
};

FlowTestReport run_text(const std::string& name, std::string_view text, const std::filesystem::path& base_dir,
                        const FlowTestOptions& options, Catalogs& catalogs) {
  FlowTestReport report;
  std::vector<Diagnostic> diagnostics;
  const Script script = parse_script(name, text, base_dir, diagnostics);
  std::shared_ptr<const Catalog> catalog;
  // The definitions load, and the names the script uses are checked against
  // them, even when the script has other problems: every problem at once.
  if (!script.definitions.empty()) {
    const LoadResult& loaded = catalogs.load(script.definitions);
    if (!loaded.ok()) {
      std::vector<std::string> paths;
      for (const auto& p : script.definitions) paths.push_back(p.string());
      diagnostics.push_back(Diagnostic{Severity::error, script.definitions_where, "bad-definitions",
                                       fmt::format("the definitions ({}) do not load:", fmt::join(paths, ", ")), {}});
      for (const auto& d : loaded.diagnostics) {
        if (d.severity == Severity::error) diagnostics.push_back(d);
      }
    } else {
      catalog = loaded.catalog;
      check_script(script, *catalog, diagnostics);
    }
  }
  if (has_errors(diagnostics) || catalog == nullptr) {
    std::stable_sort(diagnostics.begin(), diagnostics.end(), [&](const Diagnostic& a, const Diagnostic& b) {
      // The script's own problems by position; the definitions' after them.
      return std::make_tuple(a.where.file != name, a.where.line, a.where.column) <
             std::make_tuple(b.where.file != name, b.where.line, b.where.column);
    });
    for (auto& d : diagnostics) {
      // A step written once under an anchor and used through aliases is
      // reported once.
      const bool repeated = std::any_of(report.errors.begin(), report.errors.end(), [&](const Diagnostic& e) {
        return e.where.file == d.where.file && e.where.line == d.where.line && e.where.column == d.where.column &&
               e.message == d.message;
      });
      if (d.severity == Severity::error && !repeated) report.errors.push_back(std::move(d));
    }
    report.malformed_scripts = 1;
    return report;
  }
  for (const auto& test : script.tests) {
    if (!options.name_filter.empty() && test.name.find(options.name_filter) == std::string::npos) continue;
    FlowTestResult result;
    result.name = test.name;
    result.where = test.where;
    try {
      TestRun run(script, test, catalog, result);
      run.run();
    } catch (const Error& e) {
      result.failures.push_back(FlowTestFailure{test.where, fmt::format("the test could not run: {}", e.what())});
    } catch (const std::exception& e) {
      result.failures.push_back(
          FlowTestFailure{test.where, fmt::format("the test could not run: {}{}", kInternalError, e.what()), true});
    }
    report.results.push_back(std::move(result));
  }
  return report;
}

FlowTestReport run_file(const std::filesystem::path& path, const FlowTestOptions& options, Catalogs& catalogs) {
  TextFile read = read_text_file(path, LoadOptions{}.max_file_bytes);
  if (!read.error.empty()) {
    FlowTestReport report;
    report.errors.push_back(Diagnostic{Severity::error, {path.string(), 0, 0},
                                       read.too_large ? "file-too-large" : "io-error",
                                       read.too_large ? read.error : "cannot read the script: " + read.error, {}});
    report.malformed_scripts = 1;
    return report;
  }
  return run_text(path.string(), read.text, path.parent_path(), options, catalogs);
}

}  // namespace
}  // namespace flowtest

FlowTestReport run_flow_tests(const std::filesystem::path& script, const FlowTestOptions& options) {
  flowtest::Catalogs catalogs;
  return flowtest::run_file(script, options, catalogs);
}

FlowTestReport run_flow_tests(const std::vector<std::filesystem::path>& scripts, const FlowTestOptions& options) {
  flowtest::Catalogs catalogs;
  FlowTestReport report;
  for (const auto& s : scripts) report.merge(flowtest::run_file(s, options, catalogs));
  return report;
}

FlowTestReport run_flow_tests(const Source& script, const std::filesystem::path& base_dir,
                              const FlowTestOptions& options) {
  flowtest::Catalogs catalogs;
  return flowtest::run_text(script.name, script.text, base_dir, options, catalogs);
}

}  // namespace onestop
