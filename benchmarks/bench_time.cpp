// How fast time-limit arithmetic is on the shipped mainland China calendar:
// due instants of random limits of 1-60 working days from random start
// instants within 2020-2026, on one thread. Also working-hour due instants,
// working time between two instants, and resolving the calendar.
//
// Usage: onestop-bench-time [CALENDARS_DIR]   (default: the repository's calendars/)

#include <onestop/calendar.hpp>
#include <onestop/engine.hpp>
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

// One million open cases in the memory store, each waiting on a timer; the
// first 1 % fall due together. Returns the milliseconds of the tick that
// fires them (each firing is a full action: state copy, machine, hash-chained
// events, commit), and checks that exactly those fired.
double tick_1m_open_ms(int cases) {
  const char* yaml = R"(
departments: [{ id: hall, name: Service hall }]
item:
  code: WAIT
  name: Waiting item
  type: public_service
  department: hall
  applicants: [legal_person]
  time_limit: 999 working days
  flow: wait
flow:
  id: wait
  nodes:
    start: { kind: start }
    cool_off: { kind: timer, wait: 300 hours }
    review: { kind: task, assignees: { department: hall } }
    done: { kind: end }
  edges:
    - start -> cool_off
    - cool_off -> review
    - review -> done
)";
  auto loaded = onestop::load_catalog(std::vector<onestop::Source>{{"wait.yaml", yaml}});
  if (!loaded.ok()) std::exit(1);
  auto clock = std::make_shared<onestop::ManualClock>(sys_days{year{2026} / 3 / 2});
  onestop::EngineOptions o;
  o.clock = clock;
  auto engine = onestop::open_engine(loaded.catalog, o);
  onestop::Submission s;
  s.target = "WAIT";
  s.applicant = {onestop::ApplicantKind::legal_person, "91110000600037341L", "Company"};
  const auto start = clock->now();
  for (int i = 0; i < cases; ++i) {
    clock->set(start + seconds{i});  // case i falls due at start + 300 h + i s
    engine->submit(s, onestop::Actor::applicant_of(s.applicant.id));
  }
  const auto now = start + hours{300} + seconds{cases / 100 - 1};
  const auto t0 = steady_clock::now();
  const std::size_t fired = engine->tick(now);
  const double ms = duration<double, std::milli>(steady_clock::now() - t0).count();
  if (fired != static_cast<std::size_t>(cases / 100)) {
    std::fprintf(stderr, "tick fired %zu timers, expected %d\n", fired, cases / 100);
    std::exit(1);
  }
  return ms;
}

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
  std::fflush(stdout);
  std::printf("figure: tick_1m_open_ms %.1f ms\n", tick_1m_open_ms(1'000'000));
  return 0;
}
