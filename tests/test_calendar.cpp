// Working-day calendars: the shipped mainland China data, due dates across
// Spring Festival and National Day, working-hour arithmetic, inheritance,
// suspensions, and property tests against a day-by-day reference.

#include <onestop/calendar.hpp>
#include <onestop/clock.hpp>
#include <onestop/definitions.hpp>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using onestop::Calendar;
using onestop::ErrorCode;
using onestop::TimeLimit;
using onestop::TimeUnit;
using onestop::WorkingCalendar;

std::shared_ptr<const onestop::Catalog> shipped_catalog() {
  static const auto result = onestop::load_catalog({fs::path(ONESTOP_SOURCE_DIR) / "calendars"});
  return result.catalog;
}

const WorkingCalendar& cn() {
  static const WorkingCalendar calendar = WorkingCalendar::resolve(*shipped_catalog(), "cn");
  return calendar;
}

year_month_day ymd(int y, unsigned m, unsigned d) { return year{y} / month{m} / day{d}; }

// A local wall time in the calendar's zone, as a UTC instant.
sys_seconds at(const WorkingCalendar& c, int y, unsigned m, unsigned d, int h = 0, int mi = 0) {
  return c.to_utc(local_days{ymd(y, m, d)} + hours{h} + minutes{mi});
}

std::string show(const WorkingCalendar& c, sys_seconds t) { return c.format_local(t); }

std::string show(year_month_day d) {
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                     static_cast<unsigned>(d.day()));
}

TimeLimit wd(std::int64_t n) { return {n, TimeUnit::working_days}; }
TimeLimit wh(std::int64_t n) { return {n, TimeUnit::working_hours}; }
TimeLimit nd(std::int64_t n) { return {n, TimeUnit::natural_days}; }
TimeLimit nh(std::int64_t n) { return {n, TimeUnit::natural_hours}; }

// Due date of N working days by walking day by day (the reference).
year_month_day walk_working_days(const WorkingCalendar& c, year_month_day start, std::int64_t n) {
  sys_days d{start};
  while (n > 0) {
    d += days{1};
    if (c.is_working_day(year_month_day{d})) --n;
  }
  return year_month_day{d};
}

// Working time by summing, day by day, the overlap with the working periods.
seconds reference_working_time(const WorkingCalendar& c, sys_seconds from, sys_seconds to) {
  seconds total{0};
  const local_seconds a = c.to_local(from);
  const local_seconds b = c.to_local(to);
  for (local_days d = floor<days>(a); d <= floor<days>(b); d += days{1}) {
    if (!c.is_working_day(year_month_day{d})) continue;
    for (const auto& p : c.working_hours()) {
      const local_seconds ps = d + minutes{p.start_minute};
      const local_seconds pe = d + minutes{p.end_minute};
      const local_seconds s = std::max(ps, a);
      const local_seconds e = std::min(pe, b);
      if (e > s) total += e - s;
    }
  }
  return total;
}

}  // namespace

