// Feeds arbitrary bytes to the flow-test runner as a script on the
// residence-permit example: steps (submit, act, advance, tick) and
// expectations run through a fresh engine each. Test teams write these
// scripts; a malformed one must end up in the report's errors, a wrong
// step as a failure, never a crash, hang or leak.
//
// A failure marked internal aborts (a bug). Only scripts whose definitions
// are the example's ("definitions: [..]"; without any the script is
// malformed) run: another path would load whatever files it names.
//
//   cmake --preset fuzz && cmake --build --preset fuzz
//   build/fuzz/fuzz/onestop-fuzz-flowtest -max_total_time=600 fuzz/corpus/flowtest

#include <onestop/flowtest.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A double-quoted key may spell "definitions" with escapes ("\x64efinitions").
  if (text.find('\\') != std::string::npos) return 0;
  for (std::size_t at = text.find("definitions"); at != std::string::npos; at = text.find("definitions", at + 1)) {
    if (std::string_view(text).substr(at, 18) != "definitions: [..]\n") return 0;
  }
  const std::filesystem::path base = std::filesystem::path(ONESTOP_SOURCE_DIR) / "examples" / "residence-permit" / "tests";
  const auto report = onestop::run_flow_tests(onestop::Source{"fuzz.yaml", text}, base);
  // A failure is the script's; an internal one is a bug (an exception other
  // than onestop::Error inside the engine or the runner).
  for (const auto& result : report.results) {
    for (const auto& failure : result.failures) {
      if (failure.internal) {
        std::fprintf(stderr, "%s\n", failure.to_string().c_str());
        std::abort();
      }
    }
  }
  return 0;
}
