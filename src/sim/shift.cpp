#include "sim/shift.hpp"

#include <algorithm>

namespace onestop::sim {

namespace {

constexpr Seconds day_seconds = 86400;

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
}

bool Shift::working_day(std::int64_t day) const {
  if (every_day_) return true;
  if (cache_.empty()) base_day_ = day - 7;
  if (day < base_day_) {
    return calendar_->is_working_day(std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{day}}});
  }
  const auto i = static_cast<std::size_t>(day - base_day_);
  if (i >= cache_.size()) cache_.resize(std::max<std::size_t>(i + 1, cache_.size() * 2 + 64), -1);
  if (cache_[i] < 0) {
    cache_[i] = calendar_->is_working_day(std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{day}}}) ? 1 : 0;
  }
  return cache_[i] == 1;
}

Seconds Shift::next_on(Seconds t) const {
  if (continuous_) return t;
  Seconds local = t + offset_;
  for (int guard = 0; guard < 4000; ++guard) {
    const std::int64_t day = floor_div(local, day_seconds);
    if (working_day(day)) {
      for (const auto& p : periods_) {
        const Seconds s = day * day_seconds + p.start_minute * 60;
        const Seconds e = day * day_seconds + p.end_minute * 60;
        if (local < e) return std::max(local, s) - offset_;
      }
    }
    local = (day + 1) * day_seconds;
  }
  return never;
}

Seconds Shift::add(Seconds t, Seconds work) const {
  if (work <= 0) return t;
  if (continuous_) return t + work;
  Seconds local = t + offset_;
  Seconds left = work;
  for (int guard = 0; guard < 40000; ++guard) {
    const std::int64_t day = floor_div(local, day_seconds);
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
  return never;
}

Seconds Shift::between(Seconds a, Seconds b) const {
  if (b <= a) return 0;
  if (continuous_) return b - a;
  Seconds total = 0;
  const Seconds la = a + offset_;
  const Seconds lb = b + offset_;
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