TEST_SUITE("calendar") {

TEST_CASE("the shipped cn calendar loads with no diagnostics and covers 2020-2026") {
  const auto result = onestop::load_catalog({fs::path(ONESTOP_SOURCE_DIR) / "calendars"});
  for (const auto& d : result.diagnostics) INFO(d.to_string());
  CHECK(result.diagnostics.empty());
  REQUIRE(result.catalog->find_calendar("cn") != nullptr);
  const WorkingCalendar& c = cn();
  CHECK(c.id() == "cn");
  CHECK(c.utc_offset() == minutes{480});
  CHECK(c.working_day_length() == hours{7});
  REQUIRE(c.listed_dates().has_value());
  CHECK(show(year_month_day{c.listed_dates()->first}) == "2020-01-01");
  CHECK(show(year_month_day{c.listed_dates()->second}) == "2026-10-10");

  std::ifstream in(fs::path(ONESTOP_SOURCE_DIR) / "calendars" / "cn.yaml");
  std::stringstream text;
  text << in.rdbuf();
  // Lunar New Year's day of each year, inside its Spring Festival holiday.
  const year_month_day new_year[] = {ymd(2020, 1, 25), ymd(2021, 2, 12), ymd(2022, 2, 1), ymd(2023, 1, 22),
                                     ymd(2024, 2, 10), ymd(2025, 1, 29), ymd(2026, 2, 17)};
  for (int y = 2020; y <= 2026; ++y) {
    CAPTURE(y);
    CHECK(text.str().find(fmt::format("# {} Spring Festival 春节", y)) != std::string::npos);
    CHECK(text.str().find(fmt::format("# {} National Day 国庆节", y)) != std::string::npos);
    const year_month_day lunar = new_year[y - 2020];
    // The festival holiday spans at least three days around it, and
    // 1-3 October are always rest.
    for (int offset : {0, 1, 2}) CHECK_FALSE(c.is_working_day(year_month_day{sys_days{lunar} + days{offset}}));
    for (unsigned d : {1u, 2u, 3u}) CHECK_FALSE(c.is_working_day(ymd(y, 10, d)));
    std::int64_t weekday_holidays = 0;
    for (sys_days d = sys_days{ymd(y, 1, 1)}; d <= sys_days{ymd(y, 12, 31)}; d += days{1}) {
      const unsigned wdn = weekday{d}.c_encoding();
      if (wdn != 0 && wdn != 6 && !c.is_working_day(year_month_day{d})) ++weekday_holidays;
    }
    // 11 statutory days (13 from 2025) less those falling on weekends,
    // plus the days swapped for make-up days: never fewer than 11.
    CHECK(weekday_holidays >= 11);
  }
}

TEST_CASE("working days and rest days around Spring Festival and National Day") {
  const WorkingCalendar& c = cn();
  // 2024: holiday 02-10..02-17, make-up Sundays 02-04 and 02-18.
  CHECK(c.is_working_day(ymd(2024, 2, 4)));
  CHECK(c.is_working_day(ymd(2024, 2, 9)));
  for (unsigned d = 10; d <= 17; ++d) CHECK_FALSE(c.is_working_day(ymd(2024, 2, d)));
  CHECK(c.is_working_day(ymd(2024, 2, 18)));
  CHECK_FALSE(c.is_working_day(ymd(2024, 2, 24)));  // an ordinary Saturday
  // 2024: National Day 10-01..10-07, make-up 09-29 (Sunday) and 10-12 (Saturday).
  CHECK(c.is_working_day(ymd(2024, 9, 29)));
  CHECK(c.is_working_day(ymd(2024, 10, 12)));
  CHECK_FALSE(c.is_working_day(ymd(2024, 10, 13)));
  // 2025: Mid-autumn on 10-06 inside National Day 10-01..10-08.
  CHECK_FALSE(c.is_working_day(ymd(2025, 10, 6)));
  CHECK_FALSE(c.is_working_day(ymd(2025, 10, 8)));
  CHECK(c.is_working_day(ymd(2025, 10, 9)));
  // 2026: make-up Sunday 01-04 after New Year.
  CHECK(c.is_working_day(ymd(2026, 1, 4)));
  // After the data only weekends are known: 2027 New Year's Day is a Friday.
  CHECK(c.is_working_day(ymd(2027, 1, 1)));
  CHECK_FALSE(c.is_working_day(ymd(2027, 1, 2)));
  CHECK(c.count_working_days(ymd(2024, 10, 1), ymd(2024, 10, 31)) == 19);
  CHECK(c.count_working_days(ymd(2024, 2, 1), ymd(2024, 2, 29)) == 18);
  CHECK(c.count_working_days(ymd(2024, 2, 2), ymd(2024, 2, 1)) == 0);
}

TEST_CASE("due dates in working days across Spring Festival (2024, 2025, 2026)") {
  const WorkingCalendar& c = cn();
  // Accepted Thursday 2024-02-08: Fri 02-09 is day 1, Sun 02-18 (make-up) day 2, Mon 02-19 day 3.
  CHECK(show(c, c.due(at(c, 2024, 2, 8, 10), wd(1))) == "2024-02-09T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 2, 8, 10), wd(2))) == "2024-02-18T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 2, 8, 10), wd(3))) == "2024-02-19T17:30:00+08:00");
  // Friday 2024-02-02: the make-up Sunday 02-04 is the first working day.
  CHECK(show(c, c.due(at(c, 2024, 2, 2, 16), wd(1))) == "2024-02-04T17:30:00+08:00");
  // Friday 2024-02-09, 20 working days: 02-18 .. 03-14.
  CHECK(show(c, c.due(at(c, 2024, 2, 9, 9), wd(20))) == "2024-03-14T17:30:00+08:00");
  // Accepted on a holiday: counting starts after it.
  CHECK(show(c, c.due(at(c, 2024, 2, 12, 11), wd(1))) == "2024-02-18T17:30:00+08:00");

  // 2025: holiday 01-28..02-04, make-up Sunday 01-26 and Saturday 02-08.
  CHECK(show(c, c.due(at(c, 2025, 1, 24, 15), wd(2))) == "2025-01-27T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2025, 1, 24, 15), wd(3))) == "2025-02-05T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2025, 1, 24, 15), wd(6))) == "2025-02-08T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2025, 1, 27, 9), wd(1))) == "2025-02-05T17:30:00+08:00");

  // 2026: holiday 02-15..02-23, make-up Saturdays 02-14 and 02-28.
  CHECK(show(c, c.due(at(c, 2026, 2, 13, 10), wd(1))) == "2026-02-14T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2026, 2, 13, 10), wd(2))) == "2026-02-24T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2026, 2, 13, 10), wd(6))) == "2026-02-28T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2026, 2, 13, 10), wd(7))) == "2026-03-02T17:30:00+08:00");
}

TEST_CASE("due dates in working days across National Day (2020, 2024, 2025, 2026)") {
  const WorkingCalendar& c = cn();
  // 2024: holiday 10-01..10-07, make-up 09-29 (Sun) and 10-12 (Sat).
  CHECK(show(c, c.due(at(c, 2024, 9, 27, 10), wd(3))) == "2024-10-08T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 9, 30, 10), wd(2))) == "2024-10-09T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 9, 30, 10), wd(5))) == "2024-10-12T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 9, 30, 10), wd(6))) == "2024-10-14T17:30:00+08:00");
  // 2025: 10-01..10-08 (Mid-autumn inside), make-up 09-28 (Sun) and 10-11 (Sat).
  CHECK(show(c, c.due(at(c, 2025, 9, 26, 10), wd(4))) == "2025-10-09T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2025, 9, 26, 10), wd(6))) == "2025-10-11T17:30:00+08:00");
  // 2026: Mid-autumn 09-25..27, National Day 10-01..07, make-up 09-20 (Sun) and 10-10 (Sat).
  CHECK(show(c, c.due(at(c, 2026, 9, 18, 10), wd(10))) == "2026-10-09T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2026, 9, 18, 10), wd(11))) == "2026-10-10T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2026, 9, 18, 10), wd(12))) == "2026-10-12T17:30:00+08:00");
  // 2020: 10-01..10-08, make-up 09-27 (Sun) and 10-10 (Sat).
  CHECK(show(c, c.due(at(c, 2020, 9, 25, 10), wd(2))) == "2020-09-28T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2020, 9, 29, 10), wd(2))) == "2020-10-09T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2020, 9, 29, 10), wd(3))) == "2020-10-10T17:30:00+08:00");
}

