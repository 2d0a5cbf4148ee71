// Feeds arbitrary bytes to the scenario reader (YAML, distributions,
// durations, dates, staff hours) and runs whatever reads as a scenario for
// at most two simulated days on the investment example. Scenarios come from
// test teams: neither reading nor the run's own checks may crash, hang or
// leak; bad input must come back as onestop::Error.
//
//   cmake --preset fuzz && cmake --build --preset fuzz
//   build/fuzz/fuzz/onestop-fuzz-scenario -max_total_time=600 fuzz/corpus/scenario

#include <onestop/definitions.hpp>
#include <onestop/error.hpp>
#include <onestop/simulation.hpp>
#include <onestop/store.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

std::shared_ptr<const onestop::Catalog> investment() {
  static const std::shared_ptr<const onestop::Catalog> catalog = [] {
    const std::filesystem::path root(ONESTOP_SOURCE_DIR);
    auto loaded = onestop::load_catalog(std::vector<std::filesystem::path>{root / "examples" / "investment-project",
                                                                           root / "calendars"});
    if (!loaded.ok()) std::abort();
    return loaded.catalog;
  }();
  return catalog;
}

// Small enough to run in milliseconds: a few arrivals an hour at most,
// fifty staff a group. Clamped rather than refused, so that mutations of
// the example scenarios (40 applications a working day) still run.
void shrink(onestop::Scenario& s) {
  using Per = onestop::ArrivalStream::Per;
  for (auto& a : s.arrivals) {
    if (a.times.size() > 50) a.times.resize(50);
    const double cap = a.per == Per::working_hour || a.per == Per::hour ? 2.0 : 20.0;
    if (a.rate > cap) a.rate = cap;
  }
  for (auto& g : s.staff) {
    if (g.count > 50) g.count = 50;
    if (g.users.size() > 50) g.users.resize(50);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  onestop::Scenario scenario;
  try {
    scenario = onestop::parse_scenario(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  } catch (const onestop::Error&) {
    return 0;
  }
  shrink(scenario);
  scenario.horizon = std::min(scenario.horizon, std::chrono::seconds{2 * 24 * 3600});
  scenario.drain = false;
  scenario.definitions.clear();
  onestop::SimulationOptions options;
  options.store = onestop::open_memory_store();
  try {
    (void)onestop::simulate(scenario, investment(), options);
  } catch (const onestop::Error&) {
  }
  return 0;
}
