// Reading scenario files: yaml-cpp through the positioned YAML tree the
// definitions loader uses, so every problem names file:line:col.

#include "common/text_file.hpp"
#include "definitions/yaml_dom.hpp"
#include "sim/range.hpp"

#include <onestop/clock.hpp>
#include <onestop/simulation.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <map>

namespace onestop {

namespace {

using yaml::Node;

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const Node* n, const std::string& what) const {
    throw Error(ErrorCode::invalid_input,
                n ? fmt::format("{}:{}:{}: {}", file_, n->line, n->column, what) : fmt::format("{}: {}", file_, what));
  }

  void expect_keys(const Node* n, std::string_view what, std::initializer_list<std::string_view> allowed) const {
    expect_keys(n, what, std::vector<std::string_view>(allowed));
  }

  void expect_keys(const Node* n, std::string_view what, const std::vector<std::string_view>& allowed) const {
    if (!n->is_mapping()) fail(n, fmt::format("{} must be a mapping, not {}", what, n->describe()));
    for (std::size_t i = 0; i < n->children.size(); i += 2) {
      const Node* k = n->children[i];
      if (std::find(allowed.begin(), allowed.end(), k->value) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail(k, fmt::format("unknown key '{}' in {} (expected one of: {})", k->value, what, list));
      }
    }
  }

  SourceLocation where(const Node* n) const { return SourceLocation{file_, n->line, n->column}; }

  std::string text(const Node* n, std::string_view what) const {
    if (!n->is_scalar()) fail(n, fmt::format("{} must be a string, not {}", what, n->describe()));
    return n->value;
  }

  double number(const Node* n, std::string_view what) const {
    if (n->is_scalar() && !n->quoted) {
      double v = 0;
      const char* b = n->value.data();
      const char* e = b + n->value.size();
      if (e - b > 1 && *b == '+' && b[1] != '-' && b[1] != '+') ++b;  // YAML's +20 is 20
      auto [p, ec] = std::from_chars(b, e, v);
      if (ec == std::errc() && p == e && std::isfinite(v)) return v;
    }
    fail(n, fmt::format("{} must be a number, not '{}'", what, n->is_scalar() ? n->value : std::string(n->describe())));
  }

  double probability(const Node* n, std::string_view what) const {
    double v = 0;
    if (n->is_scalar() && !n->value.empty() && n->value.back() == '%') {
      Node copy = *n;
      copy.value.pop_back();
      copy.quoted = false;  // "3%" quoted is as good as 3% (a string either way)
      v = number(&copy, what) / 100.0;
    } else {
      v = number(n, what);
    }
    if (v < 0 || v > 1) fail(n, fmt::format("{} must be a probability between 0 and 1 (or 0% to 100%), not {}", what, n->value));
    return v;
  }

  bool boolean(const Node* n, std::string_view what) const {
    if (n->is_scalar() && !n->quoted && (n->value == "true" || n->value == "false")) return n->value == "true";
    fail(n, fmt::format("{} must be true or false", what));
  }

