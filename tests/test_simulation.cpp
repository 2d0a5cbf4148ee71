// The simulator: scenario files, determinism, the same engine path as live
// use (histories replay), queueing theory (M/M/c against Erlang C), and the
// reports.

#include <onestop/onestop.hpp>
#include <onestop/simulation.hpp>
#include <onestop/sqlite_store.hpp>

#include "codec_store.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

using namespace onestop;
namespace fs = std::filesystem;

namespace {

const fs::path data = fs::path(ONESTOP_TEST_DATA) / "sim";
const fs::path source = fs::path(ONESTOP_SOURCE_DIR);

std::shared_ptr<const Catalog> catalog_of(const std::vector<fs::path>& paths) {
  auto loaded = load_catalog(paths);
  for (const auto& d : loaded.diagnostics) {
    if (d.severity == Severity::error) FAIL(d.to_string());
  }
  REQUIRE(loaded.ok());
  return loaded.catalog;
}

std::string error_of(const std::string& text) {
  try {
    parse_scenario(text, "bad.yaml");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_input);
    return e.what();
  }
  return "no error";
}

// A small investment scenario: a few weeks, a handful of cases a day.
Scenario small_investment(double rate = 6, const std::string& horizon = "30 days") {
  Scenario s = load_scenario(source / "examples" / "investment-project" / "scenario.yaml");
  s.horizon = std::chrono::seconds(static_cast<std::int64_t>(std::stod(horizon) * 86400));
  s.arrivals.front().rate = rate;
  return s;
}

std::shared_ptr<const Catalog> investment_catalog() {
  return catalog_of({source / "examples" / "investment-project", source / "calendars"});
}

const StepFigures* step(const SimulationReport& r, const std::string& flow, const std::string& node) {
  for (const auto& s : r.steps) {
    if (s.flow == flow && s.node == node) return &s;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a scenario file that is not a regular one is read only up to the size limit") {
  try {
    (void)load_scenario("/dev/zero");
    FAIL("read /dev/zero as a scenario");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_input);
    CHECK(std::string(e.what()).find("/dev/zero: file holds more than") != std::string::npos);
  }
}

TEST_CASE("scenario files: every field, and errors that name file:line:col") {
  const Scenario s = load_scenario(source / "examples" / "investment-project" / "scenario.yaml");
  CHECK(s.calendar == "cn");
  CHECK(s.seed == 20250101);
  REQUIRE(s.arrivals.size() == 1);
  CHECK(s.arrivals[0].target == "enterprise_investment");
  CHECK(s.arrivals[0].rate == 40);
  CHECK(s.arrivals[0].per == ArrivalStream::Per::working_day);
  CHECK(s.arrivals[0].incomplete == doctest::Approx(0.02));
  CHECK(s.definitions.size() == 2);
  CHECK(s.horizon == std::chrono::seconds(365 * 86400));
  bool empirical = false;
  for (const auto& b : s.steps) {
    if (b.node == "farmland_verification") {
      REQUIRE(b.service);
      empirical = b.service->kind == Distribution::Kind::empirical && b.service->values.size() == 4;
    }
  }
  CHECK(empirical);

  const std::string head = "scenario:\n  start: 2025-01-01\n  staff: [{ department: d }]\n";
  CHECK(error_of(head + "  arrivals: [{ target: x, rate: 1, per: fortnight }]\n").find("bad.yaml:4:") == 0);
  CHECK(error_of(head + "  arrivals: [{ target: x, rate: 1 }]\n  steps: [{ node: a, service: 3 parsecs }]\n")
            .find("bad.yaml:5:") == 0);
  CHECK(error_of(head + "  arrivals: [{ target: x, rate: 1 }]\n  steps: [{ node: a, reject: 1.5 }]\n").find("probability") !=
        std::string::npos);
  CHECK(error_of(head + "  arrivals: [{ target: x, rate: 1 }]\n  defaults: { servce: 1 h }\n").find("unknown key 'servce'") !=
        std::string::npos);
  CHECK(error_of(head + "  arrivals: [{ target: x, rate: 1 }]\n  defaults: { service: { dist: gamma, mean: 1 h } }\n")
            .find("unknown distribution 'gamma'") != std::string::npos);
  CHECK(error_of("scenario:\n  start: 2025-02-30\n").find("bad.yaml:2:10: start must be a date") == 0);
  // As the schema and the definitions read dates: four-digit years, two-digit months and days.
  CHECK(error_of("scenario:\n  start: 2025-3-3\n").find("bad.yaml:2:10: start must be a date") == 0);
  const std::string short_hour = error_of(head + "  arrivals: [{ target: x, trace: [2025-03-03T9:00] }]\n");
  CHECK(short_hour.find("bad.yaml:4:") == 0);
  CHECK(short_hour.find("must be a local time") != std::string::npos);
  CHECK(error_of("scenario: [\n").find("bad.yaml:") == 0);

  // Semantic errors found when the run starts also name the line.
  auto bad = parse_scenario(head + "  arrivals: [{ target: NO-SUCH-ITEM, rate: 1 }]\n", "bad.yaml");
  try {
    simulate(bad, investment_catalog());
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("bad.yaml:4:") == 0);
  }
}

TEST_CASE("distributions sample with the right means, portably") {
  Scenario s;
  const Distribution kinds[] = {
      {Distribution::Kind::fixed, 5, 0, 0, {}, {}},
      {Distribution::Kind::uniform, 2, 6, 0, {}, {}},
      {Distribution::Kind::triangular, 1, 2, 6, {}, {}},
      {Distribution::Kind::exponential, 3, 0, 0, {}, {}},
      {Distribution::Kind::lognormal, 4, 2, 0, {}, {}},
      {Distribution::Kind::empirical, 0, 0, 0, {1, 2, 10}, {1, 1, 2}},
  };
  for (const auto& d : kinds) {
    CAPTURE(to_string(d.kind));
    CHECK(d.mean() > 0);
  }
  CHECK(kinds[5].mean() == doctest::Approx(5.75));
  CHECK(kinds[2].mean() == doctest::Approx(3.0));
}

TEST_CASE("the same scenario and seed give byte-identical JSON; another seed does not") {
  const auto catalog = investment_catalog();
  const Scenario s = small_investment();
  const std::string a = report_json(simulate(s, catalog));
  const std::string b = report_json(simulate(s, catalog));
  CHECK(a == b);
  SimulationOptions o;
  o.seed = 7;
  const std::string c = report_json(simulate(s, catalog, o));
  CHECK(a != c);
  CHECK(a.find("\"arrived\"") != std::string::npos);
}

// Records the bytes a persistent store would keep for every committed state.
class SnapshotBytes final : public test_support::CodecStore {
 public:
  void commit(Commit c) override {
    bytes.push_back(binding().encode(*c.snapshot));
    warned += c.events.end() != std::find_if(c.events.begin(), c.events.end(),
                                              [](const Event& e) { return e.kind == EventKind::warning; });
    CodecStore::commit(std::move(c));
  }
  std::vector<std::string> bytes;
  std::size_t warned = 0;
};

TEST_CASE("the same scenario and seed give byte-identical stored states, warnings crossed included") {
  // Boost writes the crossed-warnings list as raw memory: its padding once
  // carried whatever the heap held, so equal states gave different bytes.
  const auto catalog = investment_catalog();
  const Scenario s = small_investment(6, "40 days");
  std::vector<std::vector<std::string>> runs;
  for (int run = 0; run < 2; ++run) {
    auto store = std::make_shared<SnapshotBytes>();
    SimulationOptions o;
    o.store = store;
    simulate(s, catalog, o);
    CHECK(store->warned > 10);  // the states compared hold crossed warnings
    runs.push_back(std::move(store->bytes));
    // Leave other garbage in freed memory for the second run to pick up.
    std::vector<std::string> noise(20000, std::string(40, '\xA5'));
  }
  REQUIRE(runs[0].size() == runs[1].size());
  REQUIRE(runs[0].size() > 1000);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < runs[0].size(); ++i) differ += runs[0][i] != runs[1][i] ? 1 : 0;
  CHECK(differ == 0);
}

