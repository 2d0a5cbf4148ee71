// Feeds arbitrary bytes to the definitions loader (YAML parsing, model
// building, every check). It must never crash, hang or leak.

#include <onestop/definitions.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Keep the organisation declared so that flows reach the graph checks.
  static const std::string organisation =
      "departments: [{ id: hall, name: Hall }, { id: fire, name: Fire }]\n"
      "roles: [{ id: reviewer, name: Reviewer }]\n";
  onestop::LoadOptions options;
  options.max_nodes = 200'000;
  options.max_depth = 100;
  const auto result = onestop::load_catalog(
      std::vector<onestop::Source>{{"org.yaml", organisation},
                                   {"fuzz.yaml", std::string(reinterpret_cast<const char*>(data), size)}},
      options);
  for (const auto& flow : result.catalog->flows) {
    (void)onestop::render_dot(flow, *result.catalog);
  }
  return 0;
}
