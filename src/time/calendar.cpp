// Working-day arithmetic in O(1) with no allocation after construction.
//
// Everything reduces to two monotone counting functions:
//   W(d): the number of working days before local day d (days since
//         1970-01-01), counted from a fixed origin; d is a working day
//         exactly when W(d + 1) == W(d) + 1;
//   T(t): working seconds before instant t: W(day) * day_length plus the
//         working time already gone on t's day.
// Between the first and last year the calendar lists holidays for, W comes
// from a table of cumulative counts and its inverse ("the k-th working
// day") from a table of working days; outside that range only the weekly
// rest days apply and both are closed formulas over whole weeks.

#include <onestop/calendar.hpp>
#include <onestop/clock.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <memory>
#include <cmath>
#include <map>
#include <set>

namespace onestop {

namespace {

using std::chrono::days;
using std::chrono::local_seconds;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_days;
using std::chrono::sys_seconds;
using std::chrono::year_month_day;

constexpr std::int64_t kDay = 86'400;
constexpr std::int64_t kOriginSunday = 3;  // 1970-01-04, a Sunday
constexpr std::int64_t kMaxAmount = 1'000'000;
constexpr int kDefaultOffsetMinutes = 8 * 60;

// Days since 1970-01-01 of 0001-01-01 and of 10000-01-01.
constexpr std::int64_t kFirstDay =
    sys_days{std::chrono::year{1} / std::chrono::January / 1}.time_since_epoch().count();
constexpr std::int64_t kEndDay =
    sys_days{std::chrono::year{10000} / std::chrono::January / 1}.time_since_epoch().count();

constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

std::int64_t day_number(year_month_day d) noexcept { return sys_days{d}.time_since_epoch().count(); }

year_month_day to_date(std::int64_t day) noexcept { return year_month_day{sys_days{days{day}}}; }

std::string date_text(std::int64_t day) { return format_date(to_date(day)); }

const std::vector<WorkingPeriod>& default_hours() {
  static const std::vector<WorkingPeriod> hours{{9 * 60, 12 * 60}, {13 * 60 + 30, 17 * 60 + 30}};
  return hours;
}

std::string_view unit_name(TimeUnit unit) noexcept {
  switch (unit) {
    case TimeUnit::working_days: return "working days";
    case TimeUnit::natural_days: return "natural days";
    case TimeUnit::working_hours: return "working hours";
    case TimeUnit::natural_hours: return "natural hours";
  }
  return "?";
}

bool is_working_unit(TimeUnit unit) noexcept {
  return unit == TimeUnit::working_days || unit == TimeUnit::working_hours;
}

void check_instant(sys_seconds t, std::string_view what) {
  const std::int64_t s = t.time_since_epoch().count();
  if (s < kFirstDay * kDay || s >= kEndDay * kDay) {
    throw Error(ErrorCode::invalid_input,
                fmt::format("{} ({} s since 1970) lies outside the years 0001..9999", what, s));
  }
}

void check_amount(double amount, TimeUnit unit) {
  if (!std::isfinite(amount) || std::fabs(amount) > static_cast<double>(kMaxAmount)) {
    throw Error(ErrorCode::invalid_input,
                fmt::format("time amount {} {} is out of range (at most {})", amount, unit_name(unit), kMaxAmount));
  }
}

void check_definition(const Calendar& c) {
  const std::string who = c.id.empty() ? std::string("calendar") : fmt::format("calendar '{}'", c.id);
  if (c.utc_offset_minutes && std::abs(*c.utc_offset_minutes) > 14 * 60) {
    throw Error(ErrorCode::invalid_input, fmt::format("{}: utc offset {} minutes is out of range", who,
                                                      *c.utc_offset_minutes));
  }
  if (c.rest_weekdays) {
    for (int w : *c.rest_weekdays) {
      if (w < 0 || w > 6) {
        throw Error(ErrorCode::invalid_input, fmt::format("{}: rest weekday {} is not 0 (Sunday) .. 6", who, w));
      }
    }
  }
  if (c.working_hours) {
    int previous_end = 0;
    for (const auto& p : *c.working_hours) {
      if (p.start_minute < previous_end || p.end_minute <= p.start_minute || p.end_minute > 24 * 60) {
        throw Error(ErrorCode::invalid_input,
                    fmt::format("{}: working periods must lie within 00:00-24:00, ascending and not overlapping", who));
      }
      previous_end = p.end_minute;
    }
  }
  std::set<sys_days> holidays(c.holidays.begin(), c.holidays.end());
  for (auto d : c.workdays) {
    if (holidays.count(d)) {
      throw Error(ErrorCode::invalid_input,
                  fmt::format("{}: {} is both a holiday and a make-up working day", who,
                              date_text(d.time_since_epoch().count())));
    }
  }
}

}  // namespace

struct WorkingCalendar::Impl {
  struct Period {
    std::int64_t start;   // seconds after local midnight
    std::int64_t end;
    std::int64_t before;  // working seconds of the day before this period
  };

