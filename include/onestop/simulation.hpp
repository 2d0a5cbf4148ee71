#pragma once

// The simulator: runs many cases on virtual time through the real Engine
// (same code path, same Store interface as live use). A Scenario says how
// applications arrive, who applies with what form data, how long each step
// takes and how it ends, and which staff work when; simulate() plays it
// with a discrete-event loop on a ManualClock, deterministically for a seed,
// and returns a SimulationReport (text, JSON, CSV, HTML). docs/simulation.md
// is the scenario reference.

#include <onestop/calendar.hpp>
#include <onestop/clock.hpp>
#include <onestop/definitions.hpp>
#include <onestop/expr.hpp>
#include <onestop/model.hpp>
#include <onestop/store.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace onestop {

class Engine;

// A probability distribution of a non-negative quantity (durations in
// seconds, or plain numbers for form data). Sampled from the scenario's own
// generator with portable formulas, so a seed gives the same numbers with
// every standard library.
struct Distribution {
  enum class Kind : std::uint8_t { fixed, uniform, triangular, exponential, lognormal, empirical };
  Kind kind = Kind::fixed;
  // fixed: a; uniform: [a, b]; triangular: min a, mode b, max c;
  // exponential: mean a; lognormal: mean a, standard deviation b.
  double a = 0;
  double b = 0;
  double c = 0;
  std::vector<double> values;   // empirical: observed values, drawn with `weights` (equal when empty)
  std::vector<double> weights;
  // The mean of the distribution.
  double mean() const noexcept;
};

std::string_view to_string(Distribution::Kind kind) noexcept;

// How one form field of generated applications is filled.
struct FieldGenerator {
  enum class Kind : std::uint8_t { constant, choice, number, integer };
  std::string name;
  Kind kind = Kind::constant;
  Value constant;                               // constant
  std::vector<std::pair<Value, double>> choices;  // choice: value and weight
  Distribution number;                          // number / integer (rounded)
};

// A stream of applications for one item or theme.
struct ArrivalStream {
  enum class Per : std::uint8_t { working_hour, working_day, hour, day };
  std::string target;   // item code or theme id
  bool trace = false;   // true: `times`; false: a Poisson process of `rate` per `per`
  double rate = 0;
  // working_hour / working_day: arrivals only in the calendar's working hours,
  // `rate` per hour of working time or per working day; hour / day: round the clock.
  Per per = Per::working_day;
  std::vector<std::chrono::local_seconds> times;  // trace: submission times, local wall time of the calendar
  // Applicant kinds and their weights for this stream (the scenario's when empty).
  std::vector<std::pair<ApplicantKind, double>> applicants;
  std::vector<FieldGenerator> form;  // added to (and overriding) the scenario's
  double incomplete = 0;   // probability that a required material is missing (refused at pre-review)
  SourceLocation where;
};

// What happens at a step (task or countersign place) and how long it takes.
// Matched by flow and node id; an empty flow or node matches any. The most
// specific entry wins (flow+node, node, flow, default).
struct StepBehaviour {
  std::string flow;
  std::string node;
  std::optional<Distribution> service;  // working time of the staff member
  std::optional<double> correction;     // request_correction (补正); the applicant answers later
  std::optional<double> reject;
  std::optional<double> return_to;      // 退回 to `return_target` (the first declared return when empty)
  std::optional<double> withdraw;       // the applicant withdraws instead
  std::string return_target;
  std::optional<Distribution> applicant_delay;  // wall time until the applicant resubmits
  SourceLocation where;
};

// Staff of one department (and role) with their working hours. Members are
// named "<department>.<role>.<n>" (or `users`, when given).
struct StaffGroup {
  std::string department;
  std::string role;               // empty: department membership only
  std::vector<std::string> users;  // explicit user ids (count = their number)
  int count = 1;
  std::vector<WorkingPeriod> hours;  // empty: the calendar's working hours
  bool every_day = false;            // also on rest days and holidays
  SourceLocation where;
};

