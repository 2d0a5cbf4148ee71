#pragma once

// Memory stores that see each state as the bytes a persistent store keeps
// (CatalogBinding::encode), for tests of the snapshot codec and of what
// stores may do with a commit.

#include <onestop/onestop.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <string>

namespace onestop::test_support {

// A memory store behind a wrapper that keeps the binding the engine hands it.
class CodecStore : public StoreWrapper {
 public:
  CodecStore() : StoreWrapper(open_memory_store()) {}
  void bind(std::shared_ptr<const CatalogBinding> b) override {
    binding_ = b;
    StoreWrapper::bind(std::move(b));
  }

 protected:
  const CatalogBinding& binding() const {
    REQUIRE(binding_);
    return *binding_;
  }

 private:
  std::shared_ptr<const CatalogBinding> binding_;
};

// Keeps every state only as its bytes: the inner store gets the state
// decoded from them, and the commit's own state is dropped on the way. A
// field the codec loses makes verify() (replay == stored) fail; a view of
// the dropped state would read freed memory.
class RoundTripStore final : public CodecStore {
 public:
  void commit(Commit c) override {
    const std::string bytes = binding().encode(*c.snapshot);
    c.snapshot = binding().decode(bytes);
    REQUIRE(binding().encode(*c.snapshot) == bytes);
    ++commits;
    CodecStore::commit(std::move(c));
  }
  std::size_t commits = 0;
};

}  // namespace onestop::test_support
