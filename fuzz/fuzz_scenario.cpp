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

// Small enough to run in milliseconds: a few arrivals an hour at most.
bool small(const onestop::Scenario& s) {
  using Per = onestop::ArrivalStream::Per;
  for (const auto& a : s.arrivals) {
    if (a.trace ? a.times.size() > 50 : a.rate > (a.per == Per::working_hour || a.per == Per::hour ? 2.0 : 20.0)) {
      return false;
    }
  }
  for (const auto& g : s.staff) {
    if (g.count > 50) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  onestop::Scenario scenario;
  try {
    scenario = onestop::parse_scenario(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  } catch (const onestop::Error&) {
    return 0;
  }
  if (!small(scenario)) return 0;
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