  std::uint64_t serial = 0;  // unique per built calendar: the key of before()'s memo
  std::string id;
  std::string name;
  std::int64_t offset = kDefaultOffsetMinutes * 60;  // seconds, local - UTC
  std::vector<WorkingPeriod> hours;
  std::vector<Period> periods;
  std::int64_t day_length = 0;
  std::int64_t close = 0;  // end of the last period, seconds after midnight
  std::array<bool, 7> rest{};  // 0 = Sunday
  std::int64_t per_week = 0;
  std::array<std::int64_t, 8> prefix{};       // working weekdays among the first r of a Sunday-first week
  std::array<std::int64_t, 7> nth_weekday{};  // offset from Sunday of the r-th working weekday
  // The table: days [lo, lo + n).
  std::int64_t lo = 0;
  std::int64_t n = 0;
  std::int64_t cum0 = 0;            // W(lo)
  std::vector<std::int32_t> cum;    // W(lo + i) - cum0, i in [0, n]
  std::vector<std::int32_t> work;   // working days of the table, as offsets from lo
  std::optional<std::pair<sys_days, sys_days>> listed;

  std::int64_t week_count(std::int64_t d) const noexcept {
    const std::int64_t x = d - kOriginSunday;
    const std::int64_t q = floor_div(x, 7);
    return q * per_week + prefix[static_cast<std::size_t>(x - 7 * q)];
  }

  std::int64_t week_inverse(std::int64_t k) const {
    if (per_week == 0) {
      throw Error(ErrorCode::invalid_input,
                  fmt::format("calendar '{}' has no working days outside {}", id,
                              n == 0 ? std::string("its listed dates")
                                     : fmt::format("{}..{}", date_text(lo), date_text(lo + n - 1))));
    }
    const std::int64_t q = floor_div(k, per_week);
    return kOriginSunday + 7 * q + nth_weekday[static_cast<std::size_t>(k - q * per_week)];
  }

  // Working days before day d.
  std::int64_t count(std::int64_t d) const noexcept {
    if (d <= lo) return week_count(d);
    if (d >= lo + n) return cum0 + cum[static_cast<std::size_t>(n)] + week_count(d) - week_count(lo + n);
    return cum0 + cum[static_cast<std::size_t>(d - lo)];
  }

  bool working(std::int64_t d) const noexcept {
    if (d >= lo && d < lo + n) {
      const auto i = static_cast<std::size_t>(d - lo);
      return cum[i + 1] != cum[i];
    }
    return !rest[static_cast<std::size_t>(d - kOriginSunday - 7 * floor_div(d - kOriginSunday, 7))];
  }

  // The working day d with count(d) == k.
  std::int64_t nth(std::int64_t k) const {
    if (k < cum0) return week_inverse(k);
    const std::int64_t end = cum0 + cum[static_cast<std::size_t>(n)];
    if (k < end) return lo + work[static_cast<std::size_t>(k - cum0)];
    return week_inverse(k - end + week_count(lo + n));
  }

  // Working seconds of a working day before time of day `tod`.
  std::int64_t within(std::int64_t tod) const noexcept {
    std::int64_t s = 0;
    for (const auto& p : periods) {
      if (tod <= p.start) break;
      s += std::min(tod, p.end) - p.start;
    }
    return s;
  }

  std::int64_t day_of(sys_seconds t) const noexcept {
    return floor_div(t.time_since_epoch().count() + offset, kDay);
  }

  // Working seconds before instant t.
  std::int64_t working_seconds(sys_seconds t) const noexcept {
    const std::int64_t local = t.time_since_epoch().count() + offset;
    const std::int64_t d = floor_div(local, kDay);
    const std::int64_t base = count(d) * day_length;
    return working(d) ? base + within(local - d * kDay) : base;
  }

