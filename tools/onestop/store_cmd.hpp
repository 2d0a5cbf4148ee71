#pragma once

// Commands on a store: `onestop export|import|versions|stats --store URI`.

namespace CLI {
class App;
}

// Adds the store subcommands. They run from their own callbacks and report
// failure with exit code 1.
void add_store_commands(CLI::App& app);