TEST_CASE("a store written behind in batches ends up as one written at every action, and so does the report") {
  const auto catalog = investment_catalog();
  const Scenario s = small_investment(6, "30 days");
  struct Run {
    std::string json;
    std::vector<CaseId> ids;
    std::vector<std::vector<Event>> histories;
    std::vector<std::uint64_t> versions;
  };
  auto run = [&](std::size_t batch) {
    Run r;
    auto store = open_memory_store();
    SimulationOptions o;
    o.store = store;
    o.batch = batch;
    r.json = report_json(simulate(s, catalog, o));
    // What the store holds, read by an engine of its own (the run's engine
    // answered loads from the tap).
    EngineOptions eo;
    eo.store = store;
    auto engine = open_engine(catalog, eo);
    r.ids = store->case_ids();
    for (CaseId id : r.ids) {
      r.histories.push_back(engine->history(id));
      r.versions.push_back(engine->get(id).version);
    }
    return r;
  };
  const Run at_once = run(1);
  const Run behind = run(7);  // many batches, most cases spread over several
  CHECK(at_once.json == behind.json);
  REQUIRE(at_once.ids.size() > 100);
  CHECK(at_once.ids == behind.ids);
  CHECK(at_once.versions == behind.versions);
  REQUIRE(at_once.histories.size() == behind.histories.size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < at_once.histories.size(); ++i) {
    const auto& a = at_once.histories[i];
    const auto& b = behind.histories[i];
    bool same = a.size() == b.size();
    for (std::size_t k = 0; same && k < a.size(); ++k) {
      same = a[k].seq == b[k].seq && a[k].kind == b[k].kind && a[k].at == b[k].at && a[k].node == b[k].node &&
             a[k].payload == b[k].payload && a[k].hash == b[k].hash;
    }
    differ += same ? 0 : 1;
  }
  CHECK(differ == 0);
}

TEST_CASE("a run on SQLite, written behind, reports as one in memory and leaves the cases in the database") {
  const auto catalog = investment_catalog();
  const Scenario s = small_investment(6, "20 days");
  const std::string in_memory = report_json(simulate(s, catalog));
  const fs::path file = fs::temp_directory_path() / fmt::format("onestop-sim-{}.db", ::getpid());
  struct Gone {  // the database and its WAL files, before and after
    std::string base;
    explicit Gone(std::string b) : base(std::move(b)) { clear(); }
    ~Gone() { clear(); }
    void clear() const {
      std::error_code ec;
      for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(base + suffix, ec);
    }
  } gone(file.string());
  {
    SimulationOptions o;
    o.store = open_sqlite_store(file.string());
    o.batch = 64;
    CHECK(report_json(simulate(s, catalog, o)) == in_memory);
  }
  // The database opened afresh: every case's state and history as the run
  // left them (verify replays the history and compares the state), on the
  // catalog the run used (the scenario's calendar as the default).
  auto ran = std::make_shared<Catalog>(*catalog);
  if (ran->default_calendar.empty()) ran->default_calendar = s.calendar;
  auto store = open_sqlite_store(file.string());
  EngineOptions eo;
  eo.store = store;
  auto engine = open_engine(ran, eo);
  const auto ids = store->case_ids();
  CHECK(ids.size() > 50);
  std::size_t verified = 0, finished = 0;
  for (CaseId id : ids) {
    verified += engine->verify(id).ok ? 1 : 0;
    finished += engine->get(id).status == CaseStatus::finished ? 1 : 0;
  }
  CHECK(verified == ids.size());
  CHECK(finished > 0);
  engine.reset();
  store.reset();
}

TEST_CASE("what an inspect callback commits reaches the store, written behind or not") {
  // Found in review: the run wrote its last batch before calling inspect,
  // and the commits of the callback's actions were left in the tap.
  const auto catalog = investment_catalog();
  const Scenario s = small_investment(6, "20 days");  // from 2025-01-01
  auto after = [&](std::size_t batch) {
    auto store = open_memory_store();
    SimulationOptions o;
    o.store = store;
    o.batch = batch;
    std::size_t fired = 0;
    o.inspect = [&](Engine& engine) { fired = engine.tick(std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}); };
    simulate(s, catalog, o);
    EngineOptions eo;
    eo.store = store;
    auto engine = open_engine(catalog, eo);
    std::size_t events = 0;
    for (CaseId id : store->case_ids()) events += engine->history(id).size();
    return std::pair{fired, events};
  };
  const auto at_once = after(1);
  CHECK(at_once.first > 0);  // the open cases' limits ran out
  CHECK(after(7) == at_once);
}

TEST_CASE("a store that fails to write a batch fails the run with its error, whatever the engine was doing") {
  // The writer's failure surfaces at the next hand-off or at the end: the
  // run never reports on cases the store does not hold.
  class Failing final : public StoreWrapper {
   public:
    Failing() : StoreWrapper(open_memory_store()) {}
    void commit_batch(std::vector<Commit> commits) override {
      if (++batches == 3) throw Error(ErrorCode::storage, "the disk is full");
      StoreWrapper::commit_batch(std::move(commits));
    }
    std::atomic<int> batches{0};
  };
  const auto catalog = investment_catalog();
  for (const std::size_t batch : {std::size_t{5}, std::size_t{100000}}) {  // fails midway; fails at the end
    INFO("batch " << batch);
    auto store = std::make_shared<Failing>();
    SimulationOptions o;
    o.store = store;
    o.batch = batch;
    if (batch > 1000) store->batches = 2;  // the one batch, at the end, is the third
    try {
      simulate(small_investment(6, "10 days"), catalog, o);
      FAIL("the run went on");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::storage);
      CHECK(std::string(e.what()).find("the disk is full") != std::string::npos);
      CHECK(std::string(e.what()).find("writing a batch of commits to the store failed") != std::string::npos);
    }
  }
}

TEST_CASE("a store that fails a submission's commit, one commit at a time, ends the run with its error") {
  // Counting the failed submission as refused went on with a case the
  // store never held, and the run ended later with "no case N".
  class Failing final : public StoreWrapper {
   public:
    Failing() : StoreWrapper(open_memory_store()) {}
    void commit(Commit c) override {
      if (c.expected_version == 0 && ++new_cases == 7) throw Error(ErrorCode::storage, "cases.db: the database or disk is full");
      StoreWrapper::commit(std::move(c));
    }
    int new_cases = 0;
  };
  SimulationOptions o;
  o.store = std::make_shared<Failing>();
  o.batch = 1;
  try {
    simulate(small_investment(6, "10 days"), investment_catalog(), o);
    FAIL("the run went on");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::storage);
    CHECK(std::string(e.what()) == "cases.db: the database or disk is full");
  }
}

