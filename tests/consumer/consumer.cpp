// A host program: loads definitions and prints how many flows it found.
#include <onestop/onestop.hpp>

#include <iostream>

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> paths(argv + 1, argv + argc);
  auto result = onestop::load_catalog(paths);
  for (const auto& d : result.diagnostics) std::cerr << d.to_string() << '\n';
  std::cout << "onestop " << onestop::version << ": " << result.catalog->flows.size()
            << " flows\n";
  return result.ok() && !result.catalog->flows.empty() ? 0 : 1;
}
