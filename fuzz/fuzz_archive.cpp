// Feeds arbitrary bytes to import_cases, as an archive from another machine
// (JSON Lines: a header, then a case per line). Archives travel between
// stores and departments: a broken or hostile one must be refused with
// onestop::Error or reported per case, never crash, hang or leak.
//
// An input whose first byte is odd is "rechained" before import: every
// event that reads is given the hashes of a sound chain, so that mutations
// get past the hash check to the replay of submissions and actions (a
// fuzzer cannot forge SHA-256). The rest of the input is the archive.
//
//   cmake --preset fuzz && cmake --build --preset fuzz
//   build/fuzz/fuzz/onestop-fuzz-archive -max_total_time=600 fuzz/corpus/archive

#include <onestop/archive.hpp>
#include <onestop/definitions.hpp>
#include <onestop/engine.hpp>
#include <onestop/error.hpp>
#include <onestop/store.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>

namespace {

std::shared_ptr<const onestop::Catalog> catalog() {
  static const std::shared_ptr<const onestop::Catalog> c = [] {
    const std::filesystem::path root(ONESTOP_SOURCE_DIR);
    // The residence-permit example, as its scenario runs it (the seeds are
    // cases simulated on it): calendar cn.
    auto loaded = onestop::load_catalog(
        std::vector<std::filesystem::path>{root / "examples" / "residence-permit", root / "calendars"});
    if (!loaded.ok()) std::abort();
    auto copy = std::make_shared<onestop::Catalog>(*loaded.catalog);
    if (copy->default_calendar.empty()) copy->default_calendar = "cn";
    return std::shared_ptr<const onestop::Catalog>(std::move(copy));
  }();
  return c;
}

// Each case line's events with a sound hash chain; lines that do not read
// stay as they are.
std::string rechain(std::string_view text) {
  std::string out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("events") && j["events"].is_array() && j.contains("case") &&
        j["case"].is_number_unsigned()) {
      onestop::Hash prev{};
      bool sound = true;
      for (auto& e : j["events"]) {
        try {
          onestop::Event event = onestop::event_from_json(e.dump(), j["case"].get<onestop::CaseId>());
          event.prev_hash = prev;
          event.hash = onestop::hash_event(event, prev);
          prev = event.hash;
          e = nlohmann::json::parse(onestop::event_to_json(event));
        } catch (const onestop::Error&) {
          sound = false;
          break;
        }
      }
      if (sound) line = j.dump();
    }
    out += line;
    out += '\n';
    start = end + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::istringstream in((data[0] & 1) ? rechain(text) : std::string(text));
  onestop::EngineOptions options;
  auto store = onestop::open_memory_store();
  options.store = store;
  options.clock = std::make_shared<onestop::ManualClock>(onestop::Instant{std::chrono::seconds{1'772'413'200}});
  auto engine = onestop::open_engine(catalog(), options);
  try {
    (void)onestop::import_cases(*engine, in);
  } catch (const onestop::Error&) {
    return 0;
  }
  // What was imported was checked and replayed: it must verify.
  for (const onestop::CaseId id : store->case_ids()) {
    const auto check = engine->verify(id);
    if (!check.ok) {
      std::fprintf(stderr, "imported case %llu does not verify: %s\n", static_cast<unsigned long long>(id),
                   check.message.c_str());
      std::abort();
    }
  }
  return 0;
}