  // The earliest instant t with working_seconds(t) >= target.
  sys_seconds at_working_seconds(std::int64_t target) const {
    const std::int64_t k = floor_div(target - 1, day_length);
    std::int64_t rest_of = target - k * day_length;  // in [1, day_length]
    const std::int64_t d = nth(k);
    std::int64_t tod = close;
    for (const auto& p : periods) {
      if (rest_of <= p.end - p.start) {
        tod = p.start + rest_of;
        break;
      }
      rest_of -= p.end - p.start;
    }
    return sys_seconds{seconds{d * kDay + tod - offset}};
  }

  sys_seconds local_midnight(std::int64_t d) const noexcept { return sys_seconds{seconds{d * kDay - offset}}; }

  sys_seconds close_of(std::int64_t d) const noexcept { return sys_seconds{seconds{d * kDay + close - offset}}; }

  std::int64_t unit_seconds(TimeUnit unit) const noexcept {
    switch (unit) {
      case TimeUnit::working_days: return day_length;
      case TimeUnit::natural_days: return kDay;
      case TimeUnit::working_hours:
      case TimeUnit::natural_hours: return 3600;
    }
    return 3600;
  }

  // Time between two instants in seconds of the unit's kind.
  std::int64_t span(sys_seconds from, sys_seconds to, TimeUnit unit) const noexcept {
    return is_working_unit(unit) ? working_seconds(to) - working_seconds(from) : (to - from).count();
  }