// A whole scenario. Durations are in seconds.
struct Scenario {
  std::string name;
  std::string file;  // where it was read from ("" when built in code)
  std::vector<std::filesystem::path> definitions;  // definition paths (relative ones resolved against the file)
  std::string calendar;     // calendar id; also the catalog default when it names none
  // The run must lie inside the years the calendars cover: start from
  // 0001-01-02, start + horizon (at least 1 s) by 9999-12-31.
  std::chrono::local_days start{};  // the first day (local date of the calendar)
  std::chrono::seconds horizon{365 * 24 * 3600};  // arrivals stop at start + horizon
  bool drain = false;       // after the horizon, run on until every case has ended
  std::chrono::seconds warmup{0};  // cases submitted before start + warmup are left out of the figures
  std::uint64_t seed = 1;
  bool nearest_deadline_first = false;  // queue discipline: FCFS (default) or nearest deadline
  std::vector<ArrivalStream> arrivals;
  std::vector<std::pair<ApplicantKind, double>> applicants;  // default mix: what the targets accept
  std::vector<FieldGenerator> form;
  StepBehaviour defaults;           // flow and node empty
  std::vector<StepBehaviour> steps;
  std::vector<StaffGroup> staff;
  std::map<std::string, double> handlers;  // automatic step handler name -> probability it approves (1 when absent)
  std::map<std::string, SourceLocation> handler_locations;  // where each of `handlers` was named (for errors)
  SourceLocation calendar_where;                            // where `calendar` was named (for errors)
};

// Reads a scenario file. Throws Error(invalid_input) whose message starts
// with "file:line:col:" and says what is wrong.
Scenario load_scenario(const std::filesystem::path& file);
// The same from text; `name` stands for the file in messages and resolves
// relative definition paths (against its directory).
Scenario parse_scenario(std::string_view text, const std::string& name);

// Simulation settings.
struct SimulationOptions {
  std::shared_ptr<Store> store;        // open_memory_store() when null; must hold no cases
  std::optional<std::uint64_t> seed;   // overrides the scenario's
  // 1 commits every action on its own, as live use does: best for the
  // memory store. More writes the store behind, in batches of this many
  // (Store::commit_batch, one transaction each) on a second thread while
  // the run goes on; the run answers the engine's loads and due timers
  // itself meanwhile, and waits for the writes before any other read and
  // at the end (before `inspect`, whose commits are written at once). A
  // persistent store runs several times faster with 2048.
  // The report is the same either way. A store that fails to write fails
  // the run (Error(storage), its message included). The store must be safe
  // for use from two threads (as Store asks of every store).
  std::size_t batch = 1;
  // Called now and then with the share of the horizon simulated (0..1).
  std::function<void(double)> progress;
  // Called at the end with the engine that ran the cases, before it closes
  // (verify histories, query). The in-memory store's cases point into that
  // engine's catalog: inspect them here, not after simulate() returns.
  std::function<void(Engine&)> inspect;
};

// Mean and percentiles of a sample.
struct Summary {
  std::size_t count = 0;
  double mean = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
};

// Figures for one item or theme.
struct TargetFigures {
  std::string target;
  std::string name;
  bool is_theme = false;     // false: an item
  std::string part_of;       // for an item handled inside themes: "theme" (its figures are per subflow run)
  std::size_t arrived = 0;   // applications (including those refused at pre-review)
  std::size_t refused = 0;   // refused at pre-review (one-time notification)
  std::size_t finished = 0;
  std::size_t open = 0;
  std::map<std::string, std::size_t> outcomes;  // approved, rejected, withdrawn, ...
  Summary cycle_days;        // submission to end in working days, corrections included
  Summary handling_days;     // the engine's supervision figure: suspensions excluded
  std::size_t on_time = 0;   // finished within the (suspension-adjusted) promised limit
  std::size_t overdue = 0;   // finished after it
  std::size_t open_overdue = 0;
  double on_time_rate = 1;
  std::size_t yellow = 0;
  std::size_t red = 0;
  std::vector<std::size_t> histogram;  // finished cases per whole working day of cycle time
};

// Figures for one step (a task or countersign node of a flow).
struct StepFigures {
  std::string flow;
  std::string node;
  std::string name;
  std::string item;          // the item whose flow it is ("" for a root flow)
  std::string staffed_by;    // departments / roles that serve it
  std::size_t tasks = 0;     // work items that appeared (countersign: one per place)
  std::size_t served = 0;
  std::size_t approved = 0, rejected = 0, returned = 0, corrections = 0, withdrawn = 0;
  std::size_t timed_out = 0;  // deemed consent or cancelled before anyone served it
  Summary wait_hours;         // from the task appearing to a staff member taking it (working hours of the calendar)
  double mean_service_hours = 0;  // working time
  double total_wait_hours = 0;
};

