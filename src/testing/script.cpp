// Flow-test scripts: YAML in (through the definitions' own YAML tree, so
// every problem has file:line:col), a checked Script out.

#include "testing/script.hpp"

#include "definitions/reader.hpp"
#include "definitions/yaml_dom.hpp"

#include <onestop/calendar.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

namespace onestop::flowtest {

namespace {

using yaml::Node;
using yaml::Reader;
using Fields = yaml::Reader::Fields;

constexpr std::string_view default_start = "2025-03-03T09:00:00+08:00";  // a Monday

std::optional<int> digits(std::string_view s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

const std::vector<std::pair<std::string_view, ActionKind>>& action_names() {
  static const std::vector<std::pair<std::string_view, ActionKind>> names = {
      {"accept", ActionKind::accept},
      {"refuse", ActionKind::refuse},
      {"approve", ActionKind::approve},
      {"reject", ActionKind::reject},
      {"return", ActionKind::return_to},
      {"return_to", ActionKind::return_to},
      {"request_correction", ActionKind::request_correction},
      {"resubmit", ActionKind::resubmit},
      {"withdraw", ActionKind::withdraw},
      {"transfer", ActionKind::transfer},
      {"add_signer", ActionKind::add_signer},
      {"urge", ActionKind::urge},
      {"comment", ActionKind::comment},
      {"terminate", ActionKind::terminate},
      {"retry", ActionKind::retry},
      {"start_special", ActionKind::start_special},
      {"end_special", ActionKind::end_special},
      {"evaluate", ActionKind::evaluate},
      {"rectify", ActionKind::rectify},
  };
  return names;
}

const std::vector<std::pair<std::string_view, EventKind>>& event_names() {
  static const std::vector<std::pair<std::string_view, EventKind>> names = [] {
    std::vector<std::pair<std::string_view, EventKind>> out;
    for (int k = 0; k <= static_cast<int>(EventKind::follow_up_closed); ++k) {
      const auto kind = static_cast<EventKind>(k);
      out.emplace_back(to_string(kind), kind);
    }
    return out;
  }();
  return names;
}

// Builds the script, reporting as it goes.
class Parser {
 public:
  Parser(Reader& r, const std::filesystem::path& base_dir) : r_(r), base_dir_(base_dir) {}

  Script run(const Node* doc) {
    Script s;
    s.file = r_.file();
    Fields f(r_, doc, "a flow-test script",
             {"definitions", "calendar", "start", "certificates", "handlers", "actors", "tests"});
    if (!f.ok()) return s;
    for (const auto& p : r_.text_list(f.get("definitions", true), "definitions path", false)) {
      std::filesystem::path path(p);
      s.definitions.push_back(path.is_absolute() ? path : (base_dir_ / path).lexically_normal());
    }
    if (const Node* n = f.get("definitions")) s.definitions_where = r_.at(n);
    if (const Node* n = f.get("definitions"); n && n->is_sequence() && n->children.empty()) {
      r_.error(n, "bad-value", "definitions is empty", "name the definition files or directories, e.g. [..]");
    }
    if (const Node* c = f.get("calendar")) {
      s.calendar = r_.identifier(c, "calendar");
      s.calendar_where = r_.at(c);
    }
    start_ = *parse_instant(default_start);
    if (const Node* n = f.get("start")) start_ = instant(n, "start").value_or(start_);
    certificates(f.get("certificates"), s);
    if (const Node* h = f.get("handlers")) s.handlers = handlers(h);
    actors(f.get("actors"), s);
    const Node* tests = f.get("tests", true);
    if (tests && !tests->is_sequence()) {
      r_.error(tests, "wrong-type", fmt::format("tests must be a list, not {}", tests->describe()));
    } else if (tests) {
      if (tests->children.empty()) r_.error(tests, "bad-value", "tests is empty");
      std::set<std::string> names;
      for (const Node* t : tests->children) {
        auto test = this->test(t);
        if (!test) continue;
        if (!names.insert(test->name).second) {
          r_.error(t, "duplicate-id", fmt::format("two tests are named '{}'", test->name));
        }
        s.tests.push_back(std::move(*test));
      }
    }
    return s;
  }

 private:
  std::optional<Instant> instant(const Node* n, std::string_view what) {
    auto s = r_.text(n, what);
    if (!s) return std::nullopt;
    auto t = parse_instant(*s);
    if (!t) {
      r_.error(n, "bad-value", fmt::format("{} '{}' is not a date and time", what, *s),
               "write e.g. 2025-03-03T09:00:00+08:00");
    }
    return t;
  }

  void certificates(const Node* n, Script& s) {
    if (n == nullptr) return;
    s.certificates_where = r_.at(n);
    if (n->is_scalar() && (n->value == "all" || n->value == "none")) {
      s.certificates = n->value == "all" ? Certificates::all : Certificates::none;
      return;
    }
    if (!n->is_sequence()) {
      r_.error(n, "bad-value", "certificates must be 'all', 'none' or a list of material ids or licence types");
      return;
    }
    s.certificates = Certificates::listed;
    s.certificate_list = r_.text_list(n, "certificate", true);
  }

  std::map<std::string, HandlerSpec> handlers(const Node* n) {
    std::map<std::string, HandlerSpec> out;
    if (!n->is_mapping()) {
      r_.error(n, "wrong-type", fmt::format("handlers must be a mapping of handler names, not {}", n->describe()));
      return out;
    }
    for (std::size_t i = 0; i + 1 < n->children.size(); i += 2) {
      const Node* key = n->children[i];
      const Node* value = n->children[i + 1];
      auto name = r_.identifier(key, "handler name");
      if (!name) continue;
      HandlerSpec h;
      h.where = r_.at(key);
      const Node* result = value;
      if (value->is_mapping()) {
        Fields f(r_, value, fmt::format("handler '{}'", *name), {"result", "message", "form"});
        if (!f.ok()) continue;
        result = f.get("result", true);
        if (auto m = r_.text(f.get("message"), "message")) h.message = *m;
        if (const Node* form = f.get("form")) h.form = values(form, "handler form");
      }
      if (auto kind = r_.choice<int>(result, "handler result", {{"approved", 0}, {"rejected", 1}, {"fail", 2}})) {
        h.ok = *kind != 2;
        h.decision = *kind == 1 ? Decision::rejected : Decision::approved;
        if (*kind == 2 && !value->is_mapping()) h.message = "failed (flow test)";
      }
      out[*name] = std::move(h);
    }
    return out;
  }

  void actors(const Node* n, Script& s) {
    if (n == nullptr) return;
    if (!n->is_mapping()) {
      r_.error(n, "wrong-type", fmt::format("actors must be a mapping of user ids, not {}", n->describe()));
      return;
    }
    for (std::size_t i = 0; i + 1 < n->children.size(); i += 2) {
      auto user = r_.identifier(n->children[i], "actor user id");
      if (!user) continue;
      if (*user == "applicant" || *user == "system") {
        r_.error(n->children[i], "bad-value", fmt::format("'{}' is reserved for the case's applicant and the engine", *user));
        continue;
      }
      Fields f(r_, n->children[i + 1], fmt::format("actor '{}'", *user), {"kind", "roles", "departments"});
      if (!f.ok()) continue;
      ActorSpec a;
      a.where = r_.at(n->children[i]);
      if (auto k = r_.choice<Actor::Kind>(f.get("kind"), "actor kind",
                                           {{"staff", Actor::Kind::staff}, {"supervisor", Actor::Kind::supervisor}})) {
        a.kind = *k;
      }
      a.roles = r_.text_list(f.get("roles"), "role", true);
      a.departments = r_.text_list(f.get("departments"), "department", true);
      s.actors[*user] = std::move(a);
    }
  }

  std::optional<Test> test(const Node* n) {
    Fields f(r_, n, "a test", {"name", "start", "steps"});
    if (!f.ok()) return std::nullopt;
    Test t;
    t.where = r_.at(n);
    t.name = r_.text(f.get("name", true), "test name").value_or("");
    if (t.name.empty() && f.get("name") && f.get("name")->is_scalar()) r_.error(f.get("name"), "bad-value", "test name is empty");
    t.start = start_;
    if (const Node* s = f.get("start")) t.start = instant(s, "start").value_or(start_);
    cases_.clear();
    last_case_.clear();
    const Node* steps = f.get("steps", true);
    if (steps && !steps->is_sequence()) {
      r_.error(steps, "wrong-type", fmt::format("steps must be a list, not {}", steps->describe()));
    } else if (steps && steps->children.empty()) {
      r_.error(steps, "bad-value", fmt::format("test '{}' has no steps: it would test nothing", t.name));
    } else if (steps) {
      for (const Node* s : steps->children) {
        if (auto step = this->step(s)) t.steps.push_back(std::move(*step));
      }
    }
    return t;
  }

  std::optional<Step> step(const Node* n) {
    static const std::initializer_list<std::string_view> kinds = {"submit", "act",  "advance",
                                                                  "tick",   "expect", "handlers"};
    if (!n->is_mapping() || n->size() != 1) {
      r_.error(n, "wrong-type",
               fmt::format("a step must be a mapping with one key ({}), not {}", "submit, act, advance, tick, expect or handlers",
                           n->is_mapping() ? fmt::format("a mapping with {} keys", n->size()) : std::string(n->describe())),
               "write e.g. '- act: { case: c1, action: approve, task: review, as: li }'");
      return std::nullopt;
    }
    Fields f(r_, n, "a step", kinds);
    if (!f.ok() || !n->children[0]->is_scalar()) return std::nullopt;
    const std::string kind = n->children[0]->value;
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) return std::nullopt;  // reported
    const Node* body = n->children[1];
    Step s;
    s.where = r_.at(n->children[0]);
    s.kind = kind;
    if (kind == "submit") {
      auto b = submit(body);
      if (!b) return std::nullopt;
      s.body = std::move(*b);
    } else if (kind == "act") {
      auto b = act(body);
      if (!b) return std::nullopt;
      s.body = std::move(*b);
    } else if (kind == "advance") {
      auto b = advance(body);
      if (!b) return std::nullopt;
      s.body = *b;
    } else if (kind == "tick") {
      Tick t;
      if (!body->is_null()) {
        Fields tf(r_, body, "tick", {"fired"});
        if (!tf.ok()) return std::nullopt;
        if (auto fired = r_.integer(tf.get("fired"), "fired", 0, 1'000'000'000)) t.fired = static_cast<std::size_t>(*fired);
      }
      s.body = t;
    } else if (kind == "expect") {
      auto b = expect(body);
      if (!b) return std::nullopt;
      s.body = std::move(*b);
    } else {
      s.body = SetHandlers{handlers(body)};
    }
    return s;
  }

  // The case a step names, or the last one submitted.
  std::optional<std::string> case_name(Fields& f, const Node* at) {
    if (const Node* c = f.get("case")) {
      auto name = r_.identifier(c, "case");
      if (name && !cases_.count(*name)) {
        r_.error(c, "unknown-case", fmt::format("no case '{}' was submitted before this step", *name),
                 cases_.empty() ? "submit it first: '- submit: { case: c1, ... }'" : hint_case(*name));
        return std::nullopt;
      }
      return name;
    }
    if (last_case_.empty()) {
      r_.error(at, "unknown-case", "no case was submitted before this step", "submit one first");
      return std::nullopt;
    }
    return last_case_;
  }

  std::string hint_case(const std::string& name) const {
    std::vector<std::string_view> known(cases_.begin(), cases_.end());
    const auto near = yaml::closest(name, known);
    return near.empty() ? std::string() : fmt::format("did you mean '{}'?", near);
  }

  ActorRef actor(Fields& f, bool required) {
    ActorRef a;
    if (auto as = r_.identifier(f.get("as", required), "as")) {
      a.as = *as;
      a.where = r_.at(f.get("as"));
    }
    if (const Node* roles = f.get("roles")) a.roles = r_.text_list(roles, "role", true);
    if (const Node* d = f.get("departments")) a.departments = r_.text_list(d, "department", true);
    return a;
  }

  Value value(const Node* n, std::string_view what) {
    if (n->is_null()) return Value();
    if (n->is_sequence()) {
      Value::List list;
      for (const Node* c : n->children) list.push_back(value(c, what));
      return Value(std::move(list));
    }
    if (n->is_mapping()) {
      r_.error(n, "wrong-type", fmt::format("{} must be a string, number, true/false or a list, not a mapping", what));
      return Value();
    }
    if (!n->quoted) {
      if (n->value == "true" || n->value == "false") return Value(n->value == "true");
      double d = 0;
      const auto& s = n->value;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) return Value(d);
    }
    return Value(n->value);
  }

  std::map<std::string, Value> values(const Node* n, std::string_view what) {
    std::map<std::string, Value> out;
    if (!n->is_mapping()) {
      r_.error(n, "wrong-type", fmt::format("{} must be a mapping of field names to values, not {}", what, n->describe()));
      return out;
    }
    for (std::size_t i = 0; i + 1 < n->children.size(); i += 2) {
      if (auto key = r_.identifier(n->children[i], "form field")) out[*key] = value(n->children[i + 1], "form field");
    }
    return out;
  }

  Materials materials(const Node* n) {
    Materials m;
    if (n == nullptr) return m;
    if (n->is_scalar() && n->value == "all" && !n->quoted) {
      m.all = true;
      return m;
    }
    if (!n->is_sequence()) {
      r_.error(n, "wrong-type", fmt::format("materials must be 'all' or a list, not {}", n->describe()));
      return m;
    }
    for (const Node* c : n->children) {
      MaterialSpec spec;
      if (c->is_scalar()) {
        if (auto id = r_.identifier(c, "material id")) spec.id = *id;
        else continue;
      } else {
        Fields f(r_, c, "a material", {"id", "file", "bytes", "form"});
        if (!f.ok()) continue;
        spec.id = r_.identifier(f.get("id", true), "material id").value_or("");
        if (auto file = r_.text(f.get("file"), "file")) spec.file = *file;
        if (auto b = r_.integer(f.get("bytes"), "bytes", 0, 1LL << 40)) spec.bytes = *b;
        spec.form = r_.choice<MaterialForm>(f.get("form"), "material form",
                                            {{"original", MaterialForm::original},
                                             {"copy", MaterialForm::copy},
                                             {"original_and_copy", MaterialForm::original_and_copy},
                                             {"electronic", MaterialForm::electronic}});
        if (spec.id.empty()) continue;
      }
      m.list.push_back(std::move(spec));
    }
    return m;
  }

  std::optional<ErrorCode> error_code(const Node* n) {
    return r_.choice<ErrorCode>(n, "expected error",
                                {{"not_found", ErrorCode::not_found},
                                 {"not_permitted", ErrorCode::not_permitted},
                                 {"conflict", ErrorCode::conflict},
                                 {"invalid_state", ErrorCode::invalid_state},
                                 {"invalid_input", ErrorCode::invalid_input}});
  }

  std::optional<TaskRef> task_ref(const Node* n, std::string_view what) {
    auto s = r_.text(n, what);
    if (!s) return std::nullopt;
    TaskRef ref;
    ref.text = *s;
    ref.where = r_.at(n);
    if (auto id = digits(*s)) {
      if (*id <= 0) {
        r_.error(n, "bad-value", fmt::format("{} {} is not a task id", what, *s));
        return std::nullopt;
      }
      ref.id = static_cast<TaskId>(*id);
      return ref;
    }
    const auto slash = s->find('/');
    ref.node = slash == std::string::npos ? *s : s->substr(slash + 1);
    if (slash != std::string::npos) ref.prefix = s->substr(0, slash);
    if (!yaml::is_identifier(ref.node) || (slash != std::string::npos && !yaml::is_identifier(ref.prefix))) {
      r_.error(n, "bad-value", fmt::format("{} '{}' is not a node id, 'item/node' or a task number", what, *s),
               "write e.g. 'review', 'XK-NR-0101/review' or 'land_preexamination/review'");
      return std::nullopt;
    }
    return ref;
  }

  std::optional<Submit> submit(const Node* n) {
    Fields f(r_, n, "submit",
             {"case", "target", "applicant", "form", "materials", "keep_draft", "as", "roles", "departments", "expect_error",
              "expect_notice"});
    if (!f.ok()) return std::nullopt;
    Submit s;
    s.case_name = r_.identifier(f.get("case", true), "case").value_or("");
    s.target = r_.text(f.get("target", true), "target").value_or("");
    if (Fields a(r_, f.get("applicant", true), "applicant", {"kind", "id", "name"}); a.ok()) {
      if (auto k = r_.choice<ApplicantKind>(a.get("kind", true), "applicant kind",
                                            {{"natural_person", ApplicantKind::natural_person},
                                             {"legal_person", ApplicantKind::legal_person},
                                             {"other_organisation", ApplicantKind::other_organisation}})) {
        s.applicant.kind = *k;
      }
      s.applicant.id = r_.text(a.get("id", true), "applicant id").value_or("");
      s.applicant.name = r_.text(a.get("name"), "applicant name").value_or("");
    }
    if (const Node* form = f.get("form")) s.form = values(form, "form");
    s.materials = materials(f.get("materials"));
    if (auto k = r_.boolean(f.get("keep_draft"), "keep_draft")) s.keep_draft = *k;
    if (f.get("as") || f.get("roles") || f.get("departments")) s.actor = actor(f, false);
    s.expect_error = error_code(f.get("expect_error"));
    if (const Node* notice = f.get("expect_notice")) {
      s.expect_notice = notice->is_sequence() && notice->children.empty()
                            ? std::vector<std::string>{}
                            : r_.text_list(notice, "material id", true);
    }
    if (s.case_name.empty()) return std::nullopt;
    if (cases_.count(s.case_name)) {
      r_.error(f.get("case"), "duplicate-id", fmt::format("case '{}' was already submitted in this test", s.case_name));
    }
    if (!s.expect_error) {
      cases_.insert(s.case_name);
      last_case_ = s.case_name;
    }
    return s;
  }

  std::optional<Act> act(const Node* n) {
    Fields f(r_, n, "act",
             {"case", "action", "task", "as", "roles", "departments", "to", "limit", "rating", "comment", "form",
              "materials", "expect_error"});
    if (!f.ok()) return std::nullopt;
    Act a;
    auto name = case_name(f, n);
    std::vector<std::string_view> names;
    for (const auto& [word, kind] : action_names()) names.push_back(word);
    const Node* action = f.get("action", true);
    bool ok = false;
    if (auto word = r_.text(action, "action")) {
      for (const auto& [w, kind] : action_names()) {
        if (*word == w) {
          a.kind = kind;
          ok = true;
        }
      }
      if (!ok) {
        const auto near = yaml::closest(*word, names);
        r_.error(action, "bad-value", fmt::format("action '{}' is not one of: {}", *word, fmt::join(names, ", ")),
                 near.empty() ? std::string() : fmt::format("did you mean '{}'?", near));
      }
    }
    if (const Node* t = f.get("task")) a.task = task_ref(t, "task");
    a.actor = actor(f, true);
    if (auto to = r_.text(f.get("to"), "to")) a.target = *to;
    a.limit = r_.time_limit(f.get("limit"), "limit");
    if (auto rating = r_.integer(f.get("rating"), "rating", 1, 5)) a.rating = static_cast<int>(*rating);
    if (auto c = r_.text(f.get("comment"), "comment")) a.comment = *c;
    if (const Node* form = f.get("form")) a.form = values(form, "form");
    a.materials = materials(f.get("materials"));
    a.expect_error = error_code(f.get("expect_error"));
    if (ok) {
      const bool needs_task = a.kind == ActionKind::accept || a.kind == ActionKind::refuse ||
                              a.kind == ActionKind::approve || a.kind == ActionKind::reject ||
                              a.kind == ActionKind::return_to || a.kind == ActionKind::request_correction ||
                              a.kind == ActionKind::transfer || a.kind == ActionKind::add_signer ||
                              a.kind == ActionKind::urge;
      if (needs_task && !a.task && !f.get("task")) {  // a task written but not understood is reported already
        r_.error(n, "missing-field", fmt::format("act '{}' has no 'task'", to_string(a.kind)),
                 "name the task by node: 'task: review', or 'task: XK-NR-0101/review' inside a theme");
      }
      const bool needs_to = a.kind == ActionKind::return_to || a.kind == ActionKind::transfer ||
                            a.kind == ActionKind::add_signer || a.kind == ActionKind::start_special;
      if (needs_to && !f.get("to") && !a.expect_error) {
        r_.error(n, "missing-field", fmt::format("act '{}' has no 'to'", to_string(a.kind)));
      }
    }
    if (!name || !ok) return std::nullopt;
    a.case_name = *name;
    return a;
  }

  std::optional<Advance> advance(const Node* n) {
    Advance a;
    if (n->is_scalar()) {
      a.by = r_.time_limit(n, "advance");
      if (!a.by) return std::nullopt;
      return a;
    }
    Fields f(r_, n, "advance", {"by", "to"});
    if (!f.ok()) return std::nullopt;
    if (f.get("by")) a.by = r_.time_limit(f.get("by"), "advance by");
    if (f.get("to")) a.to = instant(f.get("to"), "advance to");
    if (f.get("by") && f.get("to")) r_.error(n, "bad-value", "advance takes 'by' or 'to', not both");
    if (!a.by && !a.to) {
      if (!f.get("by") && !f.get("to")) r_.error(n, "missing-field", "advance has neither 'by' nor 'to'",
                                                 "write e.g. 'advance: 3 working days'");
      return std::nullopt;
    }
    return a;
  }

  std::optional<EventExpect> event(const Node* n) {
    EventExpect e;
    e.where = r_.at(n);
    Fields f(r_, n, "a history entry", {"kind", "node", "actor", "to", "payload"});
    if (!f.ok()) return std::nullopt;
    std::vector<std::string_view> names;
    for (const auto& [w, k] : event_names()) names.push_back(w);
    std::string text;
    if (const Node* k = f.get("kind")) {
      if (auto word = r_.text(k, "kind")) {
        for (const auto& [w, kind] : event_names()) {
          if (*word == w) e.kind = kind;
        }
        if (!e.kind) {
          const auto near = yaml::closest(*word, names);
          r_.error(k, "bad-value", fmt::format("history kind '{}' is not one of: {}", *word, fmt::join(names, ", ")),
                   near.empty() ? std::string() : fmt::format("did you mean '{}'?", near));
          return std::nullopt;
        }
        text += fmt::format("kind: {}", *word);
      }
    }
    auto add = [&](std::string_view key, const std::optional<std::string>& v) {
      if (v) text += fmt::format("{}{}: {}", text.empty() ? "" : ", ", key, *v);
    };
    if (const Node* node = f.get("node")) {
      e.node = task_ref(node, "node");
      if (!e.node) return std::nullopt;
      add("node", e.node->text);
    }
    e.actor = r_.text(f.get("actor"), "actor");
    add("actor", e.actor);
    e.to = r_.text(f.get("to"), "to");
    add("to", e.to);
    e.payload = r_.text(f.get("payload"), "payload");
    if (e.payload && e.payload->empty()) {
      r_.error(f.get("payload"), "bad-value", "payload is empty: every entry would match", "give a piece of the JSON payload");
      return std::nullopt;
    }
    add("payload", e.payload);
    if (text.empty()) {
      r_.error(n, "missing-field", "a history entry needs at least one of kind, node, actor, to, payload");
      return std::nullopt;
    }
    e.text = "{" + text + "}";
    return e;
  }

  std::vector<EventExpect> events(const Node* n, std::string_view what) {
    std::vector<EventExpect> out;
    if (n == nullptr) return out;
    if (!n->is_sequence()) {
      r_.error(n, "wrong-type", fmt::format("{} must be a list of history entries, not {}", what, n->describe()));
      return out;
    }
    if (n->children.empty()) {
      r_.error(n, "bad-value", fmt::format("{} is empty: it states nothing", what),
               "list entries, e.g. [{ kind: task_created, node: review }]");
    }
    for (const Node* c : n->children) {
      if (auto e = event(c)) out.push_back(std::move(*e));
    }
    return out;
  }

  std::optional<Assignees> assignees(const Node* n) {
    Fields f(r_, n, "assignees", {"user", "role", "department"});
    if (!f.ok()) return std::nullopt;
    Assignees a;
    a.users = r_.text_list(f.get("user"), "user", true);
    a.roles = r_.text_list(f.get("role"), "role", true);
    a.departments = r_.text_list(f.get("department"), "department", true);
    return a;
  }

  std::optional<TaskExpect> task_expect(const Node* n) {
    TaskExpect t;
    if (n->is_scalar()) {
      auto ref = task_ref(n, "open task");
      if (!ref) return std::nullopt;
      t.ref = *ref;
      return t;
    }
    Fields f(r_, n, "an open task", {"node", "assignees", "assigned_user", "due"});
    if (!f.ok()) return std::nullopt;
    auto ref = task_ref(f.get("node", true), "node");
    if (!ref) return std::nullopt;
    t.ref = *ref;
    if (const Node* a = f.get("assignees")) {
      t.assignees = assignees(a);
      t.assignees_where = r_.at(a);
    }
    t.assigned_user = r_.text(f.get("assigned_user"), "assigned_user");
    if (const Node* d = f.get("due")) t.due = instant(d, "due");
    return t;
  }

  std::optional<InboxExpect> inbox(const Node* n) {
    Fields f(r_, n, "an inbox query", {"user", "roles", "departments", "item", "count", "tasks"});
    if (!f.ok()) return std::nullopt;
    InboxExpect e;
    e.where = r_.at(n);
    std::string text;
    if (auto u = r_.identifier(f.get("user"), "user")) {
      e.query.user = *u;
      text += "user " + *u;
    }
    e.query.roles = r_.text_list(f.get("roles"), "role", true);
    e.query.departments = r_.text_list(f.get("departments"), "department", true);
    e.roles_given = f.get("roles") != nullptr;
    e.departments_given = f.get("departments") != nullptr;
    if (!e.query.roles.empty()) text += fmt::format("{}roles {}", text.empty() ? "" : ", ", fmt::join(e.query.roles, "/"));
    if (!e.query.departments.empty()) {
      text += fmt::format("{}departments {}", text.empty() ? "" : ", ", fmt::join(e.query.departments, "/"));
    }
    if (auto i = r_.text(f.get("item"), "item")) {
      e.query.item = *i;
      text += fmt::format("{}item {}", text.empty() ? "" : ", ", *i);
    }
    e.query.limit = 100'000;
    if (auto c = r_.integer(f.get("count"), "count", 0, 1'000'000)) e.count = static_cast<std::size_t>(*c);
    if (const Node* t = f.get("tasks")) {
      std::vector<TaskRef> refs;
      if (!t->is_sequence()) {
        r_.error(t, "wrong-type", fmt::format("tasks must be a list of nodes, not {}", t->describe()));
      } else {
        for (const Node* c : t->children) {
          if (auto r = task_ref(c, "task")) refs.push_back(*r);
        }
      }
      e.tasks = std::move(refs);
    }
    if (text.empty()) {
      r_.error(n, "missing-field", "an inbox query needs a user, roles, departments or an item");
      return std::nullopt;
    }
    if (!e.count && !e.tasks) {
      r_.error(n, "missing-field", "an inbox expectation needs 'count' or 'tasks'");
      return std::nullopt;
    }
    e.text = text;
    return e;
  }

  std::optional<Expect> expect(const Node* n) {
    Fields f(r_, n, "expect",
             {"case", "status", "outcome", "open_tasks", "warnings", "history_contains", "history_excludes", "inbox",
              "promised_due", "clock_paused", "form"});
    if (!f.ok()) return std::nullopt;
    Expect e;
    const bool only_inbox = n->size() == 1 && f.get("inbox") != nullptr;
    if (!only_inbox || f.get("case")) {
      auto name = case_name(f, n);
      if (!name) return std::nullopt;
      e.case_name = *name;
    }
    if (n->size() == 0 || (n->size() == 1 && f.get("case"))) {
      r_.error(n, "missing-field", "expect states nothing",
               "add e.g. 'status: finished', 'outcome: approved' or 'open_tasks: [review]'");
    }
    if (const Node* s = f.get("status")) {
      if (auto v = r_.choice<CaseStatus>(s, "status",
                                         {{"draft", CaseStatus::draft},
                                          {"running", CaseStatus::running},
                                          {"waiting_for_applicant", CaseStatus::waiting_for_applicant},
                                          {"error", CaseStatus::error},
                                          {"finished", CaseStatus::finished}})) {
        e.status = Checked<CaseStatus>{*v, r_.at(s)};
      }
    }
    if (const Node* o = f.get("outcome")) {
      if (auto v = r_.choice<int>(o, "outcome",
                                  {{"none", -1},
                                   {"approved", static_cast<int>(Outcome::approved)},
                                   {"rejected", static_cast<int>(Outcome::rejected)},
                                   {"not_accepted", static_cast<int>(Outcome::not_accepted)},
                                   {"withdrawn", static_cast<int>(Outcome::withdrawn)},
                                   {"terminated", static_cast<int>(Outcome::terminated)},
                                   {"completed", static_cast<int>(Outcome::completed)}})) {
        e.outcome = Checked<std::optional<Outcome>>{
            *v < 0 ? std::nullopt : std::optional<Outcome>(static_cast<Outcome>(*v)), r_.at(o)};
      }
    }
    if (const Node* t = f.get("open_tasks")) {
      if (!t->is_sequence()) {
        r_.error(t, "wrong-type", fmt::format("open_tasks must be a list, not {}", t->describe()));
      } else {
        std::vector<TaskExpect> list;
        for (const Node* c : t->children) {
          if (auto te = task_expect(c)) list.push_back(std::move(*te));
        }
        e.open_tasks = Checked<std::vector<TaskExpect>>{std::move(list), r_.at(t)};
      }
    }
    if (const Node* w = f.get("warnings")) {
      Fields wf(r_, w, "warnings", {"yellow", "red"});
      if (wf.ok() && w->size() == 0) {
        r_.error(w, "bad-value", "warnings states nothing", "write e.g. 'warnings: { yellow: 1, red: 0 }'");
      } else if (wf.ok()) {
        if (auto y = r_.integer(wf.get("yellow"), "yellow warnings", 0, 1'000'000)) {
          e.yellow = Checked<std::size_t>{static_cast<std::size_t>(*y), r_.at(wf.get("yellow"))};
        }
        if (auto red = r_.integer(wf.get("red"), "red warnings", 0, 1'000'000)) {
          e.red = Checked<std::size_t>{static_cast<std::size_t>(*red), r_.at(wf.get("red"))};
        }
      }
    }
    e.history_contains = events(f.get("history_contains"), "history_contains");
    e.history_excludes = events(f.get("history_excludes"), "history_excludes");
    if (const Node* i = f.get("inbox")) {
      if (i->is_sequence() && i->children.empty()) {
        r_.error(i, "bad-value", "inbox is empty: it states nothing", "write e.g. 'inbox: { user: clerk_zhou, count: 1 }'");
      } else if (i->is_sequence()) {
        for (const Node* c : i->children) {
          if (auto q = inbox(c)) e.inbox.push_back(std::move(*q));
        }
      } else if (auto q = inbox(i)) {
        e.inbox.push_back(std::move(*q));
      }
    }
    if (const Node* d = f.get("promised_due")) {
      if (auto t = instant(d, "promised_due")) e.promised_due = Checked<Instant>{*t, r_.at(d)};
    }
    if (const Node* p = f.get("clock_paused")) {
      if (auto b = r_.boolean(p, "clock_paused")) e.clock_paused = Checked<bool>{*b, r_.at(p)};
    }
    if (const Node* form = f.get("form")) {
      e.form = Checked<std::map<std::string, Value>>{values(form, "form"), r_.at(form)};
      if (form->is_mapping() && form->size() == 0) {
        r_.error(form, "bad-value", "form states nothing", "write e.g. 'form: { household: local }'");
      }
    }
    return e;
  }

  Reader& r_;
  std::filesystem::path base_dir_;
  Instant start_{};
  std::set<std::string> cases_;
  std::string last_case_;
};

// The names a script may use, from the catalog.
struct Known {
  std::set<std::string> nodes;     // every node id of every flow
  std::set<std::string> prefixes;  // item codes and subflow node ids
  std::map<std::string, std::set<std::string>> nodes_under;  // by prefix: the nodes of the flow it runs
};

Known known_names(const Catalog& catalog) {
  Known k;
  auto flow_nodes = [&](std::string_view flow_id) {
    std::set<std::string> out;
    for (const auto& f : catalog.flows) {
      if (f.id != flow_id) continue;
      for (const auto& n : f.nodes) out.insert(n.id);
    }
    return out;
  };
  for (const auto& f : catalog.flows) {
    for (const auto& n : f.nodes) k.nodes.insert(n.id);
  }
  for (const auto& it : catalog.items) {  // every version's flow: a reference may mean any
    k.prefixes.insert(it.code);
    auto nodes = flow_nodes(it.flow);
    k.nodes_under[it.code].insert(nodes.begin(), nodes.end());
  }
  for (const auto& f : catalog.flows) {
    for (const auto& n : f.nodes) {
      if (n.kind != NodeKind::subflow) continue;
      k.prefixes.insert(n.id);
      std::string flow = n.flow;
      if (const Item* it = n.item.empty() ? nullptr : catalog.find_item(n.item)) flow = it->flow;
      auto nodes = flow_nodes(flow);
      k.nodes_under[n.id].insert(nodes.begin(), nodes.end());
    }
  }
  return k;
}

void check_ref(Reader& r, const TaskRef& ref, const Known& k) {
  if (ref.id != 0) return;
  if (!k.nodes.count(ref.node)) {
    const std::vector<std::string_view> known(k.nodes.begin(), k.nodes.end());
    const auto near = yaml::closest(ref.node, known);
    r.error_at(ref.where, "unknown-node",
               fmt::format("no flow has a node '{}'{}", ref.node,
                           near.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", near)));
    return;
  }
  if (ref.prefix.empty()) return;
  if (!k.prefixes.count(ref.prefix)) {
    const std::vector<std::string_view> known(k.prefixes.begin(), k.prefixes.end());
    const auto near = yaml::closest(ref.prefix, known);
    r.error_at(ref.where, "unknown-item",
               fmt::format("'{}' in '{}' is neither an item code nor a subflow node{}", ref.prefix, ref.text,
                           near.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", near)));
    return;
  }
  const auto under = k.nodes_under.find(ref.prefix);
  if (under != k.nodes_under.end() && !under->second.count(ref.node)) {
    const std::vector<std::string_view> known(under->second.begin(), under->second.end());
    const auto near = yaml::closest(ref.node, known);
    r.error_at(ref.where, "unknown-node",
               fmt::format("the flow '{}' runs has no node '{}' (its nodes: {}){}", ref.prefix, ref.node,
                           fmt::join(under->second, ", "),
                           near.empty() ? std::string() : fmt::format("; did you mean '{}'?", near)));
  }
}

// Any user id may act (a stranger, to test refusals), but one a letter from
// a declared actor (two, in ids of eight letters or more) is a slip that
// would make a refusal test pass for the wrong reason. Users the
// definitions name (assignees, signers) are exempt.
void check_actor_name(Reader& r, const Script& script, const std::set<std::string>& catalog_users, const ActorRef& a) {
  if (a.as.empty() || a.as == "applicant" || a.as == "system" || script.actors.count(a.as) || catalog_users.count(a.as)) return;
  const std::size_t allowed = a.as.size() >= 8 ? 2 : 1;
  for (const auto& [user, spec] : script.actors) {
    if (user.size() < 3 || yaml::edit_distance(a.as, user) > allowed) continue;
    r.error_at(a.where, "unknown-actor",
               fmt::format("'{}' is not an actor of the script: did you mean '{}'? (to act as another user with no "
                           "roles, declare it: 'actors: {{ {}: {{}} }}')",
                           a.as, user, a.as));
    return;
  }
}

// Roles and departments a script names must be the organisation's, when
// the definitions declare one (an undeclared name is a slip that makes
// every action of that actor a refusal).
void check_org(Reader& r, const Catalog& catalog, const SourceLocation& where, std::string_view who,
               const std::vector<std::string>& roles, const std::vector<std::string>& departments) {
  auto check = [&](const std::vector<std::string>& names, std::string_view what, auto&& list, auto&& find) {
    if (list.empty()) return;  // no organisation declared: nothing to check against
    for (const auto& name : names) {
      if (find(name)) continue;
      std::vector<std::string_view> known;
      for (const auto& x : list) known.push_back(x.id);
      const auto near = yaml::closest(name, known);
      r.error_at(where, fmt::format("unknown-{}", what),
                 fmt::format("{}: '{}' is not a {} of the definitions' organisation{}", who, name, what,
                             near.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", near)));
    }
  };
  check(roles, "role", catalog.roles, [&](const std::string& n) { return catalog.find_role(n) != nullptr; });
  check(departments, "department", catalog.departments,
        [&](const std::string& n) { return catalog.find_department(n) != nullptr; });
}

}  // namespace

std::optional<ErrorCode> parse_error_code(std::string_view text) {
  for (int c = static_cast<int>(ErrorCode::not_found); c <= static_cast<int>(ErrorCode::internal); ++c) {
    if (to_string(static_cast<ErrorCode>(c)) == text) return static_cast<ErrorCode>(c);
  }
  return std::nullopt;
}

Script parse_script(const std::string& name, std::string_view text, const std::filesystem::path& base_dir,
                    std::vector<Diagnostic>& diagnostics) {
  yaml::File file;
  file.name = name;
  yaml::parse(text, LoadOptions{}, file, diagnostics);
  Reader r(name, diagnostics);
  const Node* doc = nullptr;
  for (const Node* d : file.documents) {
    if (d->is_null()) continue;
    if (doc != nullptr) {
      r.error(d, "bad-value", "a flow-test script is one YAML document");
      break;
    }
    doc = d;
  }
  if (doc == nullptr) {
    if (!has_errors(diagnostics)) {
      r.error(nullptr, "missing-field", "the script is empty", "it needs 'definitions:' and 'tests:'");
    }
    Script s;
    s.file = name;
    return s;
  }
  Parser p(r, base_dir);
  return p.run(doc);
}

void check_script(const Script& script, const Catalog& catalog, std::vector<Diagnostic>& diagnostics) {
  Reader r(script.file, diagnostics);
  const Known known = known_names(catalog);
  std::set<std::string> handlers;
  for (const auto& f : catalog.flows) {
    for (const auto& n : f.nodes) {
      if (n.kind == NodeKind::automatic) handlers.insert(n.handler);
    }
  }
  if (script.calendar) {
    try {
      (void)WorkingCalendar::resolve(catalog, *script.calendar);
    } catch (const Error& e) {
      r.error_at(script.calendar_where, "unknown-calendar", e.what());
    }
  }
  auto check_handlers = [&](const std::map<std::string, HandlerSpec>& hs) {
    for (const auto& [name, spec] : hs) {
      if (!handlers.count(name)) {
        r.error_at(spec.where, "unknown-handler",
                   fmt::format("no automatic step uses handler '{}' (known: {})", name, fmt::join(handlers, ", ")));
      }
    }
  };
  check_handlers(script.handlers);
  for (const auto& name : script.certificate_list) {
    bool found = false;
    for (const auto& it : catalog.items) {
      for (const auto& m : it.materials) found = found || m.id == name || m.licence_type == name;
    }
    if (!found) {
      r.error_at(script.certificates_where, "unknown-material",
                 fmt::format("certificate '{}' is neither a material id nor a licence type of any item", name));
    }
  }
  for (const auto& [user, a] : script.actors) {
    check_org(r, catalog, a.where, fmt::format("actor '{}'", user), a.roles, a.departments);
  }
  std::set<std::string> catalog_users;
  for (const auto& f : catalog.flows) {
    for (const auto& n : f.nodes) {
      catalog_users.insert(n.assignees.users.begin(), n.assignees.users.end());
      catalog_users.insert(n.signers.begin(), n.signers.end());
    }
  }
  auto check_actor = [&](const ActorRef& a, const SourceLocation& where) {
    check_actor_name(r, script, catalog_users, a);
    check_org(r, catalog, where, fmt::format("'{}'", a.as), a.roles.value_or(std::vector<std::string>{}),
              a.departments.value_or(std::vector<std::string>{}));
  };
  for (const auto& t : script.tests) {
    for (const auto& step : t.steps) {
      if (const auto* s = std::get_if<Submit>(&step.body)) {
        if (!s->target.empty() && catalog.find_item(s->target) == nullptr && catalog.find_theme(s->target) == nullptr) {
          std::vector<std::string_view> names;
          for (const auto& it : catalog.items) names.push_back(it.code);
          for (const auto& th : catalog.themes) names.push_back(th.id);
          const auto near = yaml::closest(s->target, names);
          r.error_at(step.where, "unknown-target",
                     fmt::format("target '{}' is neither an item code nor a theme id{}", s->target,
                                 near.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", near)));
        }
        if (s->actor) check_actor(*s->actor, step.where);
      } else if (const auto* a = std::get_if<Act>(&step.body)) {
        if (a->task) check_ref(r, *a->task, known);
        check_actor(a->actor, step.where);
      } else if (const auto* e = std::get_if<Expect>(&step.body)) {
        if (e->open_tasks) {
          for (const auto& te : e->open_tasks->value) {
            check_ref(r, te.ref, known);
            if (te.assignees) {
              check_org(r, catalog, te.assignees_where, "assignees", te.assignees->roles, te.assignees->departments);
            }
          }
        }
        for (const auto& list : {&e->history_contains, &e->history_excludes}) {
          for (const auto& ev : *list) {
            if (ev.node) check_ref(r, *ev.node, known);
          }
        }
        for (const auto& q : e->inbox) {
          if (q.tasks) {
            for (const auto& ref : *q.tasks) check_ref(r, ref, known);
          }
          check_org(r, catalog, q.where, "inbox", q.query.roles, q.query.departments);
          if (!q.query.item.empty() && catalog.find_item(q.query.item) == nullptr) {
            std::vector<std::string_view> names;
            for (const auto& it : catalog.items) names.push_back(it.code);
            const auto near = yaml::closest(q.query.item, names);
            r.error_at(q.where, "unknown-item",
                       fmt::format("inbox item '{}' is not an item code{}", q.query.item,
                                   near.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", near)));
          }
        }
      } else if (const auto* h = std::get_if<SetHandlers>(&step.body)) {
        check_handlers(h->handlers);
      }
    }
  }
}

}  // namespace onestop::flowtest
