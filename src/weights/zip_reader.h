#pragma once
// Private to src/weights: a reader for the uncompressed zip archives that
// torch.save writes (every entry STORED).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace graft::zip {

/// The entries of a zip archive held in memory. Reads the end-of-central-
/// directory record (zip64 too), the central directory and, per entry, its
/// local header. Only STORED (uncompressed) entries can be read. Every offset
/// and size is checked against the data: a bad archive throws graft::Error
/// naming `name` and what was expected.
class Reader {
 public:
  /// `data` must outlive the reader; `name` (usually the path) is used in errors.
  Reader(std::string_view data, std::string name);

  /// Entry names in central-directory order.
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& entry) const { return entries_.count(entry) != 0; }
  /// The bytes of an entry (a view into `data`), after checking its local
  /// header, that it is stored uncompressed and its CRC-32. Throws
  /// graft::Error if the entry is missing or damaged.
  std::string_view read(const std::string& entry) const;

 private:
  struct Entry {
    uint64_t local_offset = 0;
    uint64_t size = 0;
    uint64_t compressed_size = 0;
    uint32_t crc = 0;
    uint16_t method = 0;
    uint16_t flags = 0;
  };
  std::string_view data_;
  std::string name_;
  std::vector<std::string> names_;
  std::map<std::string, Entry> entries_;
};

}  // namespace graft::zip
