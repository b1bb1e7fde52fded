#include "zip_reader.h"

#include <zlib.h>

#include <algorithm>

#include "graft/core/error.h"

namespace graft::zip {

namespace {

constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;

// Little-endian reads that never pass the end of `data`.
class Cursor {
 public:
  Cursor(std::string_view data, const std::string& name) : data_(data), name_(name) {}
  void seek(uint64_t pos, const char* what) {
    GRAFT_CHECK(pos <= data_.size(), "'", name_, "': zip ", what, " at offset ", pos,
                " lies past the end of the file (", data_.size(), " bytes)");
    pos_ = pos;
  }
  uint64_t uint(int bytes, const char* what) {
    need(static_cast<uint64_t>(bytes), what);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += bytes;
    return v;
  }
  std::string_view take(uint64_t n, const char* what) {
    need(n, what);
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  void need(uint64_t n, const char* what) const {
    GRAFT_CHECK(n <= data_.size() - pos_, "'", name_, "' is truncated: the zip ", what, " at offset ",
                pos_, " needs ", n, " bytes, but the file ends ", data_.size() - pos_, " bytes later");
  }
  uint64_t pos() const { return pos_; }

 private:
  std::string_view data_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

uint32_t read_u32_at(std::string_view d, uint64_t pos) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(d[pos + i]);
  return v;
}

}  // namespace

Reader::Reader(std::string_view data, std::string name) : data_(data), name_(std::move(name)) {
  // The end record is 22 bytes plus a comment of at most 65535 bytes.
  GRAFT_CHECK(data_.size() >= 22, "'", name_, "' is too short (", data_.size(),
              " bytes) to be a zip archive");
  uint64_t eocd = UINT64_MAX;
  uint64_t lowest = data_.size() > 22 + 65535 ? data_.size() - 22 - 65535 : 0;
  for (uint64_t p = data_.size() - 22 + 1; p-- > lowest;) {
    if (read_u32_at(data_, p) != kEndOfCentralDir) continue;
    uint64_t comment = static_cast<uint8_t>(data_[p + 20]) | (static_cast<uint8_t>(data_[p + 21]) << 8);
    if (p + 22 + comment == data_.size()) {
      eocd = p;
      break;
    }
  }
  GRAFT_CHECK(eocd != UINT64_MAX, "'", name_,
              "' has no zip end-of-central-directory record (truncated or not a zip archive)");
  Cursor c(data_, name_);
  c.seek(eocd + 4, "end record");
  uint64_t disk = c.uint(2, "end record");
  uint64_t cd_disk = c.uint(2, "end record");
  c.uint(2, "end record");
  uint64_t count = c.uint(2, "end record");
  uint64_t cd_size = c.uint(4, "end record");
  uint64_t cd_offset = c.uint(4, "end record");
  uint64_t cd_end_limit = eocd;
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    GRAFT_CHECK(eocd >= 20 && read_u32_at(data_, eocd - 20) == kZip64EndLocator, "'", name_,
                "': the zip end record points to a zip64 record, but no zip64 locator precedes it");
    c.seek(eocd - 20 + 8, "zip64 locator");
    uint64_t z64 = c.uint(8, "zip64 locator");
    GRAFT_CHECK(z64 <= eocd - 20 && eocd - 20 - z64 >= 56 && read_u32_at(data_, z64) == kZip64End, "'", name_,
                "': the zip64 end record expected at offset ", z64, " is not there");
    c.seek(z64 + 16, "zip64 end record");
    disk = c.uint(4, "zip64 end record");
    cd_disk = c.uint(4, "zip64 end record");
    c.uint(8, "zip64 end record");
    count = c.uint(8, "zip64 end record");
    cd_size = c.uint(8, "zip64 end record");
    cd_offset = c.uint(8, "zip64 end record");
    cd_end_limit = z64;
  }
  GRAFT_CHECK(disk == 0 && cd_disk == 0, "'", name_,
              "' is a multi-disk zip archive; expected a single file");
  GRAFT_CHECK(cd_offset <= cd_end_limit && cd_size <= cd_end_limit - cd_offset, "'", name_,
              "': the zip central directory (offset ", cd_offset, ", ", cd_size,
              " bytes) does not fit before the end record at offset ", cd_end_limit);
  // Each central header takes at least 46 bytes, which bounds a hostile count.
  GRAFT_CHECK(count <= cd_size / 46, "'", name_, "': the zip end record claims ", count,
              " entries, but the central directory has room for at most ", cd_size / 46);
  std::string_view cd = data_.substr(cd_offset, cd_size);
  Cursor h(cd, name_);
  for (uint64_t i = 0; i < count; ++i) {
    GRAFT_CHECK(h.uint(4, "central header") == kCentralHeader, "'", name_,
                "': zip central directory entry ", i, " has a bad signature");
    h.uint(4, "central header");  // versions
    Entry e;
    e.flags = static_cast<uint16_t>(h.uint(2, "central header"));
    e.method = static_cast<uint16_t>(h.uint(2, "central header"));
    h.uint(4, "central header");  // time, date
    e.crc = static_cast<uint32_t>(h.uint(4, "central header"));
    e.compressed_size = h.uint(4, "central header");
    e.size = h.uint(4, "central header");
    uint64_t name_len = h.uint(2, "central header");
    uint64_t extra_len = h.uint(2, "central header");
    uint64_t comment_len = h.uint(2, "central header");
    h.uint(8, "central header");  // disk, attributes
    e.local_offset = h.uint(4, "central header");
    std::string entry_name(h.take(name_len, "entry name"));
    std::string_view extra = h.take(extra_len, "extra field");
    h.take(comment_len, "entry comment");
    // The zip64 extra field holds, in this order, only the fields whose
    // 32-bit value is saturated.
    Cursor x(extra, name_);
    while (extra.size() - x.pos() >= 4) {
      uint64_t id = x.uint(2, "extra field");
      uint64_t len = x.uint(2, "extra field");
      std::string_view body = x.take(len, "extra field");
      if (id != 0x0001) continue;
      Cursor z(body, name_);
      if (e.size == 0xFFFFFFFF) e.size = z.uint(8, "zip64 extra field");
      if (e.compressed_size == 0xFFFFFFFF) e.compressed_size = z.uint(8, "zip64 extra field");
      if (e.local_offset == 0xFFFFFFFF) e.local_offset = z.uint(8, "zip64 extra field");
    }
    GRAFT_CHECK(entries_.emplace(entry_name, e).second, "'", name_,
                "': the zip archive has two entries named '", entry_name, "'");
    names_.push_back(entry_name);
  }
  // Each entry's bytes (local header, name, extra field, data) must lie
  // before the central directory and apart from every other entry's:
  // entries sharing bytes would let a small archive stand for many times
  // its size once each entry is loaded.
  struct Span {
    uint64_t begin, end;
    const std::string* entry;
  };
  std::vector<Span> spans;
  spans.reserve(names_.size());
  for (const auto& n : names_) {
    const Entry& e = entries_.at(n);
    Cursor l(data_, name_);
    l.seek(e.local_offset, "local header");
    l.take(26, "local header");  // signature .. sizes (checked by read())
    uint64_t local_name = l.uint(2, "local header");
    uint64_t local_extra = l.uint(2, "local header");
    uint64_t header_end = l.pos() + local_name + local_extra;
    GRAFT_CHECK(e.compressed_size <= cd_offset && header_end <= cd_offset - e.compressed_size, "'",
                name_, "': zip entry '", n, "' (local header at offset ", e.local_offset, ", ",
                e.compressed_size, " data bytes) reaches past the start of the central directory at ",
                cd_offset);
    spans.push_back({e.local_offset, header_end + e.compressed_size, &n});
  }
  std::stable_sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    GRAFT_CHECK(spans[i].begin >= spans[i - 1].end, "'", name_, "': zip entries '",
                *spans[i - 1].entry, "' (bytes ", spans[i - 1].begin, " to ", spans[i - 1].end,
                ") and '", *spans[i].entry, "' (from byte ", spans[i].begin,
                ") overlap; expected every entry to have bytes of its own");
}

std::string_view Reader::read(const std::string& entry) const {
  auto it = entries_.find(entry);
  GRAFT_CHECK(it != entries_.end(), "'", name_, "': the zip archive has no entry '", entry, "'");
  const Entry& e = it->second;
  GRAFT_CHECK(e.method == 0, "'", name_, "': zip entry '", entry, "' is compressed (method ",
              e.method, "); expected it stored uncompressed, as torch.save writes");
  GRAFT_CHECK((e.flags & 1) == 0, "'", name_, "': zip entry '", entry,
              "' is encrypted; expected a plain entry");
  GRAFT_CHECK(e.compressed_size == e.size, "'", name_, "': stored zip entry '", entry, "' has ",
              e.compressed_size, " stored bytes but a size of ", e.size);
  Cursor c(data_, name_);
  c.seek(e.local_offset, "local header");
  GRAFT_CHECK(c.uint(4, "local header") == kLocalHeader, "'", name_, "': zip entry '", entry,
              "' has no local header at offset ", e.local_offset);
  c.uint(22, "local header");  // versions .. sizes: the central directory is authoritative
  uint64_t name_len = c.uint(2, "local header");
  uint64_t extra_len = c.uint(2, "local header");
  c.take(name_len, "local entry name");
  c.take(extra_len, "local extra field");
  std::string_view bytes = c.take(e.size, "entry data");
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t done = 0; done < bytes.size();) {
    uint64_t n = std::min<uint64_t>(bytes.size() - done, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), static_cast<uInt>(n));
    done += n;
  }
  GRAFT_CHECK(static_cast<uint32_t>(crc) == e.crc, "'", name_, "': zip entry '", entry,
              "' is damaged (CRC-32 ", std::hex, static_cast<uint32_t>(crc), ", expected ", e.crc, ")");
  return bytes;
}

}  // namespace graft::zip
