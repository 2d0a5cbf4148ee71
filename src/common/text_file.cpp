#include "common/text_file.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <fstream>
#include <system_error>

namespace onestop {

TextFile read_text_file(const std::filesystem::path& path, std::size_t max_bytes) {
  TextFile out;
  // A regular file says its size: too large ones are not read at all.
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec && size > max_bytes) {
      out.too_large = true;
      out.error = fmt::format("file is {} bytes; the limit is {} bytes", size, max_bytes);
      return out;
    }
  }
  if (std::filesystem::is_directory(path, ec)) {  // an ifstream opens one, and then fails to read
    out.error = "it is a directory";
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (!std::filesystem::exists(path, ec)) {
      out.error = "no such file";
    } else {
      out.error = err != 0 ? std::generic_category().message(err) : std::string("cannot open it");
    }
    return out;
  }
  char chunk[1 << 16];
  while (in) {
    in.read(chunk, sizeof chunk);
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got > max_bytes - out.text.size()) {
      out.too_large = true;
      out.error = fmt::format("file holds more than {} bytes, the limit", max_bytes);
      out.text.clear();
      return out;
    }
    out.text.append(chunk, got);
  }
  if (in.bad()) {
    out.error = "cannot read the file";
    out.text.clear();
  }
  return out;
}

}  // namespace onestop
