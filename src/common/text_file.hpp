#pragma once

// Reading a whole input file (definitions, scenarios, flow-test scripts)
// with a size limit that holds for any file: a pipe or a device such as
// /dev/zero is read only up to the limit, not until memory runs out.

#include <cstddef>
#include <filesystem>
#include <string>

namespace onestop {

struct TextFile {
  std::string text;
  std::string error;  // empty when read whole; else what went wrong, for a message
  bool too_large = false;
};

// The file's bytes, or why they are not there: it cannot be opened or read,
// or it holds more than `max_bytes`.
TextFile read_text_file(const std::filesystem::path& path, std::size_t max_bytes);

}  // namespace onestop