  static std::shared_ptr<const Impl> build(const std::vector<const Calendar*>& chain);
};

// `chain` runs from the root to the calendar being built.
std::shared_ptr<const WorkingCalendar::Impl> WorkingCalendar::Impl::build(const std::vector<const Calendar*>& chain) {
  static std::atomic<std::uint64_t> serials{0};
  auto impl = std::make_shared<Impl>();
  impl->serial = ++serials;
  int offset_minutes = kDefaultOffsetMinutes;
  std::vector<int> rest_days{0, 6};
  std::optional<std::vector<WorkingPeriod>> hours;
  std::map<std::int64_t, bool> exceptions;  // day -> working
  for (const Calendar* c : chain) {
    check_definition(*c);
    if (c->utc_offset_minutes) offset_minutes = *c->utc_offset_minutes;
    if (c->rest_weekdays) rest_days = *c->rest_weekdays;
    if (c->working_hours) hours = *c->working_hours;
    for (auto d : c->holidays) exceptions[d.time_since_epoch().count()] = false;
    for (auto d : c->workdays) exceptions[d.time_since_epoch().count()] = true;
  }
  if (!chain.empty()) {
    impl->id = chain.back()->id;
    impl->name = chain.back()->name;
  }
  impl->offset = std::int64_t{offset_minutes} * 60;
  impl->hours = hours ? *hours : default_hours();
  if (impl->hours.empty()) impl->hours.push_back({0, 24 * 60});
  for (const auto& p : impl->hours) {
    const Period period{std::int64_t{p.start_minute} * 60, std::int64_t{p.end_minute} * 60, impl->day_length};
    impl->periods.push_back(period);
    impl->day_length += period.end - period.start;
  }
  impl->close = impl->periods.back().end;
  for (int w : rest_days) impl->rest[static_cast<std::size_t>(w)] = true;
  for (std::size_t w = 0; w < 7; ++w) {
    impl->prefix[w + 1] = impl->prefix[w] + (impl->rest[w] ? 0 : 1);
    if (!impl->rest[w]) impl->nth_weekday[static_cast<std::size_t>(impl->per_week++)] = static_cast<std::int64_t>(w);
  }
  if (!exceptions.empty()) {
    const std::int64_t first = exceptions.begin()->first;
    const std::int64_t last = exceptions.rbegin()->first;
    if (first < kFirstDay || last >= kEndDay) {
      throw Error(ErrorCode::invalid_input,
                  fmt::format("calendar '{}' lists a date outside the years 0001..9999", impl->id));
    }
    impl->listed = std::pair{sys_days{days{first}}, sys_days{days{last}}};
    // The table covers whole years, from the first listed year to the last.
    impl->lo = day_number(to_date(first).year() / std::chrono::January / 1);
    const std::int64_t hi = day_number((to_date(last).year() + std::chrono::years{1}) / std::chrono::January / 1);
    impl->n = hi - impl->lo;
    impl->cum0 = impl->week_count(impl->lo);
    impl->cum.reserve(static_cast<std::size_t>(impl->n + 1));
    impl->cum.push_back(0);
    auto next = exceptions.begin();
    std::int32_t total = 0;
    for (std::int64_t d = impl->lo; d < hi; ++d) {
      bool working = !impl->rest[static_cast<std::size_t>(
          d - kOriginSunday - 7 * floor_div(d - kOriginSunday, 7))];
      if (next != exceptions.end() && next->first == d) {
        working = next->second;
        ++next;
      }
      if (working) {
        impl->work.push_back(static_cast<std::int32_t>(d - impl->lo));
        ++total;
      }
      impl->cum.push_back(total);
    }
  } else {
    impl->cum.push_back(0);
  }
  return impl;
}

WorkingCalendar::WorkingCalendar(std::shared_ptr<const Impl> impl) noexcept : impl_(std::move(impl)) {}

WorkingCalendar::WorkingCalendar() : impl_(Impl::build({})) {}

WorkingCalendar::WorkingCalendar(const Calendar& root) {
  if (!root.extends.empty()) {
    throw Error(ErrorCode::invalid_input,
                fmt::format("calendar '{}' extends '{}'; build it with WorkingCalendar::resolve", root.id,
                            root.extends));
  }
  impl_ = Impl::build({&root});
}

WorkingCalendar WorkingCalendar::resolve(const std::vector<Calendar>& calendars, std::string_view id) {
  auto find = [&](std::string_view wanted) -> const Calendar* {
    for (const auto& c : calendars) {
      if (c.id == wanted) return &c;
    }
    return nullptr;
  };
  std::vector<const Calendar*> chain;
  const Calendar* c = find(id);
  if (c == nullptr) throw Error(ErrorCode::not_found, fmt::format("calendar '{}' is not defined", id));
  while (c != nullptr) {
    if (std::find(chain.begin(), chain.end(), c) != chain.end()) {
      throw Error(ErrorCode::invalid_input, fmt::format("calendar '{}' extends itself through '{}'", id, c->id));
    }
    chain.push_back(c);
    if (c->extends.empty()) break;
    const Calendar* parent = find(c->extends);
    if (parent == nullptr) {
      throw Error(ErrorCode::not_found,
                  fmt::format("calendar '{}' extends '{}', which is not defined", c->id, c->extends));
    }
    c = parent;
  }
  std::reverse(chain.begin(), chain.end());
  return WorkingCalendar(Impl::build(chain));
}

WorkingCalendar WorkingCalendar::resolve(const Catalog& catalog, std::string_view id) {
  if (id.empty()) {
    if (catalog.default_calendar.empty()) {
      throw Error(ErrorCode::not_found, "no calendar named and the catalog sets no default_calendar");
    }
    id = catalog.default_calendar;
  }
  return resolve(catalog.calendars, id);
}

const std::string& WorkingCalendar::id() const noexcept { return impl_->id; }

std::uint64_t WorkingCalendar::serial() const noexcept { return impl_->serial; }

const std::string& WorkingCalendar::name() const noexcept { return impl_->name; }

minutes WorkingCalendar::utc_offset() const noexcept { return minutes{impl_->offset / 60}; }

const std::vector<WorkingPeriod>& WorkingCalendar::working_hours() const noexcept { return impl_->hours; }

seconds WorkingCalendar::working_day_length() const noexcept { return seconds{impl_->day_length}; }

std::optional<std::pair<sys_days, sys_days>> WorkingCalendar::listed_dates() const noexcept { return impl_->listed; }

local_seconds WorkingCalendar::to_local(sys_seconds instant) const noexcept {
  return local_seconds{instant.time_since_epoch() + seconds{impl_->offset}};
}

sys_seconds WorkingCalendar::to_utc(local_seconds local) const noexcept {
  return sys_seconds{local.time_since_epoch() - seconds{impl_->offset}};
}

std::string WorkingCalendar::format_local(sys_seconds instant) const {
  const std::int64_t local = instant.time_since_epoch().count() + impl_->offset;
  const std::int64_t d = floor_div(local, kDay);
  const std::int64_t tod = local - d * kDay;
  const std::int64_t off = impl_->offset < 0 ? -impl_->offset : impl_->offset;
  return fmt::format("{}T{:02}:{:02}:{:02}{}{:02}:{:02}", date_text(d), tod / 3600, tod / 60 % 60, tod % 60,
                     impl_->offset < 0 ? '-' : '+', off / 3600, off / 60 % 60);
}

year_month_day WorkingCalendar::local_date(sys_seconds instant) const noexcept {
  return to_date(impl_->day_of(instant));
}

bool WorkingCalendar::is_working_day(year_month_day local_date) const noexcept {
  return impl_->working(day_number(local_date));
}

bool WorkingCalendar::is_working_time(sys_seconds instant) const noexcept {
  const std::int64_t local = instant.time_since_epoch().count() + impl_->offset;
  const std::int64_t d = floor_div(local, kDay);
  if (!impl_->working(d)) return false;
  const std::int64_t tod = local - d * kDay;
  for (const auto& p : impl_->periods) {
    if (tod >= p.start && tod < p.end) return true;
  }
  return false;
}

year_month_day WorkingCalendar::add_working_days(year_month_day date, std::int64_t n) const {
  const std::int64_t d = day_number(date);
  if (d < kFirstDay || d >= kEndDay) {
    throw Error(ErrorCode::invalid_input, "date lies outside the years 0001..9999");
  }
  check_amount(static_cast<double>(n), TimeUnit::working_days);
  if (n >= 1) return to_date(impl_->nth(impl_->count(d + 1) + n - 1));
  return to_date(impl_->nth(impl_->count(d) + n));
}

std::int64_t WorkingCalendar::count_working_days(year_month_day first, year_month_day last) const {
  const std::int64_t a = day_number(first);
  const std::int64_t b = day_number(last);
  if (b < a) return 0;
  return impl_->count(b + 1) - impl_->count(a);
}

sys_seconds WorkingCalendar::close_of_business(year_month_day local_date) const {
  return impl_->close_of(day_number(local_date));
}

sys_seconds WorkingCalendar::due(sys_seconds start, const TimeLimit& limit) const {
  const Impl& c = *impl_;
  check_instant(start, "start");
  if (limit.amount < 0 || limit.amount > kMaxAmount) {
    throw Error(ErrorCode::invalid_input, fmt::format("time limit '{}' is out of range (0 .. {})",
                                                      limit.to_string(), kMaxAmount));
  }
  const std::int64_t n = limit.amount;
  switch (limit.unit) {
    case TimeUnit::working_days: {
      const std::int64_t d = c.day_of(start);
      if (n >= 1) return c.close_of(c.nth(c.count(d + 1) + n - 1));
      const std::int64_t k = c.count(d);
      const sys_seconds close = c.close_of(c.nth(k));
      return close < start ? c.close_of(c.nth(k + 1)) : close;
    }
    case TimeUnit::working_hours:
      if (n == 0) return start;
      return c.at_working_seconds(c.working_seconds(start) + n * 3600);
    case TimeUnit::natural_days:
      return c.local_midnight(c.day_of(start) + n + 1);
    case TimeUnit::natural_hours:
      return start + seconds{n * 3600};
  }
  throw Error(ErrorCode::invalid_input, "unknown time unit");
}

seconds WorkingCalendar::working_time(sys_seconds from, sys_seconds to) const {
  check_instant(from, "from");
  check_instant(to, "to");
  return seconds{impl_->working_seconds(to) - impl_->working_seconds(from)};
}

double WorkingCalendar::elapsed(sys_seconds from, sys_seconds to, TimeUnit unit) const {
  const Impl& c = *impl_;
  check_instant(from, "from");
  check_instant(to, "to");
  std::int64_t used = 0;
  switch (unit) {
    case TimeUnit::working_days:
      used = c.working_seconds(to) - c.count(c.day_of(from) + 1) * c.day_length;
      break;
    case TimeUnit::natural_days:
      used = (to - c.local_midnight(c.day_of(from) + 1)).count();
      break;
    case TimeUnit::working_hours:
    case TimeUnit::natural_hours:
      used = c.span(from, to, unit);
      break;
  }
  return used <= 0 ? 0.0 : static_cast<double>(used) / static_cast<double>(c.unit_seconds(unit));
}

double WorkingCalendar::remaining(sys_seconds now, sys_seconds due, TimeUnit unit) const {
  check_instant(now, "now");
  check_instant(due, "due");
  return static_cast<double>(impl_->span(now, due, unit)) / static_cast<double>(impl_->unit_seconds(unit));
}

sys_seconds WorkingCalendar::before(sys_seconds due, double amount, TimeUnit unit) const {
  const Impl& c = *impl_;
  check_instant(due, "due");
  check_amount(amount, unit);
  const double lead = amount * static_cast<double>(c.unit_seconds(unit));
  if (is_working_unit(unit)) {
    // Engines ask again for the same warning instants of the same clocks at
    // every action of a case (Store::Commit::next_timer): a small per-thread
    // memo answers those from the last results, keyed by calendar serial.
    struct Memo {
      std::uint64_t serial = 0;  // 0: empty
      std::int64_t due = 0;
      double lead = 0;
      std::int64_t result = 0;
    };
    constexpr std::size_t slots = 16384;
    thread_local std::unique_ptr<Memo[]> memo;
    if (!memo) memo = std::make_unique<Memo[]>(slots);
    const std::int64_t at = due.time_since_epoch().count();
    const auto bits = std::bit_cast<std::uint64_t>(lead);
    std::uint64_t h = (c.serial * 0x9E3779B97F4A7C15ULL) ^ (static_cast<std::uint64_t>(at) * 0xC2B2AE3D27D4EB4FULL) ^
                      (bits * 0x165667B19E3779F9ULL);
    h ^= h >> 29;
    Memo& m = memo[h & (slots - 1)];
    if (m.serial == c.serial && m.due == at && m.lead == lead) return sys_seconds{seconds{m.result}};
    const auto target = static_cast<std::int64_t>(std::ceil(static_cast<double>(c.working_seconds(due)) - lead));
    const sys_seconds out = c.at_working_seconds(target);
    m = Memo{c.serial, at, lead, out.time_since_epoch().count()};
    return out;
  }
  return sys_seconds{seconds{static_cast<std::int64_t>(
      std::ceil(static_cast<double>(due.time_since_epoch().count()) - lead))}};
}

seconds WorkingCalendar::suspension_time(sys_seconds paused_from, sys_seconds resumed_at, TimeUnit unit) const {
  check_instant(paused_from, "suspension start");
  check_instant(resumed_at, "suspension end");
  if (resumed_at < paused_from) {
    throw Error(ErrorCode::invalid_input, "a suspension cannot end before it starts");
  }
  return seconds{impl_->span(paused_from, resumed_at, unit)};
}

sys_seconds WorkingCalendar::extend(sys_seconds due, sys_seconds paused_from, sys_seconds resumed_at,
                                    TimeUnit unit) const {
  check_instant(due, "due");
  const seconds added = suspension_time(paused_from, resumed_at, unit);
  if (added.count() == 0) return due;
  if (is_working_unit(unit)) return impl_->at_working_seconds(impl_->working_seconds(due) + added.count());
  return due + added;
}

LimitClock WorkingCalendar::start_clock(sys_seconds start, const TimeLimit& limit) const {
  LimitClock clock;
  clock.limit = limit;
  clock.started = start;
  clock.due = due(start, limit);
  return clock;
}

void WorkingCalendar::pause(LimitClock& clock, sys_seconds at) const {
  if (clock.paused_at) throw Error(ErrorCode::invalid_state, "the clock is already paused");
  check_instant(at, "pause");
  clock.paused_at = at;
}

void WorkingCalendar::resume(LimitClock& clock, sys_seconds at) const {
  if (!clock.paused_at) throw Error(ErrorCode::invalid_state, "the clock is not paused");
  const seconds added = suspension_time(*clock.paused_at, at, clock.limit.unit);
  clock.due = extend(clock.due, *clock.paused_at, at, clock.limit.unit);
  clock.suspended += added;
  clock.paused_at.reset();
}

double WorkingCalendar::remaining(const LimitClock& clock, sys_seconds now) const {
  return remaining(clock.paused_at ? *clock.paused_at : now, clock.due, clock.limit.unit);
}

double WorkingCalendar::used_share(const LimitClock& clock, sys_seconds now) const {
  const sys_seconds at = clock.paused_at ? *clock.paused_at : now;
  if (clock.limit.amount == 0) return at >= clock.due ? 1.0 : 0.0;
  const auto amount = static_cast<double>(clock.limit.amount);
  return std::max(0.0, amount - remaining(at, clock.due, clock.limit.unit)) / amount;
}

std::optional<sys_seconds> WorkingCalendar::when_used(const LimitClock& clock, double share) const {
  if (clock.paused_at) return std::nullopt;
  if (clock.limit.amount == 0) return clock.due;
  const double lead = (1.0 - share) * static_cast<double>(clock.limit.amount);
  // More than the largest amount past the due instant (a rule "used >=
  // 1000%" on a limit of centuries): no case gets there, and before() takes
  // no such amount. Never, rather than an error at every action.
  if (lead < -static_cast<double>(kMaxAmount)) return std::nullopt;
  return before(clock.due, lead, clock.limit.unit);
}

}  // namespace onestop