TEST_CASE("a run goes through the real engine: histories replay, staff act in working hours, IDs are valid") {
  const auto catalog = investment_catalog();
  Scenario s = small_investment(8, "20 days");
  s.arrivals.front().incomplete = 0;
  auto store = open_memory_store();
  SimulationOptions o;
  o.store = store;
  std::size_t staff_actions = 0;
  std::size_t verified = 0;
  o.inspect = [&](Engine& engine) {
    const WorkingCalendar cn = WorkingCalendar::resolve(*catalog, "cn");
    const auto ids = store->case_ids();
    for (std::size_t i = 0; i < ids.size(); i += 7) {
      const HistoryCheck check = engine.verify(ids[i]);
      CHECK_MESSAGE(check.ok, check.message);
      ++verified;
      for (const Event& e : engine.history(ids[i])) {
        if (e.kind != EventKind::acted || e.actor.find('.') == std::string::npos) continue;
        ++staff_actions;
        // Staff act inside their hours: the calendar's, or the delivery window's 08:30-18:00.
        const auto local = cn.to_local(e.at);
        const auto minutes =
            std::chrono::duration_cast<std::chrono::minutes>(local - std::chrono::floor<std::chrono::days>(local)).count();
        CHECK_MESSAGE((minutes >= 8 * 60 + 30 && minutes <= 18 * 60), e.actor, " at ", cn.format_local(e.at));
        CHECK(cn.is_working_day(cn.local_date(e.at)));
      }
    }
  };
  const SimulationReport r = simulate(s, catalog, o);
  CHECK(r.arrived > 80);
  CHECK(r.refused == 0);  // generated credit codes pass the engine's strict check
  CHECK(r.finished > 0);
  CHECK(r.corrections > 0);
  CHECK(r.returns > 0);
  CHECK(r.arrived == r.refused + r.finished + r.open);
  CHECK(store->case_ids().size() == r.arrived - r.refused);
  CHECK(verified > 10);
  CHECK(staff_actions > 100);
}

TEST_CASE("time limits apply as live: an unstaffed deem-consent step is deemed approved on time-out") {
  const auto catalog = investment_catalog();
  Scenario s = small_investment(4, "40 days");
  // Nobody reviews energy conservation: the theme step runs out after 7 working days.
  std::erase_if(s.staff, [](const StaffGroup& g) { return g.department == "ndrc_energy_division"; });
  const SimulationReport r = simulate(s, catalog);
  CHECK(r.deemed_consents > 0);
  CHECK(r.finished > 0);
  bool warned = false;
  for (const auto& w : r.warnings) warned = warned || w.find("energy_review/") != std::string::npos;
  CHECK(warned);
  const StepFigures* receive = step(r, "energy_review", "receive");
  REQUIRE(receive != nullptr);
  CHECK(receive->served == 0);
  CHECK(receive->timed_out > 0);
}

TEST_CASE("simulated applicants offer a material several items list in a form that suits every item") {
  // SHARED's items list site_plan with different file types and forms, and
  // permit once from the applicant, once from the certificate library
  // (tests/data/materials/shared.yaml): complete applications pass
  // pre-review, which checks each against both.
  const auto catalog = catalog_of({fs::path(ONESTOP_TEST_DATA) / "runtime", fs::path(ONESTOP_TEST_DATA) / "materials"});
  const SimulationReport r = simulate(parse_scenario(R"(scenario:
  start: 2026-03-02
  horizon: 15 days
  seed: 11
  form:
    floors: { dist: uniform, min: 1, max: 20 }
  arrivals: [{ target: SHARED, rate: 4, per: working_day }]
  defaults: { service: { dist: fixed, value: 30 min } }
  staff:
    - { department: planning, count: 2 }
    - { department: fire, count: 2 }
)",
                                                     "shared.yaml"),
                                      catalog);
  CHECK(r.arrived > 20);
  CHECK(r.refused == 0);
  CHECK(r.finished > 10);
}

TEST_CASE("what-if: one more reviewer shortens the waits") {
  const auto catalog = investment_catalog();
  Scenario a = small_investment(40, "10 days");
  for (auto& g : a.staff) {
    if (g.role == "nr_reviewer") g.count -= 4;
  }
  Scenario b = a;
  for (auto& g : b.staff) {
    if (g.role == "nr_reviewer") g.count += 3;
  }
  b.name = "plus three reviewers";
  const SimulationReport ra = simulate(a, catalog);
  const SimulationReport rb = simulate(b, catalog);
  const StepFigures* wa = step(ra, "land_preexamination_review", "review");
  const StepFigures* wb = step(rb, "land_preexamination_review", "review");
  REQUIRE(wa != nullptr);
  REQUIRE(wb != nullptr);
  CHECK(wb->wait_hours.mean < wa->wait_hours.mean);
  const std::string text = compare_text(ra, rb);
  CHECK(text.find("natural_resources staff") != std::string::npos);
  const std::string html = report_html(ra, *catalog, &rb);
  CHECK(html.find("B: plus three reviewers") != std::string::npos);
}

TEST_CASE("reports: text, CSV and a self-contained HTML page") {
  const auto catalog = investment_catalog();
  const SimulationReport r = simulate(small_investment(10, "20 days"), catalog);
  const std::string text = report_text(r);
  CHECK(text.find("on-time rate") != std::string::npos);
  CHECK(text.find("Bottlenecks") != std::string::npos);
  const std::string csv = report_csv(r);
  CHECK(csv.rfind("section,key,metric,value\n", 0) == 0);
  CHECK(csv.find("kpi,,on_time_rate,") != std::string::npos);
  const std::string html = report_html(r, *catalog);
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("investment_project_parallel") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("href=\"http") == std::string::npos);
  CHECK(r.timeline.size() >= 20);
  CHECK(!r.bottlenecks.empty());
  CHECK(!r.departments.empty());
}

// M/M/c: Poisson arrivals at rate lambda, exponential service with mean 1/mu,
// c staff, first come first served, on a calendar that never rests. The
// simulated mean wait must match Erlang C. Independent replications (seeds)
// give the standard error. Optimised builds run enough cases (about 650,000)
// for the standard error to be under 1.5 % of the mean wait (the
// variance of a mean wait grows fast with the load: rho = 0.85 would need
// some two million cases), so the 3 %
// criterion is a real test; Debug builds run a tenth and check only that
// Erlang C lies inside the replications' confidence interval.
TEST_CASE("M/M/c: the mean wait matches Erlang C within 3 %") {
  const auto catalog = catalog_of({data / "mmc.yaml"});
  const int replications = 8;
#ifdef NDEBUG
  const double scale = 1.0;
#else
  const double scale = 0.1;
#endif
  struct Load {
    int c;
    double rho;
    double customers;  // over all replications, for a standard error near 1.2 %
  };
  for (const Load load : {Load{1, 0.5, 150000}, Load{2, 0.5, 250000}, Load{2, 0.7, 400000}}) {
    const double per_replication = load.customers * scale / replications;
    const double mu = 1.0;  // per hour
    const double lambda = load.rho * load.c * mu;
    const double theory = erlang_c_wait(lambda, mu, load.c);
    std::vector<double> means;
    for (int rep = 0; rep < replications; ++rep) {
      const std::string text = fmt::format(R"(
scenario:
  name: M/M/{c} at {rho}
  calendar: always
  start: 2025-01-01
  horizon: {hours:.0f} h
  warmup: {warm:.0f} h
  drain: true
  seed: {seed}
  arrivals: [{{ target: MMC-0001, rate: {lambda}, per: hour }}]
  defaults: {{ service: {{ dist: exponential, mean: 1 h }} }}
  staff: [{{ department: counter, count: {c} }}]
)",
                                           fmt::arg("c", load.c), fmt::arg("rho", load.rho), fmt::arg("lambda", lambda),
                                           fmt::arg("hours", per_replication / lambda), fmt::arg("warm", 200 / lambda),
                                           fmt::arg("seed", 1000 + rep));
      const SimulationReport r = simulate(parse_scenario(text, "mmc.yaml"), catalog);
      const StepFigures* serve = step(r, "one_step", "serve");
      REQUIRE(serve != nullptr);
      CHECK(static_cast<double>(serve->served) > (per_replication - 200) * 0.9);  // the warm-up is left out
      means.push_back(serve->wait_hours.mean);
    }
    double mean = 0;
    for (double m : means) mean += m;
    mean /= static_cast<double>(means.size());
    double var = 0;
    for (double m : means) var += (m - mean) * (m - mean);
    const double se = std::sqrt(var / static_cast<double>(means.size() - 1) / static_cast<double>(means.size()));
    const double error = mean / theory - 1;
    MESSAGE(fmt::format("M/M/{} rho {:.2f}: simulated mean wait {:.4f} h, Erlang C {:.4f} h, error {:+.2f} %, standard error {:.2f} %",
                        load.c, load.rho, mean, theory, 100 * error, 100 * se / theory));
    // Always: theory inside the 99.9 % confidence interval of the replications.
    CHECK(std::abs(mean - theory) <= 3.3 * se);
#ifdef NDEBUG
    CHECK(se / theory < 0.015);
    CHECK(std::abs(error) < 0.03);
#endif
  }
}

