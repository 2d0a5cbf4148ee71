// Dates and instants as text: instants written with their offset (flow-test
// scripts, the CLI), local dates and times (definitions, scenarios, the CLI).

#include <onestop/clock.hpp>

#include <fmt/format.h>

#include <charconv>

namespace onestop {

namespace {

std::optional<int> digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

std::optional<std::chrono::year_month_day> parse_date(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  const auto y = digits(s.substr(0, 4)), m = digits(s.substr(5, 2)), d = digits(s.substr(8, 2));
  if (!y || !m || !d) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year{*y}, std::chrono::month{static_cast<unsigned>(*m)},
                                         std::chrono::day{static_cast<unsigned>(*d)}};
  if (!date.ok()) return std::nullopt;
  return date;
}

namespace {

// "YYYY-MM-DD(T| )HH:MM[:SS]" at the start of `s`; `end` is set past it.
std::optional<std::chrono::local_seconds> local_prefix(std::string_view s, std::size_t& end) {
  if (s.size() < 16 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':') return std::nullopt;
  const auto date = parse_date(s.substr(0, 10));
  const auto h = digits(s.substr(11, 2)), mi = digits(s.substr(14, 2));
  if (!date || !h || !mi || *h > 23 || *mi > 59) return std::nullopt;
  end = 16;
  int sec = 0;
  if (end < s.size() && s[end] == ':') {
    const auto ss = s.size() >= end + 3 ? digits(s.substr(end + 1, 2)) : std::nullopt;
    if (!ss || *ss > 59) return std::nullopt;
    sec = *ss;
    end += 3;
  }
  return std::chrono::local_days{*date} + std::chrono::hours{*h} + std::chrono::minutes{*mi} +
         std::chrono::seconds{sec};
}

}  // namespace

std::optional<std::chrono::local_seconds> parse_local_time(std::string_view s, bool date_alone) {
  if (date_alone && s.size() == 10) {
    const auto date = parse_date(s);
    if (!date) return std::nullopt;
    return std::chrono::local_days{*date};
  }
  std::size_t end = 0;
  const auto t = local_prefix(s, end);
  if (!t || end != s.size()) return std::nullopt;
  return t;
}

std::optional<Instant> parse_instant(std::string_view s) {
  // YYYY-MM-DDTHH:MM[:SS](Z|+HH:MM|-HH:MM)
  std::size_t at = 0;
  const auto local = local_prefix(s, at);
  if (!local) return std::nullopt;
  int offset = 0;
  const std::string_view zone = s.substr(at);
  if (zone == "Z") {
    offset = 0;
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    const auto oh = digits(zone.substr(1, 2)), om = digits(zone.substr(4, 2));
    if (!oh || !om || *om > 59 || *oh * 60 + *om > 14 * 60) return std::nullopt;
    offset = (*oh * 60 + *om) * (zone[0] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  return Instant{local->time_since_epoch()} - std::chrono::minutes{offset};
}

std::string format_date(std::chrono::year_month_day date) {
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                     static_cast<unsigned>(date.day()));
}

}  // namespace onestop