TEST_CASE("the local date decides, not the UTC date") {
  const WorkingCalendar& c = cn();
  // 2024-02-08T17:00Z is 01:00 on Friday 02-09 in Beijing: day 1 is 02-18.
  CHECK(show(c, c.due(sys_days{ymd(2024, 2, 8)} + hours{17}, wd(1))) == "2024-02-18T17:30:00+08:00");
  // 2024-02-08T15:00Z is 23:00 on Thursday 02-08: day 1 is 02-09.
  CHECK(show(c, c.due(sys_days{ymd(2024, 2, 8)} + hours{15}, wd(1))) == "2024-02-09T17:30:00+08:00");
  CHECK(c.local_date(sys_days{ymd(2024, 2, 8)} + hours{17}) == ymd(2024, 2, 9));
}

TEST_CASE("a limit of zero working days") {
  const WorkingCalendar& c = cn();
  CHECK(show(c, c.due(at(c, 2024, 2, 8, 10), wd(0))) == "2024-02-08T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 2, 8, 17, 30), wd(0))) == "2024-02-08T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 2, 8, 19), wd(0))) == "2024-02-09T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 2, 10, 10), wd(0))) == "2024-02-18T17:30:00+08:00");
}

TEST_CASE("working hours across lunch, evenings, weekends and holidays") {
  const WorkingCalendar& c = cn();
  // Monday 2024-03-04; working hours 09:00-12:00 and 13:30-17:30.
  CHECK(show(c, c.due(at(c, 2024, 3, 4, 10), wh(2))) == "2024-03-04T12:00:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 3, 4, 11), wh(2))) == "2024-03-04T14:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 3, 4, 12, 30), wh(1))) == "2024-03-04T14:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 3, 4, 9), wh(7))) == "2024-03-04T17:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 3, 4, 17), wh(1))) == "2024-03-05T09:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 3, 4, 20), wh(8))) == "2024-03-06T10:00:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 3, 4, 6), wh(3))) == "2024-03-04T12:00:00+08:00");
  // Friday afternoon into Monday.
  CHECK(show(c, c.due(at(c, 2024, 3, 8, 16, 30), wh(2))) == "2024-03-11T10:00:00+08:00");
  // Friday before Spring Festival into the make-up Sunday.
  CHECK(show(c, c.due(at(c, 2024, 2, 9, 17), wh(1))) == "2024-02-18T09:30:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 3, 4, 15), wh(0))) == "2024-03-04T15:00:00+08:00");

  CHECK(c.working_time(at(c, 2024, 3, 4, 8), at(c, 2024, 3, 4, 18)) == hours{7});
  CHECK(c.working_time(at(c, 2024, 3, 4, 10), at(c, 2024, 3, 5, 10)) == hours{7});
  CHECK(c.working_time(at(c, 2024, 3, 4, 11, 30), at(c, 2024, 3, 4, 14)) == minutes{60});
  CHECK(c.working_time(at(c, 2024, 3, 8, 17), at(c, 2024, 3, 11, 9, 30)) == hours{1});
  CHECK(c.working_time(at(c, 2024, 3, 11, 9, 30), at(c, 2024, 3, 8, 17)) == -hours{1});
  CHECK(c.working_time(at(c, 2024, 2, 9, 17, 30), at(c, 2024, 2, 18, 9)) == seconds{0});
  CHECK(c.is_working_time(at(c, 2024, 3, 4, 9)));
  CHECK_FALSE(c.is_working_time(at(c, 2024, 3, 4, 12)));
  CHECK_FALSE(c.is_working_time(at(c, 2024, 3, 9, 10)));
}

TEST_CASE("natural days end at 24:00; natural hours are wall time") {
  const WorkingCalendar& c = cn();
  CHECK(show(c, c.due(at(c, 2024, 2, 8, 10), nd(3))) == "2024-02-12T00:00:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 2, 8, 10), nd(0))) == "2024-02-09T00:00:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 2, 28, 23, 59), nd(1))) == "2024-03-01T00:00:00+08:00");
  CHECK(show(c, c.due(at(c, 2024, 2, 8, 10), nh(36))) == "2024-02-09T22:00:00+08:00");
  CHECK(c.elapsed(at(c, 2024, 2, 8, 10), at(c, 2024, 2, 10, 12), TimeUnit::natural_days) == doctest::Approx(1.5));
  CHECK(c.elapsed(at(c, 2024, 2, 8, 10), at(c, 2024, 2, 8, 22), TimeUnit::natural_days) == 0.0);
  CHECK(c.elapsed(at(c, 2024, 2, 8, 10), at(c, 2024, 2, 8, 22), TimeUnit::natural_hours) == 12.0);
}

