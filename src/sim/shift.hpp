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

  // The first instant at or after `t` inside a working period.
  Seconds next_on(Seconds t) const;
  bool on(Seconds t) const { return next_on(t) == t; }
  // The instant when `work` seconds of working time counted from `t` are done.
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
  mutable std::int64_t base_day_ = 0;
  mutable std::vector<std::int8_t> cache_;  // -1 unknown, 0 rest, 1 working; from base_day_
};

}  // namespace onestop::sim