// ---- defects found by testing: ranges, bad values, calendars without work ----

namespace {

// The one-step M/M/c service with `rest` lines added under `scenario:`.
Scenario mmc_scenario(const std::string& rest) {
  return parse_scenario(R"(scenario:
  calendar: always
  start: 2025-01-01
  horizon: 10 days
  seed: 3
)" + rest,
                        (data / "mmc-variant.yaml").string());
}

std::string simulate_error(const Scenario& s, std::shared_ptr<const Catalog> catalog) {
  try {
    simulate(s, std::move(catalog));
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_input);
    return e.what();
  }
  return "no error";
}

bool has_warning(const SimulationReport& r, const std::string& part) {
  return std::any_of(r.warnings.begin(), r.warnings.end(), [&](const std::string& w) { return w.find(part) != std::string::npos; });
}

}  // namespace

TEST_CASE("start, horizon and warmup must keep the run inside the calendars' years 0001..9999") {
  const std::string head = "scenario:\n  arrivals: [{ target: x, rate: 0.00001, per: day }]\n  staff: [{ department: d }]\n";
  // A horizon past the year 9999 once hung (a warning per arrival, searched
  // linearly) or failed late without a line; now the loader names it.
  for (const std::string horizon : {"10000000000 years", "1000000 years", "100000000000000000000 years", "8000 years"}) {
    CAPTURE(horizon);
    const std::string e = error_of(head + "  start: 2025-01-01\n  horizon: " + horizon + "\n");
    CHECK(e.find("bad.yaml:5:12: horizon") == 0);
    CHECK(e.find("warmup") == std::string::npos);
  }
  CHECK(error_of(head + "  start: 2025-01-01\n  horizon: " + std::string(400, '9') + " s\n").find("bad.yaml:5:12: horizon") == 0);
  CHECK(error_of(head + "  start: 2025-01-01\n  horizon: 0.1 s\n").find("bad.yaml:5:12: horizon must be at least 1 s") == 0);
  CHECK(error_of(head + "  start: 0000-06-01\n").find("bad.yaml:4:10: start 0000-06-01 lies outside") == 0);
  CHECK(error_of(head + "  start: 9999-12-31\n").find("bad.yaml:4:10:") == 0);
  // The default horizon (365 days) counts too.
  CHECK(error_of(head + "  start: 9999-06-01\n").find("bad.yaml:4:10: horizon") == 0);
  CHECK(error_of(head + "  start: 2025-01-01\n  warmup: 100000000000000000000 years\n").find("bad.yaml:5:11: warmup") == 0);
  CHECK(error_of(head + "  start: 2025-01-01\n  horizon: 2 days\n  warmup: 3 days\n").find("bad.yaml:6:11: warmup must be shorter") == 0);
  CHECK(error_of(head + "  start: 2025-01-01\n  defaults: { service: 100000000000000000000 h }\n").find("bad.yaml:5:") == 0);
  // Up to the last day is fine.
  CHECK(error_of(head + "  start: 9999-01-01\n  horizon: 364 days\n") == "no error");
  CHECK(error_of(head + "  start: 0001-01-02\n  horizon: 9998 years\n") == "no error");

  // Scenarios built in code are checked when the run starts.
  const auto catalog = catalog_of({data / "mmc.yaml"});
  Scenario s = mmc_scenario("  arrivals: [{ target: MMC-0001, rate: 0.00001, per: day }]\n  staff: [{ department: counter }]\n");
  s.horizon = std::chrono::seconds(1'000'000LL * 365 * 86400);
  CHECK(simulate_error(s, catalog).find("mmc-variant.yaml: horizon") != std::string::npos);
  s.horizon = std::chrono::hours(24);
  s.warmup = std::chrono::hours(48);
  CHECK(simulate_error(s, catalog).find("warmup") != std::string::npos);
}

TEST_CASE("warnings stay distinct and few: one per target for failing submissions, with the count") {
  // Every submission fails (its limit of 100,000 working days runs past the
  // year 9999), each with its own message: the report once kept one warning
  // per arrival.
  const auto catalog = catalog_of({data / "mmc.yaml"});
  const Scenario s = parse_scenario(R"(scenario:
  calendar: always
  start: 9999-01-01
  horizon: 300 days
  arrivals: [{ target: MMC-0001, rate: 2, per: day }]
  staff: [{ department: counter }]
)",
                                    "late.yaml");
  const SimulationReport r = simulate(s, catalog);
  CHECK(r.arrived > 400);
  CHECK(r.refused == r.arrived);
  CHECK(r.warnings.size() < 5);
  CHECK(has_warning(r, fmt::format("{} of {} submissions for 'MMC-0001' failed; the first: ", r.arrived, r.arrived)));
}

TEST_CASE("a calendar without working days fails the run cleanly, naming the calendar") {
  // Built in code: definition checks may refuse such a calendar, the
  // simulator must not rely on them (its shifts once asked for 2.7e13 days).
  auto closed = std::make_shared<Catalog>(*catalog_of({data / "mmc.yaml"}));
  REQUIRE(closed->calendars.size() == 1);
  closed->calendars.front().rest_weekdays = std::vector<int>{0, 1, 2, 3, 4, 5, 6};
  for (const std::string per : {"working_day", "working_hour", "day"}) {
    CAPTURE(per);
    const Scenario s = mmc_scenario("  arrivals: [{ target: MMC-0001, rate: 5, per: " + per +
                                    " }]\n  staff: [{ department: counter, count: 2 }]\n");
    const std::string e = simulate_error(s, closed);
    CAPTURE(e);
    CHECK(e.find((data / "mmc-variant.yaml").string() + ": calendar 'always' (" + (data / "mmc.yaml").string() + ":") == 0);
    CHECK(e.find(") has no working days (every weekday is a rest day)") != std::string::npos);
  }
}

