#include "sim/shift.hpp"
#include "sim/range.hpp"

#include <algorithm>

namespace onestop::sim {

namespace {

constexpr Seconds day_seconds = 86400;
// The calendars answer for these years only, and no one works outside them.
constexpr std::int64_t first_day = calendar_first_day;
constexpr std::int64_t end_day = calendar_end_day;

std::int64_t floor_div(Seconds a, Seconds b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace

Shift::Shift(const WorkingCalendar& calendar, std::vector<WorkingPeriod> periods, bool every_day)
    : calendar_(&calendar), periods_(std::move(periods)), every_day_(every_day) {
  if (periods_.empty()) periods_ = calendar.working_hours();
  if (periods_.empty()) periods_ = {WorkingPeriod{0, 24 * 60}};
  offset_ = std::chrono::duration_cast<std::chrono::seconds>(calendar.utc_offset()).count();
  for (const auto& p : periods_) day_length_ += (p.end_minute - p.start_minute) * 60;
  const bool whole_day = periods_.size() == 1 && periods_[0].start_minute == 0 && periods_[0].end_minute == 24 * 60;
  bool all_days = every_day_;
  if (!all_days) {
    // A calendar without rest days or holidays works every day.
    all_days = !calendar.listed_dates().has_value();
    for (int d = 0; d < 7 && all_days; ++d) {
      const auto date = std::chrono::sys_days{std::chrono::year{2024} / 1 / 1} + std::chrono::days{d};
      all_days = calendar.is_working_day(std::chrono::year_month_day{date});
    }
  }
  every_day_ = all_days;
  continuous_ = whole_day && all_days;
  if (!every_day_) {
    weekly_ = has_working_weekday(calendar);
    const auto listed = calendar.listed_dates();
    last_listed_ = listed ? listed->second.time_since_epoch().count() : first_day - 1;
  }
}

bool Shift::has_working_weekday(const WorkingCalendar& calendar) {
  // Seven days after the listed dates (holidays, make-up days) show the weekly pattern.
  const auto listed = calendar.listed_dates();
  std::chrono::sys_days from = listed ? listed->second + std::chrono::days{1} : std::chrono::sys_days{std::chrono::year{2024} / 1 / 1};
  if (from.time_since_epoch().count() + 7 > end_day) from = std::chrono::sys_days{std::chrono::year{9999} / 12 / 1};
  for (int d = 0; d < 7; ++d) {
    if (calendar.is_working_day(std::chrono::year_month_day{from + std::chrono::days{d}})) return true;
  }
  return false;
}

bool Shift::working_day(std::int64_t day) const {
  if (every_day_) return true;
  if (day < first_day || day >= end_day) return false;
  if (cache_.empty()) base_day_ = day - 7;
  // The cache never outgrows the calendars' span (a day far out, such as
  // that of `never`, once asked for a vector of 2.7e13 entries).
  if (day < base_day_ || day - base_day_ >= end_day - first_day) {
    return calendar_->is_working_day(std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{day}}});
  }
  const auto i = static_cast<std::size_t>(day - base_day_);
  if (i >= cache_.size()) {
    const auto most = static_cast<std::size_t>(end_day - first_day);
    cache_.resize(std::min(most, std::max<std::size_t>(i + 1, cache_.size() * 2 + 64)), -1);
  }
  if (cache_[i] < 0) {
    cache_[i] = calendar_->is_working_day(std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{day}}}) ? 1 : 0;
  }
  return cache_[i] == 1;
}

Seconds Shift::next_on(Seconds t) const {
  if (t >= never) return never;
  if (continuous_) return t;
  Seconds local = t + offset_;
  for (;;) {
    const std::int64_t day = floor_div(local, day_seconds);
    if (day >= end_day || (!weekly_ && day > last_listed_)) return never;
    if (working_day(day)) {
      for (const auto& p : periods_) {
        const Seconds s = day * day_seconds + p.start_minute * 60;
        const Seconds e = day * day_seconds + p.end_minute * 60;
        if (local < e) return std::max(local, s) - offset_;
      }
    }
    local = (day + 1) * day_seconds;
  }
}

Seconds Shift::add(Seconds t, Seconds work) const {
  if (t >= never) return never;
  if (work <= 0) return t;
  if (continuous_) return work >= never - t ? never : t + work;
  Seconds local = t + offset_;
  Seconds left = work;
  for (;;) {
    const std::int64_t day = floor_div(local, day_seconds);
    if (day >= end_day || (!weekly_ && day > last_listed_)) return never;
    if (working_day(day)) {
      for (const auto& p : periods_) {
        const Seconds s = day * day_seconds + p.start_minute * 60;
        const Seconds e = day * day_seconds + p.end_minute * 60;
        if (local >= e) continue;
        const Seconds from = std::max(local, s);
        if (left <= e - from) return from + left - offset_;
        left -= e - from;
        local = e;
      }
    }
    local = (day + 1) * day_seconds;
  }
}

Seconds Shift::between(Seconds a, Seconds b) const {
  if (b <= a) return 0;
  if (continuous_) return b - a;
  Seconds total = 0;
  // Nobody works outside the calendars' years: count only inside them.
  const Seconds la = std::max(a + offset_, first_day * day_seconds);
  const Seconds lb = std::min(b + offset_, end_day * day_seconds);
  for (std::int64_t day = floor_div(la, day_seconds); day * day_seconds < lb; ++day) {
    if (!working_day(day)) continue;
    for (const auto& p : periods_) {
      const Seconds s = std::max(la, day * day_seconds + p.start_minute * 60);
      const Seconds e = std::min(lb, day * day_seconds + p.end_minute * 60);
      if (e > s) total += e - s;
    }
  }
  return total;
}

}  // namespace onestop::sim
