#pragma once

// When someone works: daily periods on the working days of a calendar (or
// every day). The simulator counts staff service time and arrival rates "per
// working hour" in this time.

#include <onestop/calendar.hpp>

#include <cstdint>
#include <limits>
#include <vector>

namespace onestop::sim {

using Seconds = std::int64_t;  // UTC seconds since the epoch
constexpr Seconds never = std::numeric_limits<Seconds>::max() / 4;

class Shift {
 public:
  Shift(const WorkingCalendar& calendar, std::vector<WorkingPeriod> periods, bool every_day);

  // Whether the calendar has a working weekday (else, beyond its listed
  // dates, no day is a working day and "working time" never comes).
  static bool has_working_weekday(const WorkingCalendar& calendar);

  // The first instant at or after `t` inside a working period; `never` when
  // there is none before the end of the year 9999.
  Seconds next_on(Seconds t) const;
  bool on(Seconds t) const { return next_on(t) == t; }
  // The instant when `work` seconds of working time counted from `t` are
  // done; `never` when that is after the year 9999.
  Seconds add(Seconds t, Seconds work) const;
  // Working time in [a, b).
  Seconds between(Seconds a, Seconds b) const;
  // Working time of one full working day.
  Seconds day_length() const noexcept { return day_length_; }

 private:
  bool working_day(std::int64_t day) const;

  const WorkingCalendar* calendar_;
  std::vector<WorkingPeriod> periods_;
  bool every_day_;
  bool continuous_;
  Seconds offset_;
  Seconds day_length_ = 0;
  // Whether some weekday works (after the calendar's listed holidays and
  // make-up days, the weekly pattern is all there is): a calendar resting
  // every weekday has no working day after `last_listed_`.
  bool weekly_ = true;
  std::int64_t last_listed_ = 0;
  mutable std::int64_t base_day_ = 0;
  // -1 unknown, 0 rest, 1 working; from base_day_, at most the calendars' span.
  mutable std::vector<std::int8_t> cache_;
};

}  // namespace onestop::sim