TEST_CASE("scenario values that cannot be meant are refused with file:line") {
  const std::string head = "scenario:\n  start: 2025-01-01\n  staff: [{ department: d }]\n  arrivals: [{ target: x, rate: 1 }]\n";
  // A parameter another family takes, or none does.
  CHECK(error_of(head + "  defaults: { service: { dist: fixed, value: 1 h, sd: 3 } }\n")
            .find("bad.yaml:5:51: service: a fixed distribution takes no 'sd' (its parameters: value)") == 0);
  CHECK(error_of(head + "  defaults: { service: { dist: exponential, mean: 1 h, min: 1 h } }\n").find("bad.yaml:5:") == 0);
  CHECK(error_of(head + "  defaults: { service: { dist: uniform, min: 1 h, max: 2 h, integer: true } }\n")
            .find("unknown key 'integer'") != std::string::npos);
  CHECK(error_of(head + "  form: { n: { dist: uniform, min: 1, max: 3, integer: true } }\n") == "no error");
  CHECK(error_of(head + "  form: { n: { dist: uniform, min: 1, max: 3, mean: 2 } }\n").find("bad.yaml:5:") == 0);
  // Weights: none negative, not all zero.
  CHECK(error_of(head + "  defaults: { service: { dist: empirical, values: [1 h, 2 h], weights: [-1, 2] } }\n")
            .find("bad.yaml:5:73: service: a weight must not be negative") == 0);
  CHECK(error_of(head + "  defaults: { service: { dist: empirical, values: [1 h, 2 h], weights: [0, 0] } }\n")
            .find("bad.yaml:5:72: service: weights are all zero") == 0);
  CHECK(error_of(head + "  form: { f: { choice: { a: 0, b: 0 } } }\n").find("bad.yaml:5:24: form field 'f': choice weights are all zero") == 0);
  CHECK(error_of(head + "  form: { f: { choice: { a: 0, b: 1 } } }\n") == "no error");
  CHECK(error_of(head + "  applicants: { natural_person: 0 }\n").find("bad.yaml:5:15: applicant weights are all zero") == 0);
  // Seeds: every 64-bit value exactly (a double held only 2^53), nothing else.
  CHECK(error_of(head + "  seed: 18446744073709551615\n") == "no error");
  CHECK(parse_scenario(head + "  seed: 18446744073709551615\n", "ok.yaml").seed == 18446744073709551615ULL);
  CHECK(parse_scenario(head + "  seed: 9007199254740993\n", "ok.yaml").seed == 9007199254740993ULL);
  for (const char* bad : {"-1", "18446744073709551616", "1.5", "1e3"}) {
    CAPTURE(bad);
    CHECK(error_of(head + "  seed: " + bad + "\n").find("bad.yaml:5:9: seed '" + std::string(bad) + "' is not a whole number") == 0);
  }
}

TEST_CASE("handlers must be those of automatic steps") {
  const fs::path file = source / "examples" / "residence-permit" / "scenario.yaml";
  const auto catalog = catalog_of({source / "examples" / "residence-permit", source / "calendars"});
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string good = "household_registry_check: 98%";
  const auto at = text.find(good);
  REQUIRE(at != std::string::npos);
  const auto line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n') + 1;
  text.replace(at, good.size(), "household_registry_chek: 98%");
  Scenario s = parse_scenario(text, file.string());
  s.horizon = std::chrono::hours(24);
  const std::string e = simulate_error(s, catalog);
  CHECK(e.find(fmt::format("{}:{}:5: handler 'household_registry_chek' runs no automatic step", file.string(), line)) == 0);
  CHECK(e.find("their handlers: household_registry_check") != std::string::npos);
}

TEST_CASE("a return on a step that declares none is refused; broad entries warn") {
  const auto catalog = catalog_of({data / "mmc.yaml"});
  const std::string rest = "  arrivals: [{ target: MMC-0001, rate: 1, per: hour }]\n  staff: [{ department: counter }]\n";
  const std::string file = (data / "mmc-variant.yaml").string();
  CHECK(simulate_error(mmc_scenario(rest + "  steps: [{ node: serve, return: 10% }]\n"), catalog)
            .find(file + ":8:11: step one_step/serve has a 'return' probability but the flow declares no return") == 0);
  CHECK(simulate_error(mmc_scenario(rest + "  steps: [{ flow: one_step, node: serve, return: 10%, return_to: start }]\n"), catalog)
            .find(file + ":8:11: step one_step/serve") == 0);
  // On every step: approves where there is no return, and says so.
  const SimulationReport r = simulate(mmc_scenario(rest + "  defaults: { return: 10% }\n"), catalog);
  CHECK(r.returns == 0);
  CHECK(has_warning(r, "step one_step/serve has a return probability but declares no return"));
}

TEST_CASE("trace times outside the run are counted in a warning") {
  const auto catalog = catalog_of({data / "mmc.yaml"});
  const SimulationReport r = simulate(mmc_scenario(R"(  arrivals:
    - target: MMC-0001
      trace: [2024-12-31T10:00, 2025-01-01T00:00, 2025-01-02T09:30, 2025-01-10T23:59, 2025-01-11T00:00, 2026-01-01T08:00]
  staff: [{ department: counter }]
)"),
                                      catalog);
  CHECK(r.arrived == 3);
  CHECK(has_warning(r, "mmc-variant.yaml:7:7: 3 of 6 trace times lie outside the run (2025-01-01T00:00:00+08:00 to "
                       "2025-01-11T00:00:00+08:00): they are left out"));
}

TEST_CASE("a staff group of count 0 is no staff: the step warns as if the group were absent") {
  const auto catalog = catalog_of({data / "mmc.yaml"});
  const std::string arrivals = "  arrivals: [{ target: MMC-0001, rate: 1, per: hour }]\n";
  const SimulationReport none = simulate(mmc_scenario(arrivals + "  staff: []\n"), catalog);
  const SimulationReport zero = simulate(mmc_scenario(arrivals + "  staff: [{ department: counter, count: 0 }]\n"), catalog);
  CHECK(has_warning(none, "step one_step/serve has no staff in the scenario"));
  CHECK(zero.warnings == none.warnings);
  const StepFigures* serve = step(zero, "one_step", "serve");
  REQUIRE(serve != nullptr);
  CHECK(serve->served == 0);
}

namespace {

// A memory store that gives up after `limit` commits: a run that would
// never end fails instead of hanging the test.
class CommitLimit final : public StoreWrapper {
 public:
  explicit CommitLimit(std::size_t limit) : StoreWrapper(open_memory_store()), limit_(limit) {}
  void commit(Commit c) override {
    // Not an onestop::Error: the simulator takes those for refused submissions.
    if (++commits_ > limit_) throw std::runtime_error("too many commits: the run does not end");
    StoreWrapper::commit(std::move(c));
  }

 private:
  std::size_t limit_;
  std::size_t commits_ = 0;
};

}  // namespace

TEST_CASE("a rate too small for one arrival in the run gives none, not endless arrivals at the start") {
  // The gap drawn for 1e-300 an hour overflowed llround: every arrival came
  // at the first instant and the run never ended.
  const auto catalog = catalog_of({data / "mmc.yaml"});
  for (const std::string per : {"hour", "day", "working_hour", "working_day"}) {
    CAPTURE(per);
    SimulationOptions o;
    o.store = std::make_shared<CommitLimit>(5000);
    const SimulationReport r = simulate(
        mmc_scenario("  arrivals: [{ target: MMC-0001, rate: 1e-300, per: " + per + " }]\n  staff: [{ department: counter }]\n"),
        catalog, o);
    CHECK(r.arrived == 0);
  }
}

TEST_CASE("arrival gaps under a second add up: a high rate brings its count, not one per second or a pile at an instant") {
  // Each gap was rounded to whole seconds: 10 an second came as ~16 (gaps
  // under half a second at the same instant, without end at 1e12 an hour).
  const auto catalog = catalog_of({data / "mmc.yaml"});
  Scenario s = mmc_scenario("  arrivals: [{ target: MMC-0001, rate: 36000, per: hour }]\n  staff: [{ department: counter, count: 5 }]\n");
  s.horizon = std::chrono::seconds(60);
  SimulationOptions o;
  o.store = std::make_shared<CommitLimit>(100000);
  const SimulationReport r = simulate(s, catalog, o);
  CHECK(r.arrived >= 520);  // Poisson, mean 600, sd 24.5
  CHECK(r.arrived <= 680);
  // More than a run can hold is refused before it starts, with the line.
  Scenario huge = mmc_scenario("  arrivals: [{ target: MMC-0001, rate: 1e12, per: hour }]\n  staff: [{ department: counter }]\n");
  const std::string e = simulate_error(huge, catalog);
  INFO(e);
  CHECK(e.find("mmc-variant.yaml:6:14: rate 1000000000000 per hour") != std::string::npos);
  CHECK(e.find("would bring about 2.4e+14 cases; a run takes at most 10000000") != std::string::npos);
}