TEST_CASE("elapsed and remaining in working days follow the counting convention") {
  const WorkingCalendar& c = cn();
  const sys_seconds start = at(c, 2024, 3, 4, 9);  // Monday at opening
  const sys_seconds due = c.due(start, wd(1));      // Tuesday 17:30
  CHECK(show(c, due) == "2024-03-05T17:30:00+08:00");
  // The acceptance day is free; Tuesday is the one counted day.
  CHECK(c.elapsed(start, at(c, 2024, 3, 4, 17, 30), TimeUnit::working_days) == 0.0);
  CHECK(c.elapsed(start, at(c, 2024, 3, 5, 12), TimeUnit::working_days) == doctest::Approx(3.0 / 7));
  CHECK(c.elapsed(start, due, TimeUnit::working_days) == 1.0);
  CHECK(c.elapsed(start, at(c, 2024, 3, 6, 12), TimeUnit::working_days) == doctest::Approx(1 + 3.0 / 7));
  // Working time itself runs from the start: the whole of Monday and Tuesday.
  CHECK(c.working_time(start, due) == hours{14});
  CHECK(c.remaining(start, due, TimeUnit::working_days) == 2.0);
  CHECK(c.remaining(at(c, 2024, 3, 4, 17, 30), due, TimeUnit::working_days) == 1.0);
  CHECK(c.remaining(at(c, 2024, 3, 6, 10), due, TimeUnit::working_days) == doctest::Approx(-1.0 / 7));
  // "remaining <= 1 working day" fires at Monday's close.
  CHECK(show(c, c.before(due, 1.0, TimeUnit::working_days)) == "2024-03-04T17:30:00+08:00");
  CHECK(show(c, c.before(due, 2.0, TimeUnit::working_hours)) == "2024-03-05T15:30:00+08:00");
  CHECK(show(c, c.before(due, 0.5, TimeUnit::natural_days)) == "2024-03-05T05:30:00+08:00");
}

TEST_CASE("suspensions add their working time back") {
  const WorkingCalendar& c = cn();
  const sys_seconds start = at(c, 2024, 9, 26, 10);  // Thursday
  auto clock = c.start_clock(start, wd(3));          // 09-27, 09-29 (make-up), 09-30
  CHECK(show(c, clock.due) == "2024-09-30T17:30:00+08:00");
  // Correction requested Friday 09-27 at 15:00, materials back Sunday 09-29 at 11:00:
  // 2.5 h on Friday + 2 h on the make-up Sunday = 4.5 working hours.
  c.pause(clock, at(c, 2024, 9, 27, 15));
  CHECK_THROWS_AS(c.pause(clock, at(c, 2024, 9, 27, 16)), onestop::Error);
  const double frozen = c.remaining(clock, at(c, 2024, 9, 27, 15));
  CHECK(c.remaining(clock, at(c, 2024, 9, 28, 12)) == frozen);
  CHECK(c.used_share(clock, at(c, 2024, 9, 29, 10)) == c.used_share(clock, at(c, 2024, 9, 27, 15)));
  CHECK_FALSE(c.when_used(clock, 0.8).has_value());
  c.resume(clock, at(c, 2024, 9, 29, 11));
  CHECK(clock.suspended == minutes{270});
  CHECK_FALSE(clock.paused_at.has_value());
  // Due moves 4.5 working hours past Monday 09-30 17:30, over National Day: 10-08 13:30 + 1.5 h.
  CHECK(show(c, clock.due) == "2024-10-08T15:00:00+08:00");
  CHECK(c.remaining(clock, at(c, 2024, 9, 29, 11)) == doctest::Approx(frozen));
  CHECK_FALSE(clock.overdue(at(c, 2024, 10, 8, 15)));
  CHECK(clock.overdue(at(c, 2024, 10, 8, 15, 1)));
  CHECK(c.used_share(clock, clock.due) == doctest::Approx(1.0));
  CHECK_THROWS_AS(c.resume(clock, at(c, 2024, 10, 1)), onestop::Error);
  // A suspension over a weekend only adds nothing.
  CHECK(c.extend(clock.due, at(c, 2024, 10, 5, 9), at(c, 2024, 10, 6, 18), TimeUnit::working_days) == clock.due);
  // Natural units add wall time.
  CHECK(c.extend(at(c, 2024, 3, 10), at(c, 2024, 3, 1), at(c, 2024, 3, 3, 6), TimeUnit::natural_days) ==
        at(c, 2024, 3, 12, 6));
  try {
    (void)c.extend(clock.due, at(c, 2024, 3, 2), at(c, 2024, 3, 1), TimeUnit::working_days);
    FAIL("a suspension ending before it starts must throw");
  } catch (const onestop::Error& e) {
    CHECK(e.code() == ErrorCode::invalid_input);
  }
}

TEST_CASE("used share and warning instants of a clock") {
  const WorkingCalendar& c = cn();
  auto clock = c.start_clock(at(c, 2024, 3, 4, 9), wd(2));  // due Wed 03-06 17:30
  CHECK(c.used_share(clock, at(c, 2024, 3, 4, 16)) == 0.0);
  CHECK(c.used_share(clock, at(c, 2024, 3, 5, 17, 30)) == doctest::Approx(0.5));
  CHECK(c.used_share(clock, clock.due) == doctest::Approx(1.0));
  CHECK(c.used_share(clock, at(c, 2024, 3, 7, 17, 30)) == doctest::Approx(1.5));
  const auto eighty = c.when_used(clock, 0.8);
  REQUIRE(eighty.has_value());
  // 0.4 of a 7-hour day = 2 h 48 min before Wednesday's close.
  CHECK(show(c, *eighty) == "2024-03-06T14:42:00+08:00");
  CHECK(c.used_share(clock, *eighty) == doctest::Approx(0.8));
  auto immediate = c.start_clock(at(c, 2024, 3, 4, 9), wd(0));
  CHECK(c.used_share(immediate, at(c, 2024, 3, 4, 10)) == 0.0);
  CHECK(c.used_share(immediate, at(c, 2024, 3, 4, 17, 30)) == 1.0);
}

