#pragma once

// `onestop simulate SCENARIO.yaml [DEFINITIONS...]`: runs a scenario through
// the engine on virtual time and reports KPIs (text, JSON, CSV, HTML);
// `--compare OTHER.yaml` runs a second scenario and shows both side by side.

namespace CLI {
class App;
}

// Adds the `simulate` subcommand. It runs from its own callback and reports
// failure with exit code 1 (bad scenario or definitions) or 2 (anything else).
void add_simulate_command(CLI::App& app);