// Staff use per department.
struct DepartmentFigures {
  std::string department;
  std::string name;
  std::size_t staff = 0;
  double available_hours = 0;  // working time on duty over the run
  double busy_hours = 0;
  double utilisation = 0;
  std::size_t served = 0;
};

// A step ranked as a bottleneck.
struct Bottleneck {
  std::string step;      // "flow/node"
  double score = 0;      // total waiting hours per case arrived
  double mean_wait_hours = 0;
  double utilisation = 0;  // of the busiest department serving it
};

// Open and overdue cases at the close of each day.
struct TimelinePoint {
  std::string date;   // YYYY-MM-DD local
  std::size_t open = 0;
  std::size_t overdue = 0;  // open past the promised limit (moved by suspensions), as open_overdue counts
};

// The result of one run.
struct SimulationReport {
  std::string scenario;
  std::uint64_t seed = 0;
  std::string calendar;
  std::string start;    // local ISO dates
  std::string horizon_end;
  std::string ended;    // when the run stopped (local ISO time)
  std::string measured_from;  // with a warmup, when the period measured starts (local ISO time); else empty
  double horizon_working_days = 0;  // working days of the period measured: from the warmup's end, if any, to the horizon
  std::size_t arrived = 0;
  std::size_t refused = 0;
  std::size_t finished = 0;
  std::size_t open = 0;
  double throughput_per_working_day = 0;  // cases finished within the horizon per working day of it
  double on_time_rate = 1;
  std::size_t rated = 0;  // finished cases with a promised limit: what on_time_rate is over (none: no rate)
  std::size_t yellow = 0;
  std::size_t red = 0;
  std::size_t escalations = 0;
  std::size_t deemed_consents = 0;
  std::size_t corrections = 0;
  std::size_t returns = 0;
  // Simulated events (arrivals, actions, timer firings) and the actions
  // among them: every one the run processed, the warmup's included (the
  // simulator's work, unlike the figures above, which leave the warmup's
  // cases out).
  std::uint64_t events = 0;
  std::uint64_t actions = 0;
  std::vector<TargetFigures> targets;   // themes and items applied for, then items inside themes
  std::vector<StepFigures> steps;
  std::vector<DepartmentFigures> departments;
  std::vector<Bottleneck> bottlenecks;  // worst first
  std::vector<TimelinePoint> timeline;
  std::vector<std::string> warnings;    // scenario problems found while running (unstaffed steps, ...)
  // The flows applied for (root flows) with their subflows, for the HTML graph.
  std::vector<std::pair<std::string, int>> flows;
};

// Runs a scenario on a catalog. Throws Error(invalid_input) when the
// scenario names unknown targets, departments, nodes or handlers, gives a
// `return` to a step (named by its node) that declares none, lies outside
// the years 0001..9999, runs on a calendar without working days, or the
// store already holds cases.
SimulationReport simulate(const Scenario& scenario, std::shared_ptr<const Catalog> catalog,
                          SimulationOptions options = {});

// The checks simulate() makes before it runs, alone: throws the same
// Error(invalid_input) when the scenario does not fit the catalog. Lets a
// caller tell a scenario's mistakes from a failure during the run.
void check_scenario(const Scenario& scenario, std::shared_ptr<const Catalog> catalog);

// The KPI table and the per-target, per-step and per-department tables.
std::string report_text(const SimulationReport& report);
// The whole report as JSON (deterministic: same scenario and seed, same bytes).
std::string report_json(const SimulationReport& report);
// Flat CSV: one row per figure (section,key,metric,value).
std::string report_csv(const SimulationReport& report);
// A self-contained HTML page with inline SVG charts (flow graphs coloured by
// waiting time, cycle-time histogram, utilisation bars, overdue over time).
// With `other`, the two runs side by side; `other_catalog` is the
// definitions `other` ran on (its flow graphs), `catalog` when null.
std::string report_html(const SimulationReport& report, const Catalog& catalog,
                        const SimulationReport* other = nullptr, const Catalog* other_catalog = nullptr);
// Two runs side by side (what-if), as text and as JSON.
std::string compare_text(const SimulationReport& a, const SimulationReport& b);
std::string compare_json(const SimulationReport& a, const SimulationReport& b);

// Erlang C: mean waiting time in queue of an M/M/c queue with arrival rate
// `lambda` and service rate `mu` per server (same time unit); infinity when
// lambda >= c * mu.
double erlang_c_wait(double lambda, double mu, int c);

}  // namespace onestop