TEST_CASE("a warning instant more than the largest amount past the due instant is never, not an error") {
  // "used >= 1000%" of the longest limit definitions allow: nine times
  // 999,999 units after the due instant, which before() does not take.
  const WorkingCalendar& c = cn();
  for (TimeUnit unit : {TimeUnit::working_days, TimeUnit::natural_days, TimeUnit::working_hours, TimeUnit::natural_hours}) {
    CAPTURE(static_cast<int>(unit));
    const auto clock = c.start_clock(at(c, 2024, 3, 4, 9), TimeLimit{999999, unit});
    CHECK_FALSE(c.when_used(clock, 10.0).has_value());
    CHECK_FALSE(c.when_used(clock, 3.0).has_value());
    const auto twice = c.when_used(clock, 2.0);  // 999,999 units past: still an instant
    REQUIRE(twice.has_value());
    CHECK(c.used_share(clock, *twice) == doctest::Approx(2.0));
  }
}

TEST_CASE("inheritance: a county calendar extends cn") {
  const auto& national = *shipped_catalog()->find_calendar("cn");
  Calendar county;
  county.id = "xihu";
  county.extends = "cn";
  county.holidays = {sys_days{ymd(2024, 3, 4)},     // a local holiday on a Monday
                     sys_days{ymd(2024, 10, 12)}};  // not working the national make-up Saturday
  county.workdays = {sys_days{ymd(2024, 3, 9)},     // a local make-up Saturday
                     sys_days{ymd(2024, 10, 7)}};   // working the last day of National Day
  Calendar office;
  office.id = "xihu_hall";
  office.extends = "xihu";
  office.working_hours = std::vector<onestop::WorkingPeriod>{{8 * 60 + 30, 12 * 60}, {14 * 60, 17 * 60}};
  const std::vector<Calendar> list{office, county, national};

  const auto x = WorkingCalendar::resolve(list, "xihu");
  CHECK(x.id() == "xihu");
  CHECK(x.utc_offset() == minutes{480});
  CHECK_FALSE(x.is_working_day(ymd(2024, 3, 4)));
  CHECK(x.is_working_day(ymd(2024, 3, 9)));
  CHECK_FALSE(x.is_working_day(ymd(2024, 10, 12)));
  CHECK(x.is_working_day(ymd(2024, 10, 7)));
  CHECK_FALSE(x.is_working_day(ymd(2024, 2, 12)));  // inherited holiday
  CHECK(x.is_working_day(ymd(2024, 2, 18)));        // inherited make-up day
  // cn itself is untouched.
  CHECK(cn().is_working_day(ymd(2024, 3, 4)));
  // Friday 2024-03-01 + 2: Monday 03-04 is the local holiday, so Tuesday and Wednesday.
  CHECK(show(x, x.due(at(x, 2024, 3, 1, 10), wd(2))) == "2024-03-06T17:30:00+08:00");
  CHECK(show(x, x.due(at(x, 2024, 9, 30, 10), wd(1))) == "2024-10-07T17:30:00+08:00");
  CHECK(show(x, x.due(at(x, 2024, 10, 11, 10), wd(1))) == "2024-10-14T17:30:00+08:00");

  const auto h = WorkingCalendar::resolve(list, "xihu_hall");
  CHECK(h.working_day_length() == minutes{6 * 60 + 30});
  CHECK_FALSE(h.is_working_day(ymd(2024, 3, 4)));
  CHECK(show(h, h.due(at(h, 2024, 3, 5, 11), wd(1))) == "2024-03-06T17:00:00+08:00");
  CHECK(show(h, h.due(at(h, 2024, 3, 5, 11), wh(2))) == "2024-03-05T15:00:00+08:00");

  // The same through YAML.
  const auto loaded = onestop::load_catalog(std::vector<onestop::Source>{
      {"root.yaml", "calendar:\n  id: root\n  holidays: [\"2024-05-01..2024-05-05\"]\n  workdays: [2024-04-28]\n"},
      {"county.yaml", "calendar:\n  id: county\n  extends: root\n  holidays: [2024-04-28]\n"
                      "  workdays: [2024-05-05]\n  rest_days: [sunday]\n"}});
  for (const auto& d : loaded.diagnostics) INFO(d.to_string());
  REQUIRE(loaded.ok());
  const auto county_cal = WorkingCalendar::resolve(*loaded.catalog, "county");
  CHECK_FALSE(county_cal.is_working_day(ymd(2024, 4, 28)));
  CHECK(county_cal.is_working_day(ymd(2024, 5, 5)));
  CHECK_FALSE(county_cal.is_working_day(ymd(2024, 5, 4)));
  CHECK(county_cal.is_working_day(ymd(2024, 5, 11)));  // Saturdays are worked in this county
  CHECK_FALSE(county_cal.is_working_day(ymd(2024, 5, 12)));
  const auto root_cal = WorkingCalendar::resolve(*loaded.catalog, "root");
  CHECK(root_cal.is_working_day(ymd(2024, 4, 28)));
  CHECK_FALSE(root_cal.is_working_day(ymd(2024, 5, 11)));
}

TEST_CASE("parse_instant: ISO 8601 with its offset, nothing else") {
  using onestop::parse_instant;
  const auto nine = sys_days{ymd(2025, 3, 3)} + hours{1};  // 09:00 in UTC+8
  CHECK(parse_instant("2025-03-03T09:00:00+08:00") == nine);
  CHECK(parse_instant("2025-03-03 09:00+08:00") == nine);
  CHECK(parse_instant("2025-03-03T01:00:00Z") == nine);
  CHECK(parse_instant("2025-03-02T20:00:00-05:00") == nine);
  CHECK(parse_instant("2025-03-03T23:30:00+14:00").has_value());
  for (const char* bad : {"2025-03-03", "2025-03-03T09:00:00", "2025-02-30T09:00:00+08:00", "2025-03-03T25:61:00+08:00",
                          "2025-03-03T09:00:60+08:00", "2025-03-03T09:00:00+14:30", "2025-03-03T09:00:00+99:00",
                          "2025-03-03T-1:00:00+08:00", "2025-03-03T09:00:00+08:00x", "20250303T090000+0800"}) {
    CHECK_MESSAGE(!parse_instant(bad).has_value(), bad);
  }
}