TEST_CASE("probabilities are checked as the step merges them, and return targets wherever they are written") {
  const auto catalog = catalog_of({data / "mmc.yaml"});
  const std::string base = "  arrivals: [{ target: MMC-0001, rate: 1, per: hour }]\n  staff: [{ department: counter }]\n";
  // Each entry alone is within 1; merged, the step's sum was 1.2 and the
  // reject rate was silently cut.
  std::string e = simulate_error(mmc_scenario(base + "  defaults: { correction: 70% }\n  steps: [{ node: serve, reject: 50% }]\n"), catalog);
  INFO(e);
  CHECK(e.find("mmc-variant.yaml:9:11: step one_step/serve: correction 0.7 + reject 0.5") != std::string::npos);
  CHECK(e.find("= 1.2 is more than 1 once its entries are merged (defaults, ") != std::string::npos);
  CHECK(simulate_error(mmc_scenario(base + "  defaults: { correction: 50% }\n  steps: [{ node: serve, reject: 50% }]\n"), catalog) ==
        "no error");
  // A return target on the step itself must be declared even with no return chance.
  e = simulate_error(mmc_scenario(base + "  steps: [{ node: serve, return_to: nope }]\n"), catalog);
  CHECK(e.find("mmc-variant.yaml:8:11: step one_step/serve cannot return to 'nope' (it declares no returns)") != std::string::npos);
  // On a broad entry it must at least be a node.
  e = simulate_error(mmc_scenario(base + "  defaults: { return_to: nope }\n"), catalog);
  CHECK(e.find("mmc-variant.yaml:8:13: return_to 'nope' is not a node of any flow") != std::string::npos);
}

TEST_CASE("scenario values that would be non-numbers: nan and inf are text, a lognormal spread past any double is refused") {
  const std::string head = "scenario:\n  start: 2025-01-01\n  arrivals: [{ target: x, rate: 1 }]\n  staff: [{ department: d }]\n";
  // YAML reads `nan` as text; from_chars read it as a number, and every
  // submission then failed on its form.
  const Scenario s = parse_scenario(head + "  form: { note: nan, level: inf, n: 3 }\n", "ok.yaml");
  REQUIRE(s.form.size() == 3);
  for (const auto& g : s.form) {
    CAPTURE(g.name);
    CHECK(g.constant.type() == (g.name == "n" ? Value::Type::number : Value::Type::string));
  }
  CHECK(error_of(head + "  form: { x: { dist: lognormal, mean: 1e-300, sd: 1e300 } }\n")
            .find("sd 1e+300 is too large against the mean 1e-300") != std::string::npos);
}

TEST_CASE("a calendar the definitions lack is named with its line and the calendars they have") {
  const auto catalog = catalog_of({data / "mmc.yaml"});
  Scenario s = parse_scenario("scenario:\n  calendar: nope\n  start: 2025-01-01\n  arrivals: [{ target: MMC-0001, rate: 1 }]\n  staff: [{ department: counter }]\n",
                              "cal.yaml");
  CHECK(simulate_error(s, catalog) == "cal.yaml:2:13: calendar 'nope' is not in the definitions (their calendars: always)");
}

TEST_CASE("scenario values the schema and the loader read alike") {
  // Each of these once disagreed with schemas/scenario.schema.json.
  const std::string head = "scenario:\n  start: 2025-01-01\n  staff: [{ department: d }]\n";
  const std::string rate = "  arrivals: [{ target: x, rate: 1 }]\n";
  const Scenario quoted = parse_scenario(head + "  arrivals: [{ target: x, rate: +20, incomplete: \"3%\" }]\n", "ok.yaml");
  CHECK(quoted.arrivals[0].rate == 20);
  CHECK(quoted.arrivals[0].incomplete == doctest::Approx(0.03));
  CHECK(error_of(head + rate + "  seed: \"123\"\n").find("bad.yaml:5:9: seed must be a whole number, not the string '123'") == 0);
  for (const std::string h : {"9:00-12:00", "+9:00-12:00", "09:00-12:00x"}) {
    CAPTURE(h);
    CHECK(error_of("scenario:\n  start: 2025-01-01\n" + rate + "  staff: [{ department: d, hours: [\"" + h + "\"] }]\n")
              .find("bad.yaml:4:36: a working period must be 'HH:MM-HH:MM'") == 0);
  }
  CHECK(error_of(head + rate + "  applicants: {}\n").find("bad.yaml:5:15: applicants is empty") == 0);
  CHECK(error_of(head + rate + "  applicants: []\n").find("bad.yaml:5:15: applicants is empty") == 0);
  CHECK(error_of(head + "  arrivals: [{ target: x, trace: [] }]\n").find("trace is empty") != std::string::npos);
  CHECK(error_of("scenario:\n  start: 2025-01-01\n" + rate + "  staff: [{ department: d, users: [u1, u1] }]\n")
            .find("bad.yaml:4:40: user 'u1' is listed twice in this group") == 0);
  CHECK(error_of(head + rate + "  steps:\n    - { node: a, reject: 10% }\n    - { node: a, reject: 20% }\n")
            .find("bad.yaml:7:7: a second entry for node 'a' (the first is at line 6)") == 0);
}

TEST_CASE("a staff group's role must be held in its department; a drained run says why cases stay open") {
  const auto catalog = catalog_of({source / "examples" / "residence-permit", source / "calendars"});
  Scenario s = load_scenario(source / "examples" / "residence-permit" / "scenario.yaml");
  s.horizon = std::chrono::hours(48);
  s.staff.front().role = "community_officer";  // of community_police_office, not police_station
  CHECK(simulate_error(s, catalog).find("role 'community_officer' belongs to department 'community_police_office', not 'police_station'") !=
        std::string::npos);
  // Nobody accepts at the window: draining stops with every case open, and says so.
  s = load_scenario(source / "examples" / "residence-permit" / "scenario.yaml");
  s.horizon = std::chrono::hours(48);
  s.drain = true;
  s.staff.erase(s.staff.begin());
  const SimulationReport r = simulate(s, catalog);
  CHECK(r.arrived > 0);
  CHECK(has_warning(r, "drain: "));
  CHECK(has_warning(r, "still open when the run stopped"));
}

TEST_CASE("the merged check takes a return as the step does, and the cap on arrivals counts every stream") {
  const auto catalog = catalog_of({data / "mmc.yaml"});
  const std::string staff = "  staff: [{ department: counter }]\n";
  // serve declares no return: a return there approves, so 40 % + 70 % is fine.
  CHECK(simulate_error(mmc_scenario("  arrivals: [{ target: MMC-0001, rate: 1, per: hour }]\n" + staff +
                                    "  defaults: { return: 40% }\n  steps: [{ node: serve, reject: 70% }]\n"),
                       catalog) == "no error");
  // Two streams each under the cap, together over it.
  const std::string e = simulate_error(
      mmc_scenario("  arrivals:\n    - { target: MMC-0001, rate: 25000, per: hour }\n    - { target: MMC-0001, rate: 25000, per: hour }\n" +
                   staff),
      catalog);
  CHECK(e.find("the arrival streams together would bring about 1.2e+07 cases; a run takes at most 10000000") != std::string::npos);
}

