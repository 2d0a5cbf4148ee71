#pragma once

// Portable random numbers for the simulator: std::mt19937_64 is specified
// bit for bit by the standard, its distributions are not, so every sample is
// computed here from uniform doubles with fixed formulas.

#include <onestop/simulation.hpp>

#include <cmath>
#include <cstdint>
#include <random>

namespace onestop::sim {

// splitmix64: spreads a seed and a stream number over the generator's state.
inline std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

class Rng {
 public:
  Rng() = default;
  Rng(std::uint64_t seed, std::uint64_t stream) : g_(mix(seed ^ mix(stream + 0x51ED270B27A9C3F1ULL))) {}

  // Uniform in [0, 1), 53 random bits.
  double uniform() noexcept { return static_cast<double>(g_() >> 11) * 0x1.0p-53; }
  // Uniform in (0, 1]: safe for log().
  double open_uniform() noexcept { return 1.0 - uniform(); }
  // An integer in [0, n).
  std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : static_cast<std::uint64_t>(uniform() * static_cast<double>(n)) % n; }
  bool chance(double p) noexcept { return p > 0 && uniform() < p; }
  double exponential(double mean) noexcept { return -mean * std::log(open_uniform()); }
  // Standard normal by Box-Muller (one value per two uniforms: no hidden state).
  double normal() noexcept {
    const double u1 = open_uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Index drawn with the given non-negative weights (all zero: uniform).
  template <typename Weights>
  std::size_t pick(const Weights& w) noexcept {
    double total = 0;
    for (double x : w) total += x;
    if (w.empty()) return 0;
    if (total <= 0) return static_cast<std::size_t>(below(w.size()));
    double u = uniform() * total;
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (u < w[i]) return i;
      u -= w[i];
    }
    return w.size() - 1;
  }

  double sample(const Distribution& d) noexcept {
    switch (d.kind) {
      case Distribution::Kind::fixed: return d.a;
      case Distribution::Kind::uniform: return d.a + (d.b - d.a) * uniform();
      case Distribution::Kind::triangular: {
        const double lo = d.a, mode = d.b, hi = d.c;
        if (hi <= lo) return lo;
        const double u = uniform();
        const double f = (mode - lo) / (hi - lo);
        return u < f ? lo + std::sqrt(u * (hi - lo) * (mode - lo)) : hi - std::sqrt((1 - u) * (hi - lo) * (hi - mode));
      }
      case Distribution::Kind::exponential: return exponential(d.a);
      case Distribution::Kind::lognormal: {
        if (d.a <= 0) return 0;
        const double ratio = d.b / d.a;  // not b*b / (a*a): those overflow where the ratio does not
        const double s2 = std::log1p(ratio * ratio);
        const double mu = std::log(d.a) - s2 / 2;
        return std::exp(mu + std::sqrt(s2) * normal());
      }
      case Distribution::Kind::empirical:
        if (d.values.empty()) return 0;
        if (d.weights.empty()) return d.values[static_cast<std::size_t>(below(d.values.size()))];
        return d.values[pick(d.weights)];
    }
    return 0;
  }

 private:
  std::mt19937_64 g_;
};

}  // namespace onestop::sim