TEST_CASE("parse_date, parse_local_time and format_date: the one way dates are read and written") {
  // Definitions (holidays), scenarios (start, traces) and the CLI read
  // dates through these: a scenario once took "2025-3-3" (sscanf) while
  // its schema and the definitions refused it.
  using onestop::format_date;
  using onestop::parse_date;
  using onestop::parse_local_time;
  CHECK(parse_date("2024-02-29") == ymd(2024, 2, 29));
  CHECK(parse_date("0001-01-01") == ymd(1, 1, 1));
  for (const char* bad : {"2025-3-3", " 2025-03-03", "2025-03-03 ", "2023-02-29", "2025-13-01", "2025-00-10", "+202-03-03",
                          "2025/03/03", "20250303", "2025-03-03T09:00", "", "-025-03-03"}) {
    CHECK_MESSAGE(!parse_date(bad).has_value(), bad);
  }
  const local_seconds nine{local_days{ymd(2025, 3, 3)} + hours{9}};
  CHECK(parse_local_time("2025-03-03T09:00") == nine);
  CHECK(parse_local_time("2025-03-03 09:00:00") == nine);
  CHECK(parse_local_time("2025-03-03T09:00:07") == nine + seconds{7});
  CHECK_FALSE(parse_local_time("2025-03-03").has_value());
  CHECK(parse_local_time("2025-03-03", true) == local_seconds{local_days{ymd(2025, 3, 3)}});
  for (const char* bad : {"2025-03-03T9:00", "2025-03-03T09:00Z", "2025-03-03T09:00+08:00", "2025-03-03T24:00",
                          "2025-03-03T09:60", "2025-03-03T09:00:60", "2025-03-03T09:00:0", "2025-03-03TT09:00",
                          "2025-02-30T09:00", "2025-03-03T-9:00", "2025-03-03T09:-0", "-025-03-03T09:00"}) {
    CHECK_MESSAGE(!parse_local_time(bad, true).has_value(), bad);
  }
  CHECK(format_date(ymd(2025, 3, 3)) == "2025-03-03");
  CHECK(format_date(ymd(987, 12, 31)) == "0987-12-31");
  for (const auto d : {ymd(1970, 1, 1), ymd(2024, 2, 29), ymd(9999, 12, 31)}) CHECK(parse_date(format_date(d)) == d);
}

TEST_CASE("validation: a calendar resting every weekday is an error without make-up days, else a warning") {
  // Its own rest days or inherited ones; the diagnostic is at the
  // calendar's own line. (The library still builds such a calendar: see
  // "the built-in default and unusual calendars".)
  const auto loaded = onestop::load_catalog(std::vector<onestop::Source>{
      {"never.yaml",
       "calendar:\n  id: never\n  rest_days: [monday, tuesday, wednesday, thursday, friday, saturday, sunday]\n"},
      {"child.yaml", "calendar:\n  id: child\n  extends: never\n"},
      {"sparse.yaml", "calendar:\n  id: sparse\n  extends: never\n  workdays: [2024-06-03, 2024-06-10]\n"},
      // The same make-up day again: still two; both cancelled by holidays: none.
      {"twice.yaml", "calendar:\n  id: twice\n  extends: sparse\n  workdays: [2024-06-03]\n"},
      {"void.yaml", "calendar:\n  id: void\n  extends: sparse\n  holidays: [2024-06-03, 2024-06-10]\n"}});
  std::vector<std::string> errors, warnings;
  for (const auto& d : loaded.diagnostics) {
    (d.severity == onestop::Severity::error ? errors : warnings).push_back(d.to_string());
  }
  REQUIRE(errors.size() == 3);  // in file order
  CHECK(errors[0].find("child.yaml:2") != std::string::npos);
  CHECK(errors[0].find("calendar 'child' inherits from 'never' a rest on every day of the week") != std::string::npos);
  CHECK(errors[1].find("never.yaml:2") != std::string::npos);
  CHECK(errors[1].find("calendar 'never' rests on every day of the week and lists no make-up working day") !=
        std::string::npos);
  CHECK(errors[2].find("void.yaml:2") != std::string::npos);
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].find("sparse.yaml:2") != std::string::npos);
  CHECK(warnings[0].find("only its 2 listed make-up days are working days") != std::string::npos);
  CHECK(warnings[1].find("twice.yaml:2") != std::string::npos);
  CHECK(warnings[1].find("only its 2 listed make-up days are working days") != std::string::npos);
}

