// Parsing instants written with their offset (flow-test scripts, the CLI).

#include <onestop/clock.hpp>

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

std::optional<Instant> parse_instant(std::string_view s) {
  // YYYY-MM-DDTHH:MM[:SS](Z|+HH:MM|-HH:MM)
  if (s.size() < 17 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':') {
    return std::nullopt;
  }
  const auto y = digits(s.substr(0, 4)), mo = digits(s.substr(5, 2)), d = digits(s.substr(8, 2)),
             h = digits(s.substr(11, 2)), mi = digits(s.substr(14, 2));
  if (!y || !mo || !d || !h || !mi || *h > 23 || *mi > 59) return std::nullopt;
  std::size_t at = 16;
  int sec = 0;
  if (at < s.size() && s[at] == ':') {
    const auto ss = s.size() >= at + 3 ? digits(s.substr(at + 1, 2)) : std::nullopt;
    if (!ss || *ss > 59) return std::nullopt;
    sec = *ss;
    at += 3;
  }
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
  const std::chrono::year_month_day date{std::chrono::year{*y}, std::chrono::month{static_cast<unsigned>(*mo)},
                                         std::chrono::day{static_cast<unsigned>(*d)}};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days{date} + std::chrono::hours{*h} + std::chrono::minutes{*mi - offset} +
         std::chrono::seconds{sec};
}

}  // namespace onestop
