#pragma once

// Electronic supervision (电子监察): on-time rates, overdue cases, handling
// times in working days, warnings and evaluations, per item, per
// department and per period.

#include <onestop/clock.hpp>

#include <cstddef>
#include <map>
#include <optional>
#include <string>

namespace onestop {

// Which cases to count: submitted in [from, to), for an item or theme, for
// an implementing department; empty fields mean all.
struct StatsQuery {
  std::optional<Instant> from;
  std::optional<Instant> to;
  std::string target;
  std::string department;
};

// Figures for one group of cases.
struct StatsFigures {
  std::size_t cases = 0;
  std::size_t finished = 0;
  std::size_t open = 0;
  std::size_t finished_on_time = 0;   // finished by the (suspension-adjusted) promised limit
  std::size_t finished_overdue = 0;
  std::size_t open_overdue = 0;       // still open past the promised limit
  double on_time_rate = 0;            // finished_on_time / finished (1 when none finished)
  double mean_days = 0;               // handling time in working days, suspensions excluded
  double p50_days = 0;
  double p90_days = 0;
  double p99_days = 0;                // percentiles by nearest rank
  double max_days = 0;
  std::size_t yellow_warnings = 0;
  std::size_t red_warnings = 0;
  std::size_t evaluations = 0;
  double mean_rating = 0;             // 1 very satisfied .. 5 very dissatisfied
  double satisfaction_rate = 0;       // share of ratings 1-3
  std::size_t poor_ratings = 0;
  std::size_t follow_ups_open = 0;
  std::size_t follow_ups_overdue = 0;
};

// The figures overall and broken down.
struct SupervisionStats {
  StatsFigures total;
  std::map<std::string, StatsFigures> by_target;      // item code or theme id
  std::map<std::string, StatsFigures> by_department;  // implementing (or lead) department
  std::map<std::string, StatsFigures> by_month;       // "YYYY-MM" of submission (UTC+8)
};

// A share (0..1) as a percentage with `decimals` decimals and " %", for
// reports: rounded, except that it never reads 100 while something is
// missing nor 0 while something is there (0.99996 is "99.9 %", not "100.0 %").
std::string percent_text(double share, int decimals = 1);

}  // namespace onestop
