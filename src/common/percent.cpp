#include <onestop/supervision.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace onestop {

std::string percent_text(double share, int decimals) {
  decimals = std::clamp(decimals, 0, 6);
  const double scale = std::pow(10.0, decimals);
  double units = std::round(share * 100 * scale);  // in 10^-decimals of a percent
  if (share < 1 && units >= 100 * scale) units = 100 * scale - 1;
  if (share > 0 && units <= 0) units = 1;
  return fmt::format("{:.{}f} %", units / scale, decimals);
}

}  // namespace onestop
