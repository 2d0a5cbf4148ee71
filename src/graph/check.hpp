#pragma once

#include <onestop/error.hpp>
#include <onestop/model.hpp>

#include <vector>

namespace onestop::check {

// Reference checks across the catalog and, when `graphs`, the soundness
// checks of every flow (Boost.Graph). Appends to `diagnostics`.
void run(const Catalog& catalog, bool graphs, std::vector<Diagnostic>& diagnostics);

// For a flow the checks passed: the immediate post-dominator of every node
// (SIZE_MAX where there is none; the virtual end is SIZE_MAX too), with
// declared loop edges left out. The runtime uses it to match splits to joins.
std::vector<std::size_t> post_dominators(const Flow& flow);

}  // namespace onestop::check
