// IDX files (the MNIST format): a big-endian header of magic and dimensions,
// then unsigned bytes. Read through zlib, which also reads uncompressed files.

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <zlib.h>

#include "graft/core/error.h"
#include "graft/data/image_set.h"

namespace graft {
namespace {

/// The whole (decompressed) content of `path`.
std::vector<uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  GRAFT_CHECK(f != nullptr, "cannot open IDX file '", path, "': ",
              errno ? std::strerror(errno) : "out of memory");
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  for (;;) {
    int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      throw Error(str_cat("cannot read IDX file '", path, "': corrupt gzip data (", msg, ")"));
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  // A truncated gzip stream ends without an error from gzread but leaves one
  // to gzerror.
  int code = 0;
  std::string msg = gzerror(f, &code);
  gzclose(f);
  GRAFT_CHECK(code == Z_OK || code == Z_STREAM_END, "cannot read IDX file '", path,
              "': corrupt or truncated gzip data (", msg, ")");
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

/// Checks the header of an unsigned-byte IDX file with `ndims` dimensions and
/// returns the dimensions; the data length must match their product.
std::vector<int64_t> parse_header(const std::vector<uint8_t>& bytes, int ndims,
                                  const std::string& path) {
  const uint32_t expected_magic = 0x00000800u | uint32_t(ndims);
  const size_t header = 4 + 4 * size_t(ndims);
  GRAFT_CHECK(bytes.size() >= 4, "IDX file '", path, "' is too short for its magic number (",
              bytes.size(), " bytes)");
  uint32_t magic = be32(bytes.data());
  GRAFT_CHECK(magic == expected_magic, "IDX file '", path, "' has magic 0x", std::hex,
              magic, " (expected 0x", expected_magic, std::dec, ": unsigned bytes, ", ndims,
              ndims == 1 ? " dimension)" : " dimensions)");
  GRAFT_CHECK(bytes.size() >= header, "IDX file '", path, "' is too short for its ", ndims,
              " dimensions (", bytes.size(), " bytes, header needs ", header, ")");
  std::vector<int64_t> dims;
  int64_t total = 1;
  for (int i = 0; i < ndims; ++i) {
    int64_t d = be32(bytes.data() + 4 + 4 * i);
    GRAFT_CHECK(d > 0 || (i == 0 && d == 0), "IDX file '", path, "' has dimension ", i,
                " = ", d, " (expected > 0)");
    dims.push_back(d);
    // Checked before multiplying, so the product cannot overflow.
    GRAFT_CHECK(d == 0 || total <= (int64_t(1) << 40) / d, "IDX file '", path,
                "' has implausible dimensions (more than 2^40 bytes of data)");
    total *= d;
  }
  int64_t have = int64_t(bytes.size() - header);
  GRAFT_CHECK(have == total, "IDX file '", path, "' has ", have, " bytes of data (expected ",
              total, " from its dimensions", have < total ? "; the file is truncated)" : ")");
  return dims;
}

}  // namespace

IdxImages read_idx_images(const std::string& path) { return parse_idx_images(read_gz(path), path); }

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  return parse_idx_labels(read_gz(path), path);
}

IdxImages parse_idx_images(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::vector<int64_t> dims = parse_header(bytes, 3, path);
  IdxImages out;
  out.count = dims[0];
  out.rows = dims[1];
  out.cols = dims[2];
  out.pixels.assign(bytes.begin() + 16, bytes.end());
  return out;
}

std::vector<uint8_t> parse_idx_labels(const std::vector<uint8_t>& bytes, const std::string& path) {
  parse_header(bytes, 1, path);
  return std::vector<uint8_t>(bytes.begin() + 8, bytes.end());
}

}  // namespace graft
