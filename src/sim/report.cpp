// Reports of a simulation run: text tables, JSON, CSV, and two runs side
// by side. Numbers are rounded to fixed decimals so that the same run gives
// the same bytes.

#include <onestop/simulation.hpp>
#include <onestop/supervision.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <cmath>
#include <initializer_list>
#include <string_view>
#include <sstream>

namespace onestop {

namespace {

using json = nlohmann::ordered_json;

double r4(double x) { return std::isfinite(x) ? std::round(x * 10000.0) / 10000.0 : 0.0; }

json summary_json(const Summary& s) {
  return json{{"count", s.count}, {"mean", r4(s.mean)}, {"p50", r4(s.p50)}, {"p90", r4(s.p90)}, {"p99", r4(s.p99)}, {"max", r4(s.max)}};
}

json to_json(const SimulationReport& r) {
  json j;
  j["scenario"] = r.scenario;
  j["seed"] = r.seed;
  j["calendar"] = r.calendar;
  j["start"] = r.start;
  j["horizon_end"] = r.horizon_end;
  j["ended"] = r.ended;
  if (!r.measured_from.empty()) j["measured_from"] = r.measured_from;  // after a warmup
  j["horizon_working_days"] = r4(r.horizon_working_days);
  json k;
  k["arrived"] = r.arrived;
  k["refused_at_pre_review"] = r.refused;
  k["finished"] = r.finished;
  k["open"] = r.open;
  k["throughput_per_working_day"] = r4(r.throughput_per_working_day);
  // Nothing finished: no rate (null), not 100 %.
  k["on_time_rate"] = r.rated > 0 ? json(r4(r.on_time_rate)) : json(nullptr);
  k["yellow_warnings"] = r.yellow;
  k["red_warnings"] = r.red;
  k["escalations"] = r.escalations;
  k["deemed_consents"] = r.deemed_consents;
  k["corrections"] = r.corrections;
  k["returns"] = r.returns;
  k["events"] = r.events;
  k["actions"] = r.actions;
  j["kpis"] = k;
  json targets = json::array();
  for (const auto& t : r.targets) {
    json x;
    x["target"] = t.target;
    x["name"] = t.name;
    x["kind"] = t.is_theme ? "theme" : "item";
    if (!t.part_of.empty()) x["part_of"] = t.part_of;
    x["arrived"] = t.arrived;
    x["refused"] = t.refused;
    x["finished"] = t.finished;
    x["open"] = t.open;
    json o = json::object();
    for (const auto& [k2, v] : t.outcomes) o[k2] = v;
    x["outcomes"] = o;
    x["cycle_days"] = summary_json(t.cycle_days);
    if (t.part_of.empty()) {
      x["handling_days"] = summary_json(t.handling_days);
      x["on_time"] = t.on_time;
      x["overdue"] = t.overdue;
      x["open_overdue"] = t.open_overdue;
      x["on_time_rate"] = t.on_time + t.overdue > 0 ? json(r4(t.on_time_rate)) : json(nullptr);
      x["yellow_warnings"] = t.yellow;
      x["red_warnings"] = t.red;
    }
    x["histogram"] = t.histogram;
    targets.push_back(x);
  }
  j["targets"] = targets;
  json steps = json::array();
  for (const auto& s : r.steps) {
    steps.push_back(json{{"flow", s.flow},
                         {"node", s.node},
                         {"name", s.name},
                         {"item", s.item},
                         {"staffed_by", s.staffed_by},
                         {"tasks", s.tasks},
                         {"served", s.served},
                         {"approved", s.approved},
                         {"rejected", s.rejected},
                         {"returned", s.returned},
                         {"corrections", s.corrections},
                         {"withdrawn", s.withdrawn},
                         {"timed_out", s.timed_out},
                         {"wait_hours", summary_json(s.wait_hours)},
                         {"total_wait_hours", r4(s.total_wait_hours)},
                         {"mean_service_hours", r4(s.mean_service_hours)}});
  }
  j["steps"] = steps;
  json deps = json::array();
  for (const auto& d : r.departments) {
    deps.push_back(json{{"department", d.department},
                        {"name", d.name},
                        {"staff", d.staff},
                        {"available_hours", r4(d.available_hours)},
                        {"busy_hours", r4(d.busy_hours)},
                        {"utilisation", r4(d.utilisation)},
                        {"served", d.served}});
  }
  j["departments"] = deps;
  json b = json::array();
  for (const auto& x : r.bottlenecks) {
    b.push_back(json{{"step", x.step}, {"wait_hours_per_case", r4(x.score)}, {"mean_wait_hours", r4(x.mean_wait_hours)},
                     {"utilisation", r4(x.utilisation)}});
  }
  j["bottlenecks"] = b;
  json tl = json::array();
  for (const auto& p : r.timeline) tl.push_back(json{{"date", p.date}, {"open", p.open}, {"overdue", p.overdue}});
  j["timeline"] = tl;
  j["warnings"] = r.warnings;
  return j;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// ", measured from ... after the warmup" when the run had one (its figures
// leave the warmup out), else nothing.
std::string measured_text(const SimulationReport& r) {
  return r.measured_from.empty() ? std::string() : fmt::format(", measured from {} after the warmup", r.measured_from.substr(0, 16));
}

}  // namespace

std::string report_json(const SimulationReport& report) { return to_json(report).dump(2) + "\n"; }

std::string report_text(const SimulationReport& r) {
  std::ostringstream o;
  o << fmt::format("Simulation: {} (seed {})\n", r.scenario.empty() ? "scenario" : r.scenario, r.seed);
  o << fmt::format("Period: {} to {}{} ({:.2f} working days, calendar {}); run ended {}\n\n", r.start,
                   r.horizon_end.substr(0, 10), measured_text(r), r.horizon_working_days, r.calendar, r.ended.substr(0, 16));
  o << "KPI                                 value\n";
  o << "----------------------------------  ------------\n";
  auto row = [&](const std::string& k, const std::string& v) { o << fmt::format("{:<34}  {:>12}\n", k, v); };
  row("applications", std::to_string(r.arrived));
  row("refused at pre-review", std::to_string(r.refused));
  row("cases finished", std::to_string(r.finished));
  row("cases open at the end", std::to_string(r.open));
  row("throughput (cases/working day)", fmt::format("{:.2f}", r.throughput_per_working_day));
  row("on-time rate", r.rated > 0 ? percent_text(r.on_time_rate) : std::string("-"));
  row("yellow warnings", std::to_string(r.yellow));
  row("red warnings", std::to_string(r.red));
  row("escalations", std::to_string(r.escalations));
  row("deemed consents", std::to_string(r.deemed_consents));
  row("correction requests", std::to_string(r.corrections));
  row("returns", std::to_string(r.returns));
  row("simulated events", std::to_string(r.events));
  o << "\nCycle time in working days (submission to end, corrections included)\n";
  o << fmt::format("{:<28} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>8}\n", "target", "cases", "done", "mean", "p50", "p90", "p99", "on time");
  for (const auto& t : r.targets) {
    const std::string name = t.part_of.empty() ? t.target : "  " + t.target;
    o << fmt::format("{:<28} {:>7} {:>7} {:>6.1f} {:>6.1f} {:>6.1f} {:>6.1f} {:>8}\n", name, t.arrived, t.finished,
                     t.cycle_days.mean, t.cycle_days.p50, t.cycle_days.p90, t.cycle_days.p99,
                     t.part_of.empty() && t.on_time + t.overdue > 0 ? percent_text(t.on_time_rate) : std::string("-"));
  }
  o << "\nSteps: waiting for staff (hours) and service (working hours)\n";
  o << fmt::format("{:<44} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6}\n", "flow/step", "served", "t/out", "wait", "p90", "serve", "corr");
  for (const auto& s : r.steps) {
    o << fmt::format("{:<44} {:>7} {:>7} {:>6.1f} {:>6.1f} {:>6.2f} {:>6}\n", s.flow + "/" + s.node, s.served, s.timed_out,
                     s.wait_hours.mean, s.wait_hours.p90, s.mean_service_hours, s.corrections);
  }
  o << "\nDepartments: staff utilisation\n";
  o << fmt::format("{:<28} {:>5} {:>10} {:>10} {:>7}\n", "department", "staff", "busy h", "on duty h", "use");
  for (const auto& d : r.departments) {
    o << fmt::format("{:<28} {:>5} {:>10.0f} {:>10.0f} {:>7}\n", d.department, d.staff, d.busy_hours, d.available_hours, percent_text(d.utilisation));
  }
  o << "\nBottlenecks (waiting hours per case)\n";
  int rank = 0;
  for (const auto& b : r.bottlenecks) {
    if (++rank > 5) break;
    o << fmt::format("{}. {:<44} {:>7.2f} h/case, mean wait {:.1f} h, staff use {}\n", rank, b.step, b.score, b.mean_wait_hours,
                     percent_text(b.utilisation));
  }
  for (const auto& w : r.warnings) o << "warning: " << w << '\n';
  return o.str();
}

std::string report_csv(const SimulationReport& r) {
  std::ostringstream o;
  o << "section,key,metric,value\n";
  const json j = to_json(r);
  // No value (null: no on-time rate without finished cases) is an empty field.
  auto value = [](const json& v) { return v.is_null() ? std::string() : v.dump(); };
  for (const auto& [k, v] : j["kpis"].items()) o << "kpi,," << k << ',' << value(v) << '\n';
  // One row per field of `record` (nested objects as `field.sub`), less the
  // fields that name it.
  auto rows = [&o, &value](std::string_view section, const std::string& key, const json& record,
                   std::initializer_list<std::string_view> naming) {
    for (const auto& [k, v] : record.items()) {
      if (std::find(naming.begin(), naming.end(), k) != naming.end()) continue;
      if (v.is_object()) {
        for (const auto& [k2, v2] : v.items()) o << section << ',' << key << ',' << k << '.' << k2 << ',' << v2.dump() << '\n';
      } else {
        o << section << ',' << key << ',' << k << ',' << csv_field(v.is_string() ? v.get<std::string>() : value(v)) << '\n';
      }
    }
  };
  for (const auto& t : j["targets"]) {
    rows("target", csv_field(t["target"].get<std::string>()), t, {"target", "name", "histogram"});
  }
  for (const auto& s : j["steps"]) {
    rows("step", csv_field(s["flow"].get<std::string>() + "/" + s["node"].get<std::string>()), s, {"flow", "node", "name"});
  }
  for (const auto& d : j["departments"]) rows("department", csv_field(d["department"].get<std::string>()), d, {"department", "name"});
  int rank = 0;
  for (const auto& b : j["bottlenecks"]) {
    o << "bottleneck," << ++rank << ",step," << csv_field(b["step"].get<std::string>()) << '\n';
    o << "bottleneck," << rank << ",wait_hours_per_case," << b["wait_hours_per_case"].dump() << '\n';
    o << "bottleneck," << rank << ",mean_wait_hours," << b["mean_wait_hours"].dump() << '\n';
    o << "bottleneck," << rank << ",utilisation," << b["utilisation"].dump() << '\n';
  }
  for (const auto& p : j["timeline"]) {
    o << "timeline," << p["date"].get<std::string>() << ",open," << p["open"].dump() << '\n';
    o << "timeline," << p["date"].get<std::string>() << ",overdue," << p["overdue"].dump() << '\n';
  }
  return o.str();
}

std::string compare_text(const SimulationReport& a, const SimulationReport& b) {
  std::ostringstream o;
  o << fmt::format("What-if: A = {} | B = {}\n\n", a.scenario, b.scenario);
  o << fmt::format("{:<34} {:>12} {:>12} {:>12}\n", "KPI", "A", "B", "B - A");
  // A figure of both runs and their difference; `-` where a run has none
  // (a target or department only the other has, no finished case).
  auto row = [&](const std::string& k, std::optional<double> x, std::optional<double> y, const char* f) {
    auto text = [&](std::optional<double> v) { return v ? fmt::format(fmt::runtime(f), *v) : std::string("-"); };
    o << fmt::format("{:<34} {:>12} {:>12} {:>12}\n", k, text(x), text(y),
                     x && y ? fmt::format(fmt::runtime(std::string("{:+") + (f + 2)), *y - *x) : std::string("-"));
  };
  auto num = [&](const std::string& k, double x, double y, const char* f) { row(k, x, y, f); };
  num("applications", static_cast<double>(a.arrived), static_cast<double>(b.arrived), "{:.0f}");
  num("cases finished", static_cast<double>(a.finished), static_cast<double>(b.finished), "{:.0f}");
  num("cases open at the end", static_cast<double>(a.open), static_cast<double>(b.open), "{:.0f}");
  num("throughput (cases/working day)", a.throughput_per_working_day, b.throughput_per_working_day, "{:.2f}");
  auto on_time = [](const SimulationReport& r) { return r.rated > 0 ? std::optional<double>(100 * r.on_time_rate) : std::nullopt; };
  row("on-time rate (%)", on_time(a), on_time(b), "{:.1f}");
  num("yellow warnings", static_cast<double>(a.yellow), static_cast<double>(b.yellow), "{:.0f}");
  num("red warnings", static_cast<double>(a.red), static_cast<double>(b.red), "{:.0f}");
  num("deemed consents", static_cast<double>(a.deemed_consents), static_cast<double>(b.deemed_consents), "{:.0f}");
  // Targets and departments of either run: A's in order, then B's own.
  auto top = [](const SimulationReport& r, const std::string& id) -> const TargetFigures* {
    for (const auto& t : r.targets) {
      if (t.target == id && t.part_of.empty()) return &t;
    }
    return nullptr;
  };
  std::vector<std::string> targets;
  for (const auto* r : {&a, &b}) {
    for (const auto& t : r->targets) {
      if (t.part_of.empty() && std::find(targets.begin(), targets.end(), t.target) == targets.end()) targets.push_back(t.target);
    }
  }
  for (const auto& id : targets) {
    const TargetFigures* ta = top(a, id);
    const TargetFigures* tb = top(b, id);
    auto mean = [](const TargetFigures* t) { return t && t->cycle_days.count > 0 ? std::optional<double>(t->cycle_days.mean) : std::nullopt; };
    auto p90 = [](const TargetFigures* t) { return t && t->cycle_days.count > 0 ? std::optional<double>(t->cycle_days.p90) : std::nullopt; };
    row(id + " mean days", mean(ta), mean(tb), "{:.2f}");
    row(id + " p90 days", p90(ta), p90(tb), "{:.2f}");
  }
  auto dep = [](const SimulationReport& r, const std::string& id) -> const DepartmentFigures* {
    for (const auto& d : r.departments) {
      if (d.department == id) return &d;
    }
    return nullptr;
  };
  std::vector<std::string> departments;
  for (const auto* r : {&a, &b}) {
    for (const auto& d : r->departments) {
      if (std::find(departments.begin(), departments.end(), d.department) == departments.end()) departments.push_back(d.department);
    }
  }
  for (const auto& id : departments) {
    const DepartmentFigures* da = dep(a, id);
    const DepartmentFigures* db = dep(b, id);
    // A department one run does not staff has no staff there, and no use:
    // whether it lists no group or a group of none (count: 0).
    auto use = [](const DepartmentFigures* d) {
      return d && d->staff > 0 ? std::optional<double>(100 * d->utilisation) : std::nullopt;
    };
    row(id + " staff", static_cast<double>(da ? da->staff : 0), static_cast<double>(db ? db->staff : 0), "{:.0f}");
    row(id + " use (%)", use(da), use(db), "{:.1f}");
  }
  // Each run's warnings, as its own report lists them, marked with the run.
  bool any = false;
  for (const auto& [run, r] : {std::pair{"A", &a}, std::pair{"B", &b}}) {
    for (const auto& w : r->warnings) {
      if (!any) o << '\n';
      any = true;
      o << "warning: " << run << ": " << w << '\n';
    }
  }
  return o.str();
}

std::string compare_json(const SimulationReport& a, const SimulationReport& b) {
  json j;
  j["a"] = to_json(a);
  j["b"] = to_json(b);
  return j.dump(2) + "\n";
}

}  // namespace onestop