  // "90s", "30 min", "2h", "1.5 hours", "3 days", "2 weeks", "1 year".
  double duration(const Node* n, std::string_view what) const {
    if (!n->is_scalar()) fail(n, fmt::format("{} must be a duration such as '30 min', '2 h' or '3 days'", what));
    const std::string& s = n->value;
    std::size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + i, v);
    std::string unit = s.substr(i);
    unit.erase(0, unit.find_first_not_of(' '));
    static const std::pair<std::string_view, double> units[] = {
        {"s", 1}, {"sec", 1}, {"second", 1}, {"seconds", 1}, {"min", 60}, {"mins", 60}, {"minute", 60},
        {"minutes", 60}, {"h", 3600}, {"hour", 3600}, {"hours", 3600}, {"d", 86400}, {"day", 86400},
        {"days", 86400}, {"w", 7 * 86400.0}, {"week", 7 * 86400.0}, {"weeks", 7 * 86400.0},
        {"year", 365 * 86400.0}, {"years", 365 * 86400.0}};
    if (ec == std::errc::result_out_of_range) fail(n, too_long(what, s));
    if (i == 0 || ec != std::errc() || p != s.data() + i) {
      fail(n, fmt::format("{}: '{}' is not a duration (a number and a unit: s, min, h, days, weeks, years)", what, s));
    }
    for (const auto& [name, factor] : units) {
      if (unit != name) continue;
      // Nothing in a run can be longer than the calendars' span; beyond it
      // seconds would overflow when converted.
      if (!(v * factor <= sim::max_duration_seconds)) fail(n, too_long(what, s));
      return v * factor;
    }
    fail(n, fmt::format("{}: '{}' has {} unit (use s, min, h, days, weeks or years)", what, s,
                        unit.empty() ? "no" : "an unknown"));
  }

  static std::string too_long(std::string_view what, const std::string& s) {
    return fmt::format("{}: '{}' is too long (at most {:.0f} years, the span of the calendars)", what, s,
                       sim::max_duration_years);
  }

  std::chrono::local_days date(const Node* n, std::string_view what) const {
    if (n->is_scalar()) {
      if (const auto d = parse_date(n->value)) return std::chrono::local_days{*d};
    }
    fail(n, fmt::format("{} must be a date YYYY-MM-DD", what));
  }

  std::chrono::local_seconds timestamp(const Node* n, std::string_view what) const {
    if (n->is_scalar()) {
      if (const auto t = parse_local_time(n->value)) return *t;
    }
    fail(n, fmt::format("{} must be a local time 'YYYY-MM-DDTHH:MM[:SS]' (in the calendar's zone)", what));
  }

  ApplicantKind applicant_kind(const Node* n) const {
    const std::string s = text(n, "applicant kind");
    if (s == "natural_person") return ApplicantKind::natural_person;
    if (s == "legal_person") return ApplicantKind::legal_person;
    if (s == "other_organisation") return ApplicantKind::other_organisation;
    fail(n, fmt::format("unknown applicant kind '{}' (natural_person, legal_person, other_organisation)", s));
  }

  std::vector<std::pair<ApplicantKind, double>> applicant_mix(const Node* n) const {
    std::vector<std::pair<ApplicantKind, double>> out;
    if (n->is_sequence()) {
      if (n->children.empty()) fail(n, "applicants is empty: name at least one applicant kind");
      for (const Node* c : n->children) out.emplace_back(applicant_kind(c), 1.0);
      return out;
    }
    if (!n->is_mapping()) fail(n, "applicants must be a mapping of applicant kind to weight, or a list of kinds");
    if (n->children.empty()) fail(n, "applicants is empty: name at least one applicant kind");
    for (std::size_t i = 0; i < n->children.size(); i += 2) {
      const double w = number(n->children[i + 1], "applicant weight");
      if (w < 0) fail(n->children[i + 1], "applicant weight must not be negative");
      out.emplace_back(applicant_kind(n->children[i]), w);
    }
    if (!out.empty() && std::none_of(out.begin(), out.end(), [](const auto& x) { return x.second > 0; })) {
      fail(n, "applicant weights are all zero (at least one must be positive)");
    }
    return out;
  }

  // A distribution; `timed` reads durations (with units), else plain numbers.
  Distribution distribution(const Node* n, std::string_view what, bool timed) const {
    auto value = [&](const Node* v, std::string_view field) {
      return timed ? duration(v, fmt::format("{} {}", what, field)) : number(v, fmt::format("{} {}", what, field));
    };
    Distribution d;
    if (n->is_scalar()) {
      d.a = value(n, "value");
      if (d.a < 0) fail(n, fmt::format("{} must not be negative", what));
      return d;
    }
    // `integer` is a form field's (read by form()), not a duration's.
    std::vector<std::string_view> keys{"dist", "value", "min", "max", "mode", "mean", "sd", "values", "weights"};
    if (!timed) keys.push_back("integer");
    expect_keys(n, what, keys);
    const Node* kind = n->get("dist");
    if (kind == nullptr) fail(n, fmt::format("{} needs 'dist' (fixed, uniform, triangular, exponential, lognormal, empirical)", what));
    const std::string k = text(kind, "dist");
    // Each family takes its own parameters only: `sd` on a fixed value is a
    // mistake, not something to ignore.
    auto takes = [&](std::initializer_list<std::string_view> params) {
      for (std::size_t i = 0; i < n->children.size(); i += 2) {
        const Node* key = n->children[i];
        if (key->value == "dist" || key->value == "integer") continue;
        if (std::find(params.begin(), params.end(), key->value) != params.end()) continue;
        std::string list;
        for (auto p : params) list += (list.empty() ? "" : ", ") + std::string(p);
        fail(key, fmt::format("{}: a {} distribution takes no '{}' (its parameters: {})", what, k, key->value, list));
      }
    };
    auto need = [&](std::string_view key) -> const Node* {
      const Node* v = n->get(key);
      if (v == nullptr) fail(n, fmt::format("{}: a {} distribution needs '{}'", what, k, key));
      return v;
    };
    if (k == "fixed") {
      takes({"value"});
      d.kind = Distribution::Kind::fixed;
      d.a = value(need("value"), "value");
    } else if (k == "uniform") {
      takes({"min", "max"});
      d.kind = Distribution::Kind::uniform;
      d.a = value(need("min"), "min");
      d.b = value(need("max"), "max");
      if (d.b < d.a) fail(n, fmt::format("{}: max is below min", what));
    } else if (k == "triangular") {
      takes({"min", "mode", "max"});
      d.kind = Distribution::Kind::triangular;
      d.a = value(need("min"), "min");
      d.b = value(need("mode"), "mode");
      d.c = value(need("max"), "max");
      if (!(d.a <= d.b && d.b <= d.c)) fail(n, fmt::format("{}: needs min <= mode <= max", what));
    } else if (k == "exponential") {
      takes({"mean"});
      d.kind = Distribution::Kind::exponential;
      d.a = value(need("mean"), "mean");
    } else if (k == "lognormal") {
      takes({"mean", "sd"});
      d.kind = Distribution::Kind::lognormal;
      d.a = value(need("mean"), "mean");
      d.b = value(need("sd"), "sd");
      if (d.a <= 0) fail(n, fmt::format("{}: a lognormal mean must be positive", what));
      // Its spread is log(1 + (sd/mean)^2): past any double, every draw is NaN.
      if (const double r = d.b / d.a; !std::isfinite(r) || !std::isfinite(r * r)) {
        fail(n, fmt::format("{}: sd {} is too large against the mean {}", what, d.b, d.a));
      }
    } else if (k == "empirical") {
      takes({"values", "weights"});
      d.kind = Distribution::Kind::empirical;
      const Node* vs = need("values");
      if (!vs->is_sequence() || vs->children.empty()) fail(vs, fmt::format("{}: values must be a non-empty list", what));
      for (const Node* v : vs->children) d.values.push_back(value(v, "value"));
      if (const Node* ws = n->get("weights")) {
        if (!ws->is_sequence() || ws->children.size() != d.values.size()) {
          fail(ws, fmt::format("{}: weights must be a list as long as values", what));
        }
        double total = 0;
        for (const Node* w : ws->children) {
          d.weights.push_back(number(w, fmt::format("{} weight", what)));
          if (d.weights.back() < 0) fail(w, fmt::format("{}: a weight must not be negative", what));
          total += d.weights.back();
        }
        if (!(total > 0)) fail(ws, fmt::format("{}: weights are all zero (at least one must be positive)", what));
        if (!std::isfinite(total)) fail(ws, fmt::format("{}: weights are too large", what));
      }
    } else {
      fail(kind, fmt::format("{}: unknown distribution '{}' (fixed, uniform, triangular, exponential, lognormal, empirical)", what, k));
    }
    for (double x : {d.a, d.b, d.c}) {
      if (x < 0) fail(n, fmt::format("{}: values must not be negative", what));
    }
    for (double x : d.values) {
      if (x < 0) fail(n, fmt::format("{}: values must not be negative", what));
    }
    return d;
  }

  Value scalar_value(const Node* n) const {
    if (!n->is_scalar()) fail(n, "a form value must be a string, number or boolean");
    if (!n->quoted) {
      if (n->value == "true") return Value(true);
      if (n->value == "false") return Value(false);
      double v = 0;
      auto [p, ec] = std::from_chars(n->value.data(), n->value.data() + n->value.size(), v);
      // "nan" and "inf" read as numbers here, but are text in YAML (and the schema).
      if (ec == std::errc() && p == n->value.data() + n->value.size() && std::isfinite(v)) return Value(v);
    }
    return Value(n->value);
  }

  std::vector<FieldGenerator> form(const Node* n) const {
    if (!n->is_mapping()) fail(n, "form must be a mapping of field name to generator");
    std::vector<FieldGenerator> out;
    for (std::size_t i = 0; i < n->children.size(); i += 2) {
      FieldGenerator g;
      g.name = n->children[i]->value;
      const Node* v = n->children[i + 1];
      const std::string what = fmt::format("form field '{}'", g.name);
      if (v->is_scalar()) {
        g.constant = scalar_value(v);
      } else if (v->is_mapping() && v->get("constant")) {
        expect_keys(v, what, {"constant"});
        g.constant = scalar_value(v->get("constant"));
      } else if (v->is_mapping() && v->get("choice")) {
        expect_keys(v, what, {"choice"});
        g.kind = FieldGenerator::Kind::choice;
        const Node* c = v->get("choice");
        if (c->is_sequence()) {
          for (const Node* x : c->children) g.choices.emplace_back(scalar_value(x), 1.0);
        } else if (c->is_mapping()) {
          for (std::size_t j = 0; j < c->children.size(); j += 2) {
            const double w = number(c->children[j + 1], "choice weight");
            if (w < 0) fail(c->children[j + 1], "choice weight must not be negative");
            g.choices.emplace_back(scalar_value(c->children[j]), w);
          }
        } else {
          fail(c, fmt::format("{}: choice must be a list of values or a mapping of value to weight", what));
        }
        if (g.choices.empty()) fail(c, fmt::format("{}: choice has no values", what));
        double total = 0;
        for (const auto& choice : g.choices) total += choice.second;
        if (!(total > 0)) fail(c, fmt::format("{}: choice weights are all zero (at least one must be positive)", what));
        if (!std::isfinite(total)) fail(c, fmt::format("{}: choice weights are too large", what));
      } else if (v->is_mapping()) {
        g.kind = FieldGenerator::Kind::number;
        if (const Node* i2 = v->get("integer"); i2 && boolean(i2, "integer")) g.kind = FieldGenerator::Kind::integer;
        g.number = distribution(v, what, false);
      } else {
        fail(v, fmt::format("{}: a value, or constant / choice / dist", what));
      }
      out.push_back(std::move(g));
    }
    return out;
  }

  StepBehaviour step(const Node* n, bool defaults) const {
    const std::string_view what = defaults ? "defaults" : "a step";
    if (defaults) {
      expect_keys(n, what, {"service", "correction", "reject", "return", "return_to", "withdraw", "applicant_delay"});
    } else {
      expect_keys(n, what, {"flow", "node", "service", "correction", "reject", "return", "return_to", "withdraw", "applicant_delay"});
    }
    StepBehaviour s;
    s.where = where(n);
    if (const Node* v = n->get("flow")) s.flow = text(v, "flow");
    if (const Node* v = n->get("node")) s.node = text(v, "node");
    if (!defaults && s.flow.empty() && s.node.empty()) fail(n, "a step needs 'flow', 'node' or both");
    if (const Node* v = n->get("service")) s.service = distribution(v, "service", true);
    if (const Node* v = n->get("applicant_delay")) s.applicant_delay = distribution(v, "applicant_delay", true);
    if (const Node* v = n->get("correction")) s.correction = probability(v, "correction");
    if (const Node* v = n->get("reject")) s.reject = probability(v, "reject");
    if (const Node* v = n->get("return")) s.return_to = probability(v, "return");
    if (const Node* v = n->get("withdraw")) s.withdraw = probability(v, "withdraw");
    if (const Node* v = n->get("return_to")) s.return_target = text(v, "return_to");
    const double sum = s.correction.value_or(0) + s.reject.value_or(0) + s.return_to.value_or(0) + s.withdraw.value_or(0);
    if (sum > 1 + 1e-12) fail(n, fmt::format("correction + reject + return + withdraw = {} is more than 1", sum));
    return s;
  }

  std::vector<WorkingPeriod> hours(const Node* n) const {
    if (!n->is_sequence()) fail(n, "hours must be a list such as [\"09:00-12:00\", \"13:30-17:30\"]");
    std::vector<WorkingPeriod> out;
    for (const Node* h : n->children) {
      unsigned h1 = 0, m1 = 0, h2 = 0, m2 = 0;
      char extra = 0;
      // Exactly HH:MM-HH:MM (sscanf alone took "9:00" and "+9:00").
      auto shaped = [](const std::string& v) {
        if (v.size() != 11 || v[2] != ':' || v[5] != '-' || v[8] != ':') return false;
        for (std::size_t i : {0, 1, 3, 4, 6, 7, 9, 10}) {
          if (v[i] < '0' || v[i] > '9') return false;
        }
        return true;
      };
      if (!h->is_scalar() || !shaped(h->value) || std::sscanf(h->value.c_str(), "%2u:%2u-%2u:%2u%c", &h1, &m1, &h2, &m2, &extra) != 4 ||
          m1 > 59 || m2 > 59 || h1 * 60 + m1 >= h2 * 60 + m2 || h2 * 60 + m2 > 24 * 60) {
        fail(h, "a working period must be 'HH:MM-HH:MM' with the start before the end, within one day");
      }
      const WorkingPeriod p{static_cast<int>(h1 * 60 + m1), static_cast<int>(h2 * 60 + m2)};
      if (!out.empty() && p.start_minute < out.back().end_minute) fail(h, "working periods must be in order and not overlap");
      out.push_back(p);
    }
    return out;
  }

  // `listed`: the users of the groups read before, with where each was
  // listed (a user is one person: in two groups they would be two).
  StaffGroup staff(const Node* n, std::map<std::string, const Node*>& listed) const {
    expect_keys(n, "a staff group", {"department", "role", "count", "users", "hours", "every_day"});
    StaffGroup g;
    g.where = where(n);
    const Node* d = n->get("department");
    if (d == nullptr) fail(n, "a staff group needs 'department'");
    g.department = text(d, "department");
    if (const Node* v = n->get("role")) g.role = text(v, "role");
    if (const Node* v = n->get("users")) {
      if (!v->is_sequence() || v->children.empty()) fail(v, "users must be a non-empty list of user ids");
      for (const Node* u : v->children) {
        g.users.push_back(text(u, "user"));
        if (std::count(g.users.begin(), g.users.end(), g.users.back()) > 1) {
          fail(u, fmt::format("user '{}' is listed twice in this group", g.users.back()));
        }
        if (const auto first = listed.find(g.users.back()); first != listed.end()) {
          fail(u, fmt::format("user '{}' is already listed in the staff group at line {}, column {}: a user is one "
                              "person, and a second listing would add a second one (list each user in one group)",
                              g.users.back(), first->second->line, first->second->column));
        }
      }
      for (std::size_t i = 0; i < g.users.size(); ++i) listed.emplace(g.users[i], v->children[i]);
      g.count = static_cast<int>(g.users.size());
    }
    if (const Node* v = n->get("count")) {
      const double c = number(v, "count");
      if (c < 0 || c != std::floor(c) || c > 100000) fail(v, "count must be a whole number from 0 to 100000");
      if (!g.users.empty() && static_cast<int>(c) != g.count) fail(v, "count differs from the number of users");
      g.count = static_cast<int>(c);
    }
    if (const Node* v = n->get("hours")) g.hours = hours(v);
    if (const Node* v = n->get("every_day")) g.every_day = boolean(v, "every_day");
    return g;
  }

  ArrivalStream arrival(const Node* n) const {
    expect_keys(n, "an arrival stream", {"target", "rate", "per", "trace", "applicants", "form", "incomplete"});
    ArrivalStream a;
    a.where = where(n);
    const Node* t = n->get("target");
    if (t == nullptr) fail(n, "an arrival stream needs 'target' (an item code or a theme id)");
    a.target = text(t, "target");
    const Node* rate = n->get("rate");
    const Node* trace = n->get("trace");
    if ((rate == nullptr) == (trace == nullptr)) fail(n, "an arrival stream needs either 'rate' (Poisson) or 'trace' (timestamps)");
    if (rate) {
      a.rate = number(rate, "rate");
      if (a.rate <= 0) fail(rate, "rate must be positive");
      const Node* per = n->get("per");
      const std::string p = per ? text(per, "per") : "working_day";
      if (p == "working_hour") a.per = ArrivalStream::Per::working_hour;
      else if (p == "working_day") a.per = ArrivalStream::Per::working_day;
      else if (p == "hour") a.per = ArrivalStream::Per::hour;
      else if (p == "day") a.per = ArrivalStream::Per::day;
      else fail(per, fmt::format("per must be working_hour, working_day, hour or day, not '{}'", p));
    } else {
      if (n->get("per")) fail(n->get("per"), "'per' goes with 'rate', not with 'trace'");
      a.trace = true;
      if (!trace->is_sequence()) fail(trace, "trace must be a list of local times");
      if (trace->children.empty()) fail(trace, "trace is empty: list the submission times, or give a 'rate'");
      for (const Node* x : trace->children) a.times.push_back(timestamp(x, "a trace entry"));
      std::sort(a.times.begin(), a.times.end());
    }
    if (const Node* v = n->get("applicants")) a.applicants = applicant_mix(v);
    if (const Node* v = n->get("form")) a.form = form(v);
    if (const Node* v = n->get("incomplete")) a.incomplete = probability(v, "incomplete");
    return a;
  }

  Scenario scenario(const Node* root, const std::filesystem::path& base) const {
    if (root == nullptr || !root->is_mapping() || root->get("scenario") == nullptr) {
      fail(root, "a scenario file has one top-level key, 'scenario'");
    }
    expect_keys(root, "the document", {"scenario"});
    const Node* n = root->get("scenario");
    expect_keys(n, "scenario", {"name", "definitions", "calendar", "start", "horizon", "drain", "warmup", "seed",
                                "queue", "applicants", "form", "arrivals", "defaults", "steps", "staff", "handlers"});
    Scenario s;
    s.file = file_;
    if (const Node* v = n->get("name")) s.name = text(v, "name");
    if (const Node* v = n->get("definitions")) {
      if (!v->is_sequence()) fail(v, "definitions must be a list of paths (relative to the scenario file)");
      for (const Node* p : v->children) {
        std::filesystem::path path = text(p, "a definitions path");
        s.definitions.push_back(path.is_absolute() ? path : (base / path).lexically_normal());
      }
    }
    if (const Node* v = n->get("calendar")) {
      s.calendar = text(v, "calendar");
      s.calendar_where = where(v);
    }
    const Node* start = n->get("start");
    if (start == nullptr) fail(n, "scenario needs 'start' (the first day, YYYY-MM-DD)");
    s.start = date(start, "start");
    if (!sim::start_in_range(s.start)) {
      fail(start, sim::start_out_of_range(start->value));
    }
    if (const Node* v = n->get("horizon")) {
      const double h = duration(v, "horizon");  // at most the calendars' span: no overflow below
      if (std::llround(h) < 1) fail(v, "horizon must be at least 1 s");
      s.horizon = std::chrono::seconds(static_cast<std::int64_t>(std::llround(h)));
    }
    if (!sim::ends_in_range(s.start, s.horizon)) {
      const Node* v = n->get("horizon");
      fail(v ? v : start, fmt::format("horizon: start {} + {} ends after 9999-12-31, beyond the years the calendars "
                                      "cover (0001..9999)",
                                      start->value, v ? v->value : std::string("365 days")));
    }
    if (const Node* v = n->get("drain")) s.drain = boolean(v, "drain");
    if (const Node* v = n->get("warmup")) {
      s.warmup = std::chrono::seconds(static_cast<std::int64_t>(std::llround(duration(v, "warmup"))));
      if (s.warmup >= s.horizon) fail(v, "warmup must be shorter than the horizon");
    }
    if (const Node* v = n->get("seed")) {
      // Read as written, not through a double: every 64-bit seed, exactly.
      if (v->quoted) fail(v, fmt::format("seed must be a whole number, not the string '{}'", v->value));
      const std::string t = text(v, "seed");
      std::uint64_t seed = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), seed);
      if (t.empty() || ec != std::errc() || end != t.data() + t.size()) {
        fail(v, fmt::format("seed '{}' is not a whole number from 0 to 18446744073709551615", t));
      }
      s.seed = seed;
    }
    if (const Node* v = n->get("queue")) {
      const std::string q = text(v, "queue");
      if (q == "nearest_deadline") s.nearest_deadline_first = true;
      else if (q != "fcfs") fail(v, fmt::format("queue must be fcfs or nearest_deadline, not '{}'", q));
    }
    if (const Node* v = n->get("applicants")) s.applicants = applicant_mix(v);
    if (const Node* v = n->get("form")) s.form = form(v);
    const Node* arrivals = n->get("arrivals");
    if (arrivals == nullptr || !arrivals->is_sequence() || arrivals->children.empty()) {
      fail(arrivals ? arrivals : n, "scenario needs 'arrivals', a non-empty list of streams");
    }
    for (const Node* a : arrivals->children) s.arrivals.push_back(arrival(a));
    if (const Node* v = n->get("defaults")) s.defaults = step(v, true);
    if (const Node* v = n->get("steps")) {
      if (!v->is_sequence()) fail(v, "steps must be a list");
      for (const Node* x : v->children) {
        s.steps.push_back(step(x, false));
        // Two entries for the same flow and node: one would silently win.
        const StepBehaviour& added = s.steps.back();
        for (std::size_t i = 0; i + 1 < s.steps.size(); ++i) {
          if (s.steps[i].flow == added.flow && s.steps[i].node == added.node) {
            fail(x, fmt::format("a second entry for {}{}{} (the first is at line {})", added.flow.empty() ? "" : "flow '" + added.flow + "'",
                                added.flow.empty() || added.node.empty() ? "" : ", ",
                                added.node.empty() ? "" : "node '" + added.node + "'", s.steps[i].where.line));
          }
        }
      }
    }
    const Node* staff_node = n->get("staff");
    if (staff_node == nullptr || !staff_node->is_sequence()) fail(staff_node ? staff_node : n, "scenario needs 'staff', a list of staff groups");
    std::map<std::string, const Node*> users;
    for (const Node* x : staff_node->children) s.staff.push_back(staff(x, users));
    if (const Node* v = n->get("handlers")) {
      if (!v->is_mapping()) fail(v, "handlers must map a handler name to the probability that it approves");
      for (std::size_t i = 0; i < v->children.size(); i += 2) {
        s.handlers[v->children[i]->value] = probability(v->children[i + 1], "handler approval probability");
        s.handler_locations[v->children[i]->value] = where(v->children[i]);
      }
    }
    return s;
  }

 private:
  std::string file_;
};

}  // namespace

