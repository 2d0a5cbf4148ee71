#pragma once

#include <onestop/error.hpp>
#include <onestop/model.hpp>

#include <vector>

namespace onestop::check {

// Reference checks across the catalog and, when `graphs`, the soundness
// checks of every flow (Boost.Graph). Appends to `diagnostics`.
void run(const Catalog& catalog, bool graphs, std::vector<Diagnostic>& diagnostics);

}  // namespace onestop::check
