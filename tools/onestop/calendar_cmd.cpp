// onestop calendar days --calendar NAME --from DATE --to DATE [--path DIR...]
//   one line per date: `YYYY-MM-DD W` (working day) or `YYYY-MM-DD R` (rest)
// onestop calendar due --calendar NAME START N [--unit UNIT] [--path DIR...]
//   the instant a limit of N UNIT started at START (local time) runs out

#include "calendar_cmd.hpp"

#include <onestop/calendar.hpp>
#include <onestop/clock.hpp>
#include <onestop/definitions.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::chrono;

struct Options {
  std::vector<std::string> paths{"calendars"};
  std::string calendar = "cn";
  std::string from;
  std::string to;
  std::string start;
  std::int64_t amount = 0;
  std::string unit = "working_days";
};

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "onestop calendar: " << message << '\n';
  throw CLI::RuntimeError(1);
}

onestop::WorkingCalendar load(const Options& o) {
  std::vector<std::filesystem::path> paths(o.paths.begin(), o.paths.end());
  for (const auto& p : paths) {
    if (!std::filesystem::exists(p)) {
      fail(fmt::format("'{}' does not exist; pass the calendar definitions with --path DIR", p.string()));
    }
  }
  const auto result = onestop::load_catalog(paths);
  if (!result.ok()) {
    for (const auto& d : result.diagnostics) {
      if (d.severity == onestop::Severity::error) std::cerr << d.to_string() << '\n';
    }
    fail("the calendar definitions have errors");
  }
  try {
    return onestop::WorkingCalendar::resolve(*result.catalog, o.calendar);
  } catch (const onestop::Error& e) {
    fail(e.what());
  }
}

void days_command(const Options& o) {
  const auto from = onestop::parse_date(o.from);
  const auto to = onestop::parse_date(o.to);
  if (!from) fail(fmt::format("--from '{}' is not a date YYYY-MM-DD", o.from));
  if (!to) fail(fmt::format("--to '{}' is not a date YYYY-MM-DD", o.to));
  const sys_days first{*from};
  const sys_days last{*to};
  if (last < first) fail("--to is before --from");
  if (last - first > days{366 * 100}) fail("at most 100 years at once");
  const auto calendar = load(o);
  std::string out;
  for (auto d = first; d <= last; d += days{1}) {
    const year_month_day ymd{d};
    out += fmt::format("{} {}\n", onestop::format_date(ymd), calendar.is_working_day(ymd) ? 'W' : 'R');
  }
  std::cout << out;
}

void due_command(const Options& o) {
  const auto start = onestop::parse_local_time(o.start, true);
  if (!start) fail(fmt::format("START '{}' is not YYYY-MM-DD or YYYY-MM-DDTHH:MM", o.start));
  onestop::TimeLimit limit;
  limit.amount = o.amount;
  if (o.unit == "working_days") limit.unit = onestop::TimeUnit::working_days;
  if (o.unit == "working_hours") limit.unit = onestop::TimeUnit::working_hours;
  if (o.unit == "natural_days") limit.unit = onestop::TimeUnit::natural_days;
  if (o.unit == "natural_hours") limit.unit = onestop::TimeUnit::natural_hours;
  const auto calendar = load(o);
  try {
    std::cout << calendar.format_local(calendar.due(calendar.to_utc(*start), limit)) << '\n';
  } catch (const onestop::Error& e) {
    fail(e.what());
  }
}

void common_options(CLI::App* cmd, Options& o) {
  cmd->add_option("--calendar", o.calendar, "calendar id")->capture_default_str();
  cmd->add_option("--path", o.paths, "calendar definition file or directory (repeatable)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->capture_default_str();
}

}  // namespace

void add_calendar_commands(CLI::App& app) {
  auto o = std::make_shared<Options>();
  auto* calendar = app.add_subcommand("calendar", "Working days of a calendar and due instants of time limits");
  calendar->require_subcommand(1);

  auto* days_cmd = calendar->add_subcommand("days", "List dates as W (working day) or R (rest day)");
  common_options(days_cmd, *o);
  days_cmd->add_option("--from", o->from, "first date, YYYY-MM-DD")->required();
  days_cmd->add_option("--to", o->to, "last date, YYYY-MM-DD")->required();
  days_cmd->callback([o] { days_command(*o); });

  auto* due_cmd = calendar->add_subcommand("due", "When a time limit started at START runs out");
  common_options(due_cmd, *o);
  due_cmd->add_option("START", o->start, "local start, YYYY-MM-DD or YYYY-MM-DDTHH:MM")->required();
  due_cmd->add_option("N", o->amount, "amount of the limit")->required()->check(CLI::Range(std::int64_t{0}, std::int64_t{1'000'000}));
  due_cmd->add_option("--unit", o->unit, "working_days, working_hours, natural_days or natural_hours")
      ->check(CLI::IsMember({"working_days", "working_hours", "natural_days", "natural_hours"}))
      ->capture_default_str();
  due_cmd->callback([o] { due_command(*o); });
}
