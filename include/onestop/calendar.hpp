#pragma once

// Working-day calendars and the arithmetic of time limits: when a limit
// runs out, how much of it is used, and how suspensions move it.
//
// Counting convention (docs/calendars.md): the day a limit starts is not
// counted; a limit of N working days started on day D runs out at the close
// of business of the N-th working day after D, local time; N natural days
// end at 24:00 of day D + N; working and natural hours count from the start
// instant. Instants are UTC (sys_seconds); a calendar has a fixed UTC offset
// and decides what a working day is.

#include <onestop/model.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace onestop {

// The running clock of one time limit (a case's overall limit or a step's),
// as plain data kept in case state. Suspensions — correction of materials
// (补正), special procedures (特别程序) — stop it, and the time they took is
// added back to `due`. Operated through WorkingCalendar::start_clock, pause,
// resume, remaining and used_share.
struct LimitClock {
  TimeLimit limit;
  std::chrono::sys_seconds started{};
  std::chrono::sys_seconds due{};                    // later after each suspension
  std::optional<std::chrono::sys_seconds> paused_at;  // set while suspended
  std::chrono::seconds suspended{0};  // time added back so far (working time for working units)

  // Whether the limit has run out by `now` (a paused clock stands still).
  bool overdue(std::chrono::sys_seconds now) const noexcept { return (paused_at ? *paused_at : now) > due; }
  friend bool operator==(const LimitClock&, const LimitClock&) = default;
};

// An immutable, resolved working-day calendar: zone offset, weekly rest
// days, public holidays, make-up working days (调休) and daily working hours,
// with any `extends` chain applied. Copies share one immutable table, so a
// copy is cheap; safe to use from several threads at once.
//
// Instants handed in must lie in the years 0001..9999 and amounts within
// ±1,000,000 units; otherwise the functions that do arithmetic throw
// Error(invalid_input).
class WorkingCalendar {
 public:
  // The built-in default: UTC+8, Saturday and Sunday rest, 09:00-12:00 and
  // 13:30-17:30, no holidays (hosts that define no calendar, tests).
  WorkingCalendar();

  // A calendar from one definition that extends nothing (hosts building
  // calendars in code). Unset fields take the defaults above. Throws
  // Error(invalid_input) when it extends another calendar or is malformed.
  explicit WorkingCalendar(const Calendar& root);

  // Resolves calendar `id` of a list, applying its `extends` chain: each
  // level inherits offset, rest days, working hours, holidays and make-up
  // days and adds its own; its holiday overrides an inherited make-up day
  // on the same date and vice versa. Throws Error(not_found) naming the
  // missing id, Error(invalid_input) on a cycle or a malformed calendar.
  static WorkingCalendar resolve(const std::vector<Calendar>& calendars, std::string_view id);

  // As above, from a loaded catalog; an empty `id` means the catalog's
  // default_calendar (Error(not_found) when that is not set either).
  static WorkingCalendar resolve(const Catalog& catalog, std::string_view id);

  // The calendar id ("" for the built-in default).
  const std::string& id() const noexcept;

  // Unique per built calendar in this process, never reused (copies share
  // it): a key for memos of what a calendar computes.
  std::uint64_t serial() const noexcept;

  // The display name.
  const std::string& name() const noexcept;

  // Local time minus UTC.
  std::chrono::minutes utc_offset() const noexcept;

  // The daily working periods; an empty list in the definition means the
  // whole day (00:00-24:00), which is what this returns then.
  const std::vector<WorkingPeriod>& working_hours() const noexcept;

  // Working time in one working day (7 hours with the default hours).
  std::chrono::seconds working_day_length() const noexcept;

  // First and last date with an explicit holiday or make-up working day
  // (the years the data covers; after them only weekends are known). nullopt
  // when the calendar lists none.
  std::optional<std::pair<std::chrono::sys_days, std::chrono::sys_days>> listed_dates() const noexcept;

  // Local wall time of a UTC instant.
  std::chrono::local_seconds to_local(std::chrono::sys_seconds instant) const noexcept;

  // The UTC instant of a local wall time.
  std::chrono::sys_seconds to_utc(std::chrono::local_seconds local) const noexcept;

  // An instant as ISO 8601 local time with the offset: "2024-10-09T17:30:00+08:00".
  std::string format_local(std::chrono::sys_seconds instant) const;

  // The local date of a UTC instant.
  std::chrono::year_month_day local_date(std::chrono::sys_seconds instant) const noexcept;

  // Whether a local date is a working day (make-up days are; holidays and
  // rest days are not).
  bool is_working_day(std::chrono::year_month_day local_date) const noexcept;

  // Whether an instant falls inside the working hours of a working day.
  bool is_working_time(std::chrono::sys_seconds instant) const noexcept;

