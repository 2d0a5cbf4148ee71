#pragma once

// The span of time a simulation may cover. The calendars work on the years
// 0001..9999 (src/time/calendar.cpp throws outside them); a run keeps one day
// of margin at each end, so that local midnight in any zone (UTC-14..+14)
// still falls inside.

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace onestop::sim {

// The earliest start day and the latest end of a run (local wall time).
inline constexpr std::chrono::local_days first_start{std::chrono::year{1} / 1 / 2};
inline constexpr std::chrono::local_days last_end{std::chrono::year{9999} / 12 / 31};

// Days since 1970 of 0001-01-01 and 10000-01-01: the calendars' span.
inline constexpr std::int64_t calendar_first_day = std::chrono::sys_days{std::chrono::year{1} / 1 / 1}.time_since_epoch().count();
inline constexpr std::int64_t calendar_end_day = std::chrono::sys_days{std::chrono::year{10000} / 1 / 1}.time_since_epoch().count();

// Whether a run may start on `start`, and then last `horizon` (at least 1 s,
// ending by last_end).
inline bool start_in_range(std::chrono::local_days start) { return start >= first_start && start < last_end; }
// What is wrong with a start outside the range, shown as `shown`.
inline std::string start_out_of_range(std::string_view shown) {
  return fmt::format("start {} lies outside 0001-01-02..9999-12-30 (the calendars cover the years 0001..9999)", shown);
}
inline bool ends_in_range(std::chrono::local_days start, std::chrono::seconds horizon) {
  return horizon.count() >= 1 && horizon <= std::chrono::local_seconds{last_end} - std::chrono::local_seconds{start};
}

// The longest duration a scenario may name: the span of the calendars.
inline constexpr double max_duration_years = 10000;
inline constexpr double max_duration_seconds = max_duration_years * 365 * 86400;

}  // namespace onestop::sim
