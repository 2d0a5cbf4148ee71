// How fast time-limit arithmetic is on the shipped mainland China calendar:
// due instants of random limits of 1-60 working days from random start
// instants within 2020-2026, on one thread. Also working-hour due instants,
// working time between two instants, and resolving the calendar.
//
// Usage: onestop-bench-time [CALENDARS_DIR]   (default: the repository's calendars/)

#include <onestop/calendar.hpp>
#include <onestop/definitions.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#ifndef ONESTOP_SOURCE_DIR
#define ONESTOP_SOURCE_DIR "."
#endif

namespace {

using namespace std::chrono;

struct Input {
  sys_seconds start;
  onestop::TimeLimit limit;
};

std::vector<Input> inputs(const onestop::WorkingCalendar& c, onestop::TimeUnit unit, int max_amount) {
  std::mt19937_64 rng(20240210);
  const sys_seconds first = c.to_utc(local_days{year{2020} / January / 1});
  const sys_seconds last = c.to_utc(local_days{year{2027} / January / 1});
  std::uniform_int_distribution<std::int64_t> instant(0, (last - first).count() - 1);
  std::uniform_int_distribution<int> amount(1, max_amount);
  std::vector<Input> out(1 << 20);
  for (auto& in : out) in = {first + seconds{instant(rng)}, {amount(rng), unit}};
  return out;
}

// Best rate over several rounds of `f` applied to every input.
template <typename F>
double per_second(const std::vector<Input>& in, F&& f) {
  double best = 0;
  std::int64_t sink = 0;
  for (int round = 0; round < 7; ++round) {
    const auto t0 = steady_clock::now();
    for (int pass = 0; pass < 4; ++pass) {
      for (const auto& x : in) sink += f(x);
    }
    const double s = duration<double>(steady_clock::now() - t0).count();
    best = std::max(best, 4.0 * static_cast<double>(in.size()) / s);
  }
  if (sink == 42) std::puts("");  // keeps the work observable
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir =
      argc > 1 ? std::filesystem::path(argv[1]) : std::filesystem::path(ONESTOP_SOURCE_DIR) / "calendars";
  const auto loaded = onestop::load_catalog({dir});
  if (!loaded.ok()) {
    for (const auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
    return 1;
  }
  const auto t0 = steady_clock::now();
  const auto cn = onestop::WorkingCalendar::resolve(*loaded.catalog, "cn");
  const double resolve_ms = duration<double, std::milli>(steady_clock::now() - t0).count();

  const auto days_in = inputs(cn, onestop::TimeUnit::working_days, 60);
  const double due_days = per_second(days_in, [&](const Input& x) {
    return cn.due(x.start, x.limit).time_since_epoch().count();
  });
  const auto hours_in = inputs(cn, onestop::TimeUnit::working_hours, 480);
  const double due_hours = per_second(hours_in, [&](const Input& x) {
    return cn.due(x.start, x.limit).time_since_epoch().count();
  });
  const double spans = per_second(days_in, [&](const Input& x) {
    return cn.working_time(x.start, x.start + hours{x.limit.amount * 24}).count();
  });

  std::printf("figure: due_dates_per_s %.0f /s\n", due_days);
  std::printf("figure: due_working_hours_per_s %.0f /s\n", due_hours);
  std::printf("figure: working_time_per_s %.0f /s\n", spans);
  std::printf("figure: resolve_cn_ms %.3f ms\n", resolve_ms);
  return 0;
}
