#pragma once

// Percentiles of a sorted sample by the nearest-rank method: the smallest
// value with at least p of the sample at or below it (p50 of {1, 2} is 1;
// p90 of ten values is the ninth). Shared by the supervision figures and
// the simulator's reports.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace onestop {

inline double nearest_rank(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<std::size_t>(rank, 1)) - 1];
}

}  // namespace onestop