double Distribution::mean() const noexcept {
  switch (kind) {
    case Kind::fixed: return a;
    case Kind::uniform: return (a + b) / 2;
    case Kind::triangular: return (a + b + c) / 3;
    case Kind::exponential:
    case Kind::lognormal: return a;
    case Kind::empirical: {
      if (values.empty()) return 0;
      double sum = 0, total = 0;
      for (std::size_t i = 0; i < values.size(); ++i) {
        const double w = weights.empty() ? 1.0 : weights[i];
        sum += w * values[i];
        total += w;
      }
      return total > 0 ? sum / total : 0;
    }
  }
  return 0;
}

std::string_view to_string(Distribution::Kind kind) noexcept {
  switch (kind) {
    case Distribution::Kind::fixed: return "fixed";
    case Distribution::Kind::uniform: return "uniform";
    case Distribution::Kind::triangular: return "triangular";
    case Distribution::Kind::exponential: return "exponential";
    case Distribution::Kind::lognormal: return "lognormal";
    case Distribution::Kind::empirical: return "empirical";
  }
  return "?";
}

Scenario parse_scenario(std::string_view text, const std::string& name) {
  yaml::File file;
  file.name = name;
  std::vector<Diagnostic> diagnostics;
  yaml::parse(text, LoadOptions{}, file, diagnostics);
  for (const auto& d : diagnostics) {
    if (d.severity == Severity::error) throw Error(ErrorCode::invalid_input, d.to_string());
  }
  Reader reader(name);
  if (file.documents.size() != 1) reader.fail(nullptr, "a scenario file holds exactly one YAML document");
  return reader.scenario(file.documents.front(), std::filesystem::path(name).parent_path());
}

Scenario load_scenario(const std::filesystem::path& path) {
  // Bounded whatever the file is: a pipe or a device is read up to the limit.
  const TextFile read = read_text_file(path, LoadOptions{}.max_file_bytes);
  if (!read.error.empty()) {
    throw Error(ErrorCode::invalid_input,
                fmt::format("{}: {}", path.string(), read.too_large ? read.error : "cannot read the scenario file: " + read.error));
  }
  return parse_scenario(read.text, path.string());
}

}  // namespace onestop