TEST_CASE("warning instants stay right when calendars alternate, are rebuilt or are dropped") {
  // before() remembers recent answers per thread: the same question to a
  // different calendar, or to a new calendar where an old one was, must not
  // get the old answer.
  Calendar a;
  a.id = "a";
  Calendar b = a;
  b.id = "b";
  b.holidays = {sys_days{ymd(2024, 3, 4)}};
  const std::vector<Calendar> list{a, b};
  const auto due_at = [](const WorkingCalendar& c) { return at(c, 2024, 3, 6, 17, 30); };
  for (int round = 0; round < 3; ++round) {
    const auto ca = WorkingCalendar::resolve(list, "a");
    const auto cb = WorkingCalendar::resolve(list, "b");
    for (int i = 0; i < 3; ++i) {
      CHECK(show(ca, ca.before(due_at(ca), 2.0, TimeUnit::working_days)) == "2024-03-04T17:30:00+08:00");
      CHECK(show(cb, cb.before(due_at(cb), 2.0, TimeUnit::working_days)) == "2024-03-01T17:30:00+08:00");
    }
    // A calendar built afresh each time (often where the last one was).
    for (int i = 0; i < 3; ++i) {
      const auto fresh = WorkingCalendar::resolve(list, i % 2 == 0 ? "b" : "a");
      CHECK(show(fresh, fresh.before(due_at(fresh), 2.0, TimeUnit::working_days)) ==
            (i % 2 == 0 ? "2024-03-01T17:30:00+08:00" : "2024-03-04T17:30:00+08:00"));
    }
  }
  // The same clock, asked on many other dues in between (evicting the memo), still agrees.
  const auto ca = WorkingCalendar::resolve(list, "a");
  const sys_seconds first = ca.before(due_at(ca), 1.5, TimeUnit::working_days);
  for (int k = 0; k < 50000; ++k) (void)ca.before(due_at(ca) + days{k % 700}, 1.5 + (k % 7), TimeUnit::working_days);
  CHECK(ca.before(due_at(ca), 1.5, TimeUnit::working_days) == first);
}

TEST_CASE("resolve errors") {
  try {
    (void)WorkingCalendar::resolve(*shipped_catalog(), "atlantis");
    FAIL("resolving an unknown calendar must throw");
  } catch (const onestop::Error& e) {
    CHECK(e.code() == ErrorCode::not_found);
    CHECK(std::string(e.what()).find("atlantis") != std::string::npos);
  }
  Calendar orphan;
  orphan.id = "orphan";
  orphan.extends = "nowhere";
  try {
    (void)WorkingCalendar::resolve(std::vector<Calendar>{orphan}, "orphan");
    FAIL("a missing parent must throw");
  } catch (const onestop::Error& e) {
    CHECK(e.code() == ErrorCode::not_found);
    CHECK(std::string(e.what()).find("nowhere") != std::string::npos);
  }
  Calendar a;
  a.id = "a";
  a.extends = "b";
  Calendar b;
  b.id = "b";
  b.extends = "a";
  try {
    (void)WorkingCalendar::resolve(std::vector<Calendar>{a, b}, "a");
    FAIL("a cycle must throw");
  } catch (const onestop::Error& e) {
    CHECK(e.code() == ErrorCode::invalid_input);
  }
  onestop::Catalog empty;
  CHECK_THROWS_AS((void)WorkingCalendar::resolve(empty, ""), onestop::Error);
  CHECK_THROWS_AS(WorkingCalendar{a}, onestop::Error);
  Calendar clash;
  clash.id = "clash";
  clash.holidays = {sys_days{ymd(2024, 1, 1)}};
  clash.workdays = {sys_days{ymd(2024, 1, 1)}};
  CHECK_THROWS_AS(WorkingCalendar{clash}, onestop::Error);
  CHECK_THROWS_AS((void)cn().due(at(cn(), 2024, 1, 1), wd(-1)), onestop::Error);
}

TEST_CASE("the built-in default and unusual calendars") {
  const WorkingCalendar d;
  CHECK(d.utc_offset() == minutes{480});
  CHECK(d.working_day_length() == hours{7});
  CHECK_FALSE(d.listed_dates().has_value());
  CHECK(d.is_working_day(ymd(2024, 2, 12)));  // no holidays known
  CHECK_FALSE(d.is_working_day(ymd(2024, 2, 4)));
  CHECK(show(d, d.due(at(d, 2024, 2, 8, 10), wd(3))) == "2024-02-13T17:30:00+08:00");

  // Empty working hours mean the whole day; a negative offset.
  Calendar whole;
  whole.id = "whole";
  whole.utc_offset_minutes = -5 * 60;
  whole.working_hours = std::vector<onestop::WorkingPeriod>{};
  const WorkingCalendar w{whole};
  CHECK(w.working_day_length() == hours{24});
  CHECK(show(w, w.due(at(w, 2024, 3, 4, 10), wd(1))) == "2024-03-06T00:00:00-05:00");
  CHECK(show(w, w.due(at(w, 2024, 3, 8, 10), wh(20))) == "2024-03-11T06:00:00-05:00");

  // Every weekday rest, only listed working days: nothing to land on after them.
  Calendar sparse;
  sparse.id = "sparse";
  sparse.rest_weekdays = std::vector<int>{0, 1, 2, 3, 4, 5, 6};
  sparse.workdays = {sys_days{ymd(2024, 6, 3)}, sys_days{ymd(2024, 6, 10)}};
  const WorkingCalendar s{sparse};
  CHECK(show(s, s.due(at(s, 2024, 6, 1), wd(2))) == "2024-06-10T17:30:00+08:00");
  CHECK(show(year_month_day{s.add_working_days(ymd(2024, 6, 10), -1)}) == "2024-06-03");
  CHECK_THROWS_AS((void)s.due(at(s, 2024, 6, 1), wd(3)), onestop::Error);
}

TEST_CASE("add_working_days agrees with walking day by day") {
  const WorkingCalendar& c = cn();
  CHECK(show(c.add_working_days(ymd(2024, 2, 8), 2)) == "2024-02-18");
  CHECK(show(c.add_working_days(ymd(2024, 2, 10), 0)) == "2024-02-18");
  CHECK(show(c.add_working_days(ymd(2024, 2, 9), 0)) == "2024-02-09");
  CHECK(show(c.add_working_days(ymd(2024, 2, 18), -1)) == "2024-02-09");
  CHECK(show(c.add_working_days(ymd(2024, 2, 10), -1)) == "2024-02-09");
  std::mt19937 rng(20240210);
  std::uniform_int_distribution<int> day(0, 365 * 9);
  std::uniform_int_distribution<int> amount(0, 80);
  for (int i = 0; i < 2000; ++i) {
    const year_month_day start{sys_days{ymd(2019, 1, 1)} + days{day(rng)}};
    const int n = amount(rng);
    CAPTURE(show(start));
    CAPTURE(n);
    if (n > 0) CHECK(c.add_working_days(start, n) == walk_working_days(c, start, n));
    const year_month_day back = c.add_working_days(start, -std::max(n, 1));
    CHECK(c.is_working_day(back));
    CHECK(c.count_working_days(back, year_month_day{sys_days{start} - days{1}}) == std::max(n, 1));
  }
}

