// Simulator speed on the in-memory store: simulated events per second (an
// event is an arrival, an action or a timer firing: the report's event
// count) over a year of the investment-project example scenario, and the
// wall time of 100,000 investment cases (the same scenario run for ten
// years of arrivals, about 10,000 a year).
//
// Usage: onestop-bench-simulation [SCALE]  (default 1; 0.1 runs a tenth:
// the figures are still per event and per 100,000 cases).

#include <onestop/onestop.hpp>
#include <onestop/simulation.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>

using namespace onestop;

namespace {

struct Run {
  SimulationReport report;
  double seconds = 0;      // wall time (the figures)
  double cpu_seconds = 0;  // this process's CPU time (shown: on a loaded machine it tells the wall time's share)
};

double cpu_now() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

Run run(const Scenario& scenario, const std::shared_ptr<const Catalog>& catalog) {
  SimulationOptions options;
  options.store = open_memory_store();
  const double c0 = cpu_now();
  const auto t0 = std::chrono::steady_clock::now();
  Run r{simulate(scenario, catalog, options), 0, 0};
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_seconds = cpu_now() - c0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
  if (!(scale > 0)) {
    std::fprintf(stderr, "usage: onestop-bench-simulation [SCALE > 0]\n");
    return 2;
  }
  const std::filesystem::path file =
      std::filesystem::path(ONESTOP_SOURCE_DIR) / "examples" / "investment-project" / "scenario.yaml";
  Scenario scenario = load_scenario(file);
  auto loaded = load_catalog(scenario.definitions);
  for (const auto& d : loaded.diagnostics) {
    if (d.severity == Severity::error) {
      std::fprintf(stderr, "%s\n", d.to_string().c_str());
      return 1;
    }
  }
  const auto catalog = loaded.catalog;
  constexpr std::int64_t day = 24 * 3600;

  // 1. Events per second: one year (times SCALE) of the example.
  scenario.horizon = std::chrono::seconds(static_cast<std::int64_t>(365 * scale) * day);
  const Run year = run(scenario, catalog);
  const double events_per_s = static_cast<double>(year.report.events) / year.seconds;
  std::printf("year: %zu cases arrived, %llu events (%llu actions) in %.2f s (CPU %.2f s)\n", year.report.arrived,
              static_cast<unsigned long long>(year.report.events), static_cast<unsigned long long>(year.report.actions),
              year.seconds, year.cpu_seconds);
  std::printf("figure: sim_events_per_s %.0f events/s\n", events_per_s);
  std::fflush(stdout);

  // 2. 100,000 cases (times SCALE): ten years of arrivals at the example's rate;
  // the figure is the time per arrived case times 100,000.
  scenario.horizon = std::chrono::seconds(static_cast<std::int64_t>(3650 * scale) * day);
  const Run big = run(scenario, catalog);
  const double per_100k = big.seconds * 100000.0 / static_cast<double>(big.report.arrived);
  std::printf("100k: %zu cases arrived, %llu events in %.2f s (CPU %.2f s, %.0f events/s)\n", big.report.arrived,
              static_cast<unsigned long long>(big.report.events), big.seconds, big.cpu_seconds,
              static_cast<double>(big.report.events) / big.seconds);
  if (scale != 1.0) {
    std::printf("(scale %.3g: the figure is the measured time per case times 100,000)\n", scale);
  }
  std::printf("figure: sim_100k_cases_s %.2f s\n", per_100k);
  return 0;
}
