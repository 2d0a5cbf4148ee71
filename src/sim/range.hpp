#pragma once

// The span of time a simulation may cover. The calendars work on the years
// 0001..9999 (src/time/calendar.cpp throws outside them); a run keeps one day
// of margin at each end, so that local midnight in any zone (UTC-14..+14)
// still falls inside.

#include <chrono>

namespace onestop::sim {

// The earliest start day and the latest end of a run (local wall time).
inline constexpr std::chrono::local_days first_start{std::chrono::year{1} / 1 / 2};
inline constexpr std::chrono::local_days last_end{std::chrono::year{9999} / 12 / 31};

// The longest duration a scenario may name: the span of the calendars.
inline constexpr double max_duration_years = 10000;
inline constexpr double max_duration_seconds = max_duration_years * 365 * 86400;

}  // namespace onestop::sim