TEST_CASE("properties over random starts and limits (2019-2028, inside and outside the data)") {
  const WorkingCalendar& c = cn();
  std::mt19937 rng(7211);
  const sys_seconds first = at(c, 2019, 1, 1);
  const sys_seconds last = at(c, 2028, 12, 31);
  std::uniform_int_distribution<std::int64_t> instant(0, (last - first).count());
  std::uniform_int_distribution<int> amount(1, 60);
  std::uniform_int_distribution<int> hours_amount(0, 200);
  const std::int64_t day_length = c.working_day_length().count();
  for (int i = 0; i < 5000; ++i) {
    const sys_seconds start = first + seconds{instant(rng)};
    const int n = amount(rng);
    CAPTURE(show(c, start));
    CAPTURE(n);

    // Working days: lands on a working day at its close; the N-th working
    // day after the start date; elapsed is exactly N for every start.
    const sys_seconds due = c.due(start, wd(n));
    const year_month_day due_date = c.local_date(due);
    CHECK(c.is_working_day(due_date));
    CHECK(due == c.close_of_business(due_date));
    CHECK(due_date == walk_working_days(c, c.local_date(start), n));
    CHECK(c.elapsed(start, due, TimeUnit::working_days) == static_cast<double>(n));
    // Working time from the start is N days plus what was left of the start
    // day (a full day when the start is at opening, nothing after close).
    const seconds left_on_start_day =
        c.working_time(start, c.close_of_business(c.local_date(start)));
    CHECK(c.working_time(start, due).count() == n * day_length + std::max<std::int64_t>(0, left_on_start_day.count()));
    const sys_seconds opening = c.to_utc(local_days{c.local_date(start)} + hours{9});
    if (c.is_working_day(c.local_date(start))) {
      CHECK(c.elapsed(opening, c.due(opening, wd(n)), TimeUnit::working_days) == static_cast<double>(n));
      CHECK(c.working_time(opening, c.due(opening, wd(n))).count() == (n + 1) * day_length);
    }

    // Working hours: exactly N hours of working time; ends inside or at the end of a period.
    const int h = hours_amount(rng);
    const sys_seconds due_h = c.due(start, wh(h));
    CHECK(c.working_time(start, due_h) == hours{h});
    CHECK(c.elapsed(start, due_h, TimeUnit::working_hours) == static_cast<double>(h));
    if (h > 0) CHECK(c.is_working_time(due_h - seconds{1}));

    // Natural days and hours.
    CHECK(c.elapsed(start, c.due(start, nd(n)), TimeUnit::natural_days) == static_cast<double>(n));
    CHECK(c.elapsed(start, c.due(start, nh(h)), TimeUnit::natural_hours) == static_cast<double>(h));

    // Working time against the day-by-day reference, over up to 40 days.
    const sys_seconds to = start + seconds{instant(rng) % (40 * 86'400)};
    CHECK(c.working_time(start, to) == reference_working_time(c, start, to));

    // Used and remaining agree: elapsed == max(0, N - remaining) at any instant.
    for (TimeUnit unit : {TimeUnit::working_days, TimeUnit::working_hours, TimeUnit::natural_days,
                          TimeUnit::natural_hours}) {
      const sys_seconds d = c.due(start, {n, unit});
      CHECK(c.elapsed(start, to, unit) ==
            doctest::Approx(std::max(0.0, n - c.remaining(to, d, unit))).epsilon(1e-12));
    }

    // A suspension adds exactly its working time, whatever the unit.
    for (TimeUnit unit : {TimeUnit::working_days, TimeUnit::working_hours, TimeUnit::natural_days}) {
      const sys_seconds d0 = c.due(start, {n, unit});
      const std::int64_t span = std::max<std::int64_t>(1, (d0 - start).count());
      const sys_seconds p = start + seconds{instant(rng) % span};
      const sys_seconds r = p + seconds{instant(rng) % (10 * 86'400)};
      const sys_seconds d1 = c.extend(d0, p, r, unit);
      CHECK(d1 >= d0);
      if (unit == TimeUnit::natural_days) {
        CHECK(d1 - d0 == r - p);
      } else {
        CHECK(c.working_time(d0, d1) == c.working_time(p, r));
      }
      CHECK(c.remaining(r, d1, unit) == doctest::Approx(c.remaining(p, d0, unit)));
      auto clock = c.start_clock(start, {n, unit});
      c.pause(clock, p);
      c.resume(clock, r);
      CHECK(clock.due == d1);
      CHECK(c.used_share(clock, d1) == doctest::Approx(1.0));
    }

    // Warning instants: at most the amount remains there, more a second earlier.
    const double lead = std::uniform_real_distribution<double>(0.0, n)(rng);
    const sys_seconds w = c.before(due, lead, TimeUnit::working_days);
    CHECK(c.remaining(w, due, TimeUnit::working_days) <= lead + 1e-9);
    CHECK(c.remaining(w - seconds{1}, due, TimeUnit::working_days) > lead - 1e-9);
  }
}

}  // TEST_SUITE
