#pragma once

// `onestop calendar days|due`: working days of a calendar and due instants
// of time limits, for checking calendar data and limits by hand.

namespace CLI {
class App;
}

// Adds the `calendar` subcommand (with `days` and `due`) to the CLI. The
// commands run from their own callbacks and report failure with exit code 1.
void add_calendar_commands(CLI::App& app);