TEST_CASE("report figures: unserved work waits, throughput within the horizon, no rate without cases, the warmup everywhere") {
  const auto catalog = catalog_of({data / "mmc.yaml"});
  const std::string arrivals = "  arrivals: [{ target: MMC-0001, rate: 2, per: hour }]\n";
  SUBCASE("a step nobody serves shows its waiting, heads the bottlenecks, and the on-time rate is none") {
    // Waits were only counted when service began: unserved work looked
    // like work that never waited, and a step nobody got to ranked last.
    Scenario s = mmc_scenario(arrivals + "  staff: [{ department: counter, count: 0 }]\n");
    s.horizon = std::chrono::hours(48);
    const SimulationReport r = simulate(s, catalog);
    const StepFigures* serve = step(r, "one_step", "serve");
    REQUIRE(serve != nullptr);
    CHECK(serve->tasks > 50);
    CHECK(serve->wait_hours.count == serve->tasks);
    CHECK(serve->wait_hours.mean > 10);
    REQUIRE_FALSE(r.bottlenecks.empty());
    CHECK(r.bottlenecks.front().step == "one_step/serve");
    CHECK(r.finished == 0);
    CHECK(report_json(r).find("\"on_time_rate\": null") != std::string::npos);
    const std::string text = report_text(r);
    const auto line = text.find("on-time rate ");
    REQUIRE(line != std::string::npos);
    CHECK(text.substr(line, text.find('\n', line) - line).back() == '-');
  }
  SUBCASE("draining finishes more cases but not more within the horizon") {
    // Throughput counted what a drain finished after the horizon too, and
    // came out as the arrival rate whatever the staffing.
    Scenario s = mmc_scenario(arrivals + "  staff: [{ department: counter }]\n  defaults: { service: 40 min }\n");
    s.horizon = std::chrono::hours(24);
    const SimulationReport stop = simulate(s, catalog);
    s.drain = true;
    const SimulationReport drained = simulate(s, catalog);
    CHECK(drained.finished > stop.finished);
    CHECK(drained.throughput_per_working_day == doctest::Approx(stop.throughput_per_working_day));
    CHECK(stop.throughput_per_working_day == doctest::Approx(static_cast<double>(stop.finished) / stop.horizon_working_days));
  }
  SUBCASE("a warmup leaves its time out of the departments and its cases out of the timeline") {
    Scenario s = mmc_scenario(arrivals + "  staff: [{ department: counter }]\n");
    s.horizon = std::chrono::hours(48);
    s.warmup = std::chrono::hours(24);
    const SimulationReport r = simulate(s, catalog);
    REQUIRE(r.departments.size() == 1);
    CHECK(r.departments[0].available_hours == doctest::Approx(24.0));  // one person, round the clock, the second day
    CHECK(r.departments[0].busy_hours <= 24.0 + 1e-9);
    REQUIRE_FALSE(r.timeline.empty());
    CHECK(r.timeline.back().open == r.open);
  }
}

TEST_CASE("a what-if page draws each run's flows from its own definitions") {
  const auto a = catalog_of({data / "mmc.yaml"});
  auto b_catalog = std::make_shared<Catalog>(*a);
  b_catalog->flows.front().name = "Renamed in B";
  std::shared_ptr<const Catalog> b = b_catalog;
  Scenario s = mmc_scenario("  arrivals: [{ target: MMC-0001, rate: 1, per: hour }]\n  staff: [{ department: counter }]\n");
  s.horizon = std::chrono::hours(24);
  const SimulationReport ra = simulate(s, a);
  const SimulationReport rb = simulate(s, b);
  const std::string html = report_html(ra, *a, &rb, b.get());
  CHECK(html.find("Renamed in B") != std::string::npos);
  // One arrow head for the page, not one per graph (ids are unique in a page).
  std::size_t ids = 0;
  for (auto at = html.find("id=\"arrow\""); at != std::string::npos; at = html.find("id=\"arrow\"", at + 1)) ++ids;
  CHECK(ids == 1);
}

TEST_CASE("a countersign task's places go to different people; refused actions are counted") {
  // The one member who signed the first place was given the second: the
  // engine refused (already signed), the place was dropped and the case
  // stuck, with three warnings and no count.
  const auto catalog = catalog_of({data / "countersign.yaml"});
  auto scenario = [](int staff, int correction = 0) {
    return parse_scenario(fmt::format(R"(scenario:
  start: 2025-03-03
  horizon: 5 days
  drain: true
  arrivals: [{{ target: D-1, rate: 4, per: working_day }}]
  defaults: {{ service: 30 min, correction: {}%, applicant_delay: 1 h }}
  staff: [{{ department: d1, role: r1, count: {} }}]
)",
                                      correction, staff),
                          "countersign.yaml");
  };
  const SimulationReport two = simulate(scenario(2), catalog);
  CHECK(two.arrived > 5);
  CHECK(two.finished == two.arrived);
  CHECK_FALSE(has_warning(two, "refused"));
  // One person can sign one place of each task: the other waits, and nothing is refused.
  const SimulationReport one = simulate(scenario(1), catalog);
  CHECK(one.finished == 0);
  CHECK_FALSE(has_warning(one, "refused"));
  CHECK(has_warning(one, "still open when the run stopped"));
  // A correction request signs nothing: whoever asked for it may sign the
  // place when it comes back (it was counted as signed, and the case stuck).
  const SimulationReport corrected = simulate(scenario(2, 30), catalog);
  const StepFigures* sign = step(corrected, "fd", "sign");
  REQUIRE(sign != nullptr);
  CHECK(sign->corrections > 0);
  CHECK(corrected.finished == corrected.arrived);
  CHECK_FALSE(has_warning(corrected, "still open"));
}

TEST_CASE("a what-if lists the departments and targets of either run") {
  // Only A's were listed: a department B staffs alone went unseen.
  SimulationReport a, b;
  a.scenario = "A";
  b.scenario = "B";
  DepartmentFigures d;
  d.department = "counter";
  d.staff = 2;
  d.utilisation = 0.5;
  a.departments.push_back(d);
  d.department = "night_desk";
  d.staff = 1;
  b.departments.push_back(d);
  TargetFigures t;
  t.target = "ONLY-B";
  t.cycle_days.count = 3;
  t.cycle_days.mean = 2.5;
  b.targets.push_back(t);
  const std::string text = compare_text(a, b);
  CHECK(text.find("night_desk staff                              0            1           +1") != std::string::npos);
  CHECK(text.find("counter staff                                 2            0           -2") != std::string::npos);
  CHECK(text.find("ONLY-B mean days                              -         2.50            -") != std::string::npos);
  CHECK(text.find("on-time rate (%)                              -            -            -") != std::string::npos);
  // A department a run lists with no staff (a group of count 0) has no use
  // either, not 0.0 %.
  SimulationReport none = a;
  none.departments.front().staff = 0;
  none.departments.front().utilisation = 0;
  const std::string unstaffed = compare_text(none, b);
  CHECK(unstaffed.find("counter staff                                 0            0           +0") != std::string::npos);
  CHECK(unstaffed.find("counter use (%)                               -            -            -") != std::string::npos);
}

TEST_CASE("a step's wait for staff leaves out the time its case waited for the applicant, looked at or not") {
  // The case arrives on Monday at 10:00; step a is served 10:00-11:00 and
  // asks for a correction; the applicant answers at 13:00; step b's one
  // clerk comes on duty at 15:00. b was queued while the case ran from
  // 10:00 to 11:00 and from 13:00 to 15:00: 3 working hours. Its wait was
  // 4 h (the suspension counted) when nobody looked at b's queue during
  // the suspension, and 2 h (the wait before it lost) when its clerk also
  // came on duty at 12:00 for half an hour.
  const auto catalog = catalog_of({data / "parallel.yaml"});
  for (const char* hours : {R"("15:00-17:00")", R"("12:00-12:30", "15:00-17:00")"}) {
    CAPTURE(hours);
    const SimulationReport r = simulate(parse_scenario(fmt::format(R"(scenario:
  start: 2025-03-03
  horizon: 7 days
  seed: 9
  arrivals: [{{ target: PAR-1, trace: ["2025-03-03T10:00"] }}]
  defaults: {{ service: 1 h, applicant_delay: 2 h }}
  steps: [{{ node: a, correction: 50% }}]
  staff: [{{ department: da }}, {{ department: db, hours: [{}] }}]
)",
                                                                   hours),
                                                       "parallel-scenario.yaml"),
                                        catalog);
    const StepFigures* a = step(r, "par", "a");
    const StepFigures* b = step(r, "par", "b");
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    REQUIRE(a->corrections == 1);  // the seed's draws: one correction, then approval
    CHECK(r.finished == 1);
    CHECK(b->wait_hours.count == 1);
    CHECK(b->wait_hours.mean == doctest::Approx(3.0));
  }
}

