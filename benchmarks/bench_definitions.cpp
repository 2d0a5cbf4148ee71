// How long loading, checking and compiling definitions takes: a generated
// flow of N nodes plus 1,000 items (each with five materials, two of them
// conditional), from YAML text to a checked Catalog.

#include "flowgen.hpp"

#include <onestop/definitions.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

double load_ms(int nodes, int items, int repeats) {
  const auto g = onestop::bench::generate_definitions(nodes, items);
  const std::vector<onestop::Source> sources{
      {"organisation.yaml", g.organisation}, {"items.yaml", g.items}, {"flow.yaml", g.flow}};
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto result = onestop::load_catalog(sources);
    const auto t1 = std::chrono::steady_clock::now();
    if (!result.ok()) {
      for (const auto& d : result.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
      std::exit(1);
    }
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}

}  // namespace

int main() {
  std::printf("figure: load_2000_nodes_ms %.1f ms\n", load_ms(2000, 1000, 5));
  for (int nodes : {1000, 5000, 10000, 20000, 50000, 100000}) {
    std::printf("figure: load_%d_nodes_ms %.1f ms\n", nodes, load_ms(nodes, 1000, nodes >= 50000 ? 2 : 3));
  }
  return 0;
}