  // The n-th working day after `date` (n >= 1), before it (n <= -1), or for
  // n == 0 `date` itself when it is a working day, else the next one.
  std::chrono::year_month_day add_working_days(std::chrono::year_month_day date, std::int64_t n) const;

  // Number of working days from `first` to `last`, both included (0 when
  // last < first).
  std::int64_t count_working_days(std::chrono::year_month_day first, std::chrono::year_month_day last) const;

  // The close of business (end of the last working period) of a local date,
  // as a UTC instant. Defined for any date; meaningful for working days.
  std::chrono::sys_seconds close_of_business(std::chrono::year_month_day local_date) const;

  // When a limit starting at `start` runs out:
  //   working days N >= 1: close of business of the N-th working day after
  //     the start's local date; N == 0: close of business of the start day
  //     when it is a working day and the start is not after its close, else
  //     of the next working day;
  //   working hours: N hours of working time counted from `start` (a start
  //     outside working hours begins at the next working period); N == 0 is
  //     `start` itself;
  //   natural days: 24:00 local of the N-th day after the start's date;
  //   natural hours: start + N hours.
  // Throws Error(invalid_input) for a negative amount.
  std::chrono::sys_seconds due(std::chrono::sys_seconds start, const TimeLimit& limit) const;

  // Working time between two instants: time inside working periods of
  // working days. Negative when `to` precedes `from`.
  std::chrono::seconds working_time(std::chrono::sys_seconds from, std::chrono::sys_seconds to) const;

  // How much of a limit in `unit` that started at `from` is used up at `to`,
  // counted as due() counts, so elapsed(s, due(s, L), L.unit) == L.amount for
  // every start s and amount >= 1 (working days), >= 0 (the other units).
  // Working days: working time after the start's local date, one working
  // day's hours = 1.0 (the start day itself is free); natural days: wall time
  // after the start's local date, in days; working hours: working time;
  // natural hours: wall time. Never negative.
  double elapsed(std::chrono::sys_seconds from, std::chrono::sys_seconds to, TimeUnit unit) const;

  // Time left from `now` until `due`, in `unit` (working units count working
  // time; natural units wall time); negative once overdue.
  double remaining(std::chrono::sys_seconds now, std::chrono::sys_seconds due, TimeUnit unit) const;

  // The earliest instant at which at most `amount` (in `unit`) remains before
  // `due`: when to fire "remaining <= 1 working day" warnings. A negative
  // amount gives an instant after `due`.
  std::chrono::sys_seconds before(std::chrono::sys_seconds due, double amount, TimeUnit unit) const;

  // The time a suspension from `paused_from` to `resumed_at` takes out of a
  // limit in `unit`: its working time for working units, its wall time for
  // natural ones. Throws Error(invalid_input) when resumed_at < paused_from.
  std::chrono::seconds suspension_time(std::chrono::sys_seconds paused_from, std::chrono::sys_seconds resumed_at,
                                       TimeUnit unit) const;

  // The due instant after a suspension: the suspension_time is added back,
  // so remaining(paused_from, due) == remaining(resumed_at, result).
  std::chrono::sys_seconds extend(std::chrono::sys_seconds due, std::chrono::sys_seconds paused_from,
                                  std::chrono::sys_seconds resumed_at, TimeUnit unit) const;

  // Starts the clock of a limit at `start`.
  LimitClock start_clock(std::chrono::sys_seconds start, const TimeLimit& limit) const;

  // Suspends a clock at `at`. Throws Error(invalid_state) when already paused.
  void pause(LimitClock& clock, std::chrono::sys_seconds at) const;

  // Resumes a paused clock at `at`, moving its due instant by the
  // suspension. Throws Error(invalid_state) when not paused and
  // Error(invalid_input) when `at` precedes the pause.
  void resume(LimitClock& clock, std::chrono::sys_seconds at) const;

  // Time left on a clock at `now` in its limit's unit (frozen while paused);
  // negative once overdue.
  double remaining(const LimitClock& clock, std::chrono::sys_seconds now) const;

  // Share of a clock's limit used at `now` (0 at the start, 1.0 at the due
  // instant, above 1 when overdue; frozen while paused): what "used >= 80%"
  // warning rules compare. A limit of 0 gives 0 before its due instant, 1 from it.
  double used_share(const LimitClock& clock, std::chrono::sys_seconds now) const;

  // The instant a running clock reaches `share` of its limit (for scheduling
  // warning timers); nullopt while paused (schedule again after resume),
  // and when that lies more than 1,000,000 units past the due instant
  // (never reached: "used >= 1000%" of a limit of centuries).
  std::optional<std::chrono::sys_seconds> when_used(const LimitClock& clock, double share) const;

 private:
  struct Impl;
  explicit WorkingCalendar(std::shared_ptr<const Impl> impl) noexcept;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace onestop