TEST_CASE("the timeline's overdue cases are those past their time limit, whatever the warning rules say") {
  // It counted cases from their first red warning on the case: a rule
  // firing a day before the limit made the case overdue a day early, and
  // with red rules on steps only it never was, while open_overdue said it
  // was. One case, Monday 10:00, due Wednesday 10:00 (2 working days),
  // served for 21 working hours: it ends on Thursday at 10:00.
  auto run = [&](const char* rules, const char* horizon) {
    return simulate(parse_scenario(fmt::format(R"(scenario:
  start: 2025-03-03
  horizon: {}
  arrivals: [{{ target: ONE-1, trace: ["2025-03-03T10:00"] }}]
  defaults: {{ service: 21 h }}
  staff: [{{ department: counter }}]
)",
                                               horizon),
                                   "late-scenario.yaml"),
                    catalog_of({data / "late.yaml", data / rules}));
  };
  auto overdue = [](const SimulationReport& r) {
    std::vector<std::size_t> v;
    for (const auto& p : r.timeline) v.push_back(p.overdue);
    return v;
  };
  const SimulationReport early = run("late-red-early.yaml", "7 days");
  CHECK(early.red == 1);  // on Tuesday
  CHECK(early.finished == 1);
  CHECK(overdue(early) == std::vector<std::size_t>{0, 0, 1, 0, 0, 0, 0, 0});
  // Stopped on Thursday at midnight, the case open and overdue: the
  // timeline's last day says what open_overdue says.
  const SimulationReport steps = run("late-red-step.yaml", "3 days");
  REQUIRE(steps.targets.size() == 1);
  CHECK(steps.targets[0].open_overdue == 1);
  CHECK(overdue(steps) == std::vector<std::size_t>{0, 0, 1, 1});
}

TEST_CASE("the KPI totals of correction requests and returns leave the warmup's cases out, as the steps' do") {
  // They counted the warmup's cases too (escalations and deemed consents
  // did not): more corrections in the KPI table than in the steps'.
  const auto catalog = catalog_of({data / "two-step.yaml"});
  auto run = [&](const char* warmup) {
    return simulate(parse_scenario(fmt::format(R"(scenario:
  start: 2025-03-03
  horizon: 7 days
  warmup: {}
  seed: 4
  arrivals: [{{ target: TWO-1, trace: ["2025-03-03T09:00", "2025-03-03T09:00", "2025-03-03T09:00", "2025-03-03T09:00",
                                     "2025-03-05T09:00", "2025-03-05T09:00", "2025-03-05T09:00", "2025-03-05T09:00"] }}]
  defaults: {{ service: 10 min, applicant_delay: 30 min }}
  steps:
    - {{ node: accept, correction: 30% }}
    - {{ node: review, return: 50% }}
  staff: [{{ department: counter }}, {{ department: office }}]
)",
                                               warmup),
                                   "two-step-scenario.yaml"),
                    catalog);
  };
  auto sum = [](const SimulationReport& r, std::size_t StepFigures::*figure) {
    std::size_t n = 0;
    for (const auto& s : r.steps) n += s.*figure;
    return n;
  };
  const SimulationReport all = run("0 s");
  const SimulationReport measured = run("1 day");
  // The same draws: the warmup's four cases asked for corrections and were returned.
  REQUIRE(sum(measured, &StepFigures::corrections) < all.corrections);
  REQUIRE(sum(measured, &StepFigures::returned) < all.returns);
  CHECK(all.corrections == sum(all, &StepFigures::corrections));
  CHECK(all.returns == sum(all, &StepFigures::returned));
  CHECK(measured.corrections == sum(measured, &StepFigures::corrections));
  CHECK(measured.returns == sum(measured, &StepFigures::returned));
  CHECK(measured.returns > 0);
  // The event count is the simulator's work: the warmup's events too.
  CHECK(measured.events == all.events);
}

TEST_CASE("a what-if's text lists the warnings of both runs, each marked with its run") {
  // The JSON and HTML had them; the text had none.
  SimulationReport a, b;
  a.scenario = "only long";
  b.scenario = "fcfs";
  a.warnings = {"step long/serve has no staff in the scenario: its tasks wait until they time out"};
  b.warnings = {"first of B", "second of B"};
  const std::string text = compare_text(a, b);
  CHECK(text.find("\nwarning: A: step long/serve has no staff in the scenario: its tasks wait until they time out\n"
                  "warning: B: first of B\nwarning: B: second of B\n") != std::string::npos);
  CHECK(compare_text(b, b).find("warning: A: first of B\n") != std::string::npos);
  SimulationReport quiet;
  CHECK(compare_text(quiet, quiet).find("warning:") == std::string::npos);
}

TEST_CASE("a user listed in two staff groups is refused where listed again, naming the first line") {
  // Only a repeat within one group was refused: a user listed in two
  // groups became two people, serving (and signing) side by side.
  const std::string e = error_of(R"(scenario:
  start: 2025-03-03
  arrivals: [{ target: D-1, rate: 1 }]
  staff:
    - { department: d1, role: r1, users: [alice, bob] }
    - { department: d1, users: [carol, alice] }
)");
  CHECK(e.find("bad.yaml:6:40: user 'alice' is already listed in the staff group at line 5, column 43") == 0);
  CHECK(error_of(R"(scenario:
  start: 2025-03-03
  arrivals: [{ target: D-1, rate: 1 }]
  staff: [{ department: d1, users: [alice, alice] }]
)")
            .find("bad.yaml:4:44: user 'alice' is listed twice in this group") == 0);
}

TEST_CASE("the text report's period gives the working days measured as the JSON does, and where a warmup ends") {
  // The header rounded them to whole days ("4 working days" where the JSON
  // said 4.4286) and did not say that a warmup was left out of them.
  const auto catalog = catalog_of({data / "late.yaml"});
  auto run = [&](const char* warmup) {
    return simulate(parse_scenario(fmt::format(R"(scenario:
  start: 2025-03-03
  horizon: 108 h
  warmup: {}
  arrivals: [{{ target: ONE-1, trace: ["2025-03-04T10:00"] }}]
  defaults: {{ service: 1 h }}
  staff: [{{ department: counter }}]
)",
                                               warmup),
                                   "period.yaml"),
                    catalog);
  };
  // Monday to Thursday, 7 working hours a day, and Friday morning's 3.
  const SimulationReport whole = run("0 s");
  CHECK(report_text(whole).find("Period: 2025-03-03 to 2025-03-07 (4.43 working days, calendar wk); run ended "
                                "2025-03-07T12:00\n") != std::string::npos);
  CHECK(report_json(whole).find("\"horizon_working_days\": 4.4286") != std::string::npos);
  CHECK(report_json(whole).find("measured_from") == std::string::npos);
  const SimulationReport warm = run("1 day");
  CHECK(report_text(warm).find("Period: 2025-03-03 to 2025-03-07, measured from 2025-03-04T00:00 after the warmup "
                               "(3.43 working days, calendar wk)") != std::string::npos);
  CHECK(report_json(warm).find("\"measured_from\": \"2025-03-04T00:00:00+08:00\"") != std::string::npos);
  CHECK(report_html(warm, *catalog).find("measured from 2025-03-04T00:00 after the warmup (3.43 working days)") !=
        std::string::npos);
}
