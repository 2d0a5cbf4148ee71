#pragma once

// What the store tests (and their child process) share: the compact
// investment theme of tests/data/store/investment.yaml, its applicant, and a
// certificate library that has everything.

#include <onestop/onestop.hpp>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace onestop::test_support {

inline const std::string company = "91110000600037341L";

inline Instant monday_morning() { return std::chrono::sys_days{std::chrono::year{2026} / 3 / 2} + std::chrono::hours{1}; }

// A certificate library that has every material.
struct Everything final : CertificateProvider {
  std::optional<OfferedMaterial> fetch(const Applicant&, const Material& m) override {
    return OfferedMaterial{m.id, m.id + ".ofd", 1, MaterialForm::electronic};
  }
};

// An engine on the definitions in `definitions` over `store`, with `clock`
// and the library that has everything. Throws when the definitions do not load.
inline std::unique_ptr<Engine> engine_on(const std::filesystem::path& definitions, std::shared_ptr<Store> store,
                                         std::shared_ptr<Clock> clock) {
  auto loaded = load_catalog({definitions});
  if (!loaded.ok()) throw std::runtime_error("the definitions in " + definitions.string() + " have errors");
  EngineOptions o;
  o.store = std::move(store);
  o.clock = std::move(clock);
  o.certificates = std::make_shared<Everything>();
  return open_engine(loaded.catalog, o);
}

}  // namespace onestop::test_support
