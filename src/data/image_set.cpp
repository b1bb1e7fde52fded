#include "graft/data/image_set.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <optional>
#include <set>

#include <sys/stat.h>

#include <opencv2/imgcodecs.hpp>

#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/data/image_header.h"
#include "gif.h"
#include "random.h"

namespace fs = std::filesystem;

namespace graft {
namespace {

bool is_hidden(const fs::path& p) {
  std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::vector<uint8_t> read_image_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw ImageError(path, ImageProblem::kCannotOpen, "", std::strerror(errno));
  std::streamoff size = f.tellg();
  if (size < 0) throw ImageError(path, ImageProblem::kCannotOpen, "", "is it a regular file?");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(bytes.data()), size);
  if (f.gcount() != size)
    throw ImageError(path, ImageProblem::kCannotOpen, "", str_cat("read ", f.gcount(), " of ", size, " bytes"));
  return bytes;
}

/// The format of an image file from its first bytes (image_format_of);
/// throws ImageError when it is no image graft reads.
const char* image_file_format(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ImageError(path, ImageProblem::kCannotOpen, "", std::strerror(errno));
  uint8_t head[256];
  f.read(reinterpret_cast<char*>(head), sizeof(head));
  return image_format_of(head, static_cast<size_t>(f.gcount()), path);
}

/// True when an image whose decoder failed ends before its data does, as
/// far as the container says: a PNG without its IEND chunk, a WebP shorter
/// than its RIFF size, a BMP shorter than its file size.
bool image_data_ends_early(const std::vector<uint8_t>& b, const std::string& format) {
  auto le32 = [&](size_t at) {
    return at + 4 <= b.size() ? uint64_t(b[at]) | uint64_t(b[at + 1]) << 8 | uint64_t(b[at + 2]) << 16 |
                                    uint64_t(b[at + 3]) << 24
                              : 0;
  };
  if (format == "PNG") {
    const size_t from = b.size() >= 12 ? b.size() - 12 : 0;
    return std::search(b.begin() + from, b.end(), "IEND", "IEND" + 4) == b.end();
  }
  if (format == "WebP") return le32(4) + 8 > b.size();
  if (format == "BMP") return le32(2) > b.size();
  return false;
}

/// False when a JPEG stream ends before its end-of-image marker. libjpeg only
/// warns about this and fills the missing rows with grey, which would put a
/// silently damaged image into training.
bool jpeg_complete(const std::vector<uint8_t>& b) {
  const size_t n = b.size();
  size_t pos = 2;  // after SOI
  for (;;) {
    while (pos < n && b[pos] != 0xFF) ++pos;  // libjpeg skips stray bytes with a warning
    while (pos < n && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) return false;
    const uint8_t marker = b[pos++];
    if (marker == 0xD9) return true;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no payload
    if (pos + 2 > n) return false;
    const size_t len = (size_t(b[pos]) << 8) | b[pos + 1];
    if (len < 2) return true;  // malformed: let the decoder report it
    pos += len;
    if (pos > n) return false;
    if (marker != 0xDA) continue;
    // Entropy-coded data after SOS ends at a 0xFF that is not a stuffed
    // 0xFF00, a restart marker or a fill byte.
    for (;;) {
      const void* ff = pos < n ? std::memchr(b.data() + pos, 0xFF, n - pos) : nullptr;
      if (ff == nullptr) return false;
      pos = size_t(static_cast<const uint8_t*>(ff) - b.data());
      if (pos + 1 >= n) return false;
      const uint8_t next = b[pos + 1];
      if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
        pos += 2;
      } else if (next == 0xFF) {
        pos += 1;
      } else {
        break;  // a marker: back to the segment loop
      }
    }
  }
}

/// 8-bit grey or RGB from what imdecode(IMREAD_UNCHANGED) gives (BGR order,
/// maybe alpha, maybe 16-bit or float). Plain loops: OpenCV's own conversions
/// may start its thread pool, which loader threads should not do.
cv::Mat to_8bit_grey_or_rgb(cv::Mat raw, const std::string& path, const std::string& format) {
  switch (raw.depth()) {
    case CV_8U: break;
    case CV_16U: {
      cv::Mat m;
      raw.convertTo(m, CV_8U, 255.0 / 65535.0);
      raw = m;
      break;
    }
    case CV_32F:
    case CV_64F: {
      cv::Mat m;
      raw.convertTo(m, CV_8U, 255.0);  // float images hold [0, 1]
      raw = m;
      break;
    }
    default:
      throw ImageError(path, ImageProblem::kUnsupported, str_cat(format, " of pixel depth ", raw.depth()),
                       "graft reads 8- or 16-bit unsigned, or float pixels");
  }
  const int ch = raw.channels();
  if (ch == 1) return raw;
  if (ch < 2 || ch > 4)
    throw ImageError(path, ImageProblem::kUnsupported, str_cat(format, " with ", ch, " channels"),
                     "graft reads 1 to 4 channels");
  cv::Mat out(raw.rows, raw.cols, ch == 2 ? CV_8UC1 : CV_8UC3);
  for (int y = 0; y < raw.rows; ++y) {
    const uint8_t* in = raw.ptr<uint8_t>(y);
    uint8_t* o = out.ptr<uint8_t>(y);
    if (ch == 2) {  // grey + alpha: drop alpha
      for (int x = 0; x < raw.cols; ++x) o[x] = in[2 * x];
    } else {  // BGR(A) -> RGB, alpha dropped as PIL's convert("RGB") does
      for (int x = 0; x < raw.cols; ++x) {
        o[3 * x] = in[ch * x + 2];
        o[3 * x + 1] = in[ch * x + 1];
        o[3 * x + 2] = in[ch * x];
      }
    }
  }
  return out;
}

ImageSet open_idx(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  const std::string key = "images-idx3";
  size_t at = name.find(key);
  GRAFT_CHECK(at != std::string::npos, "image set '", path,
              "' is a file, but not an IDX images file (expected a folder with one sub-folder "
              "per class, or a file named like train-images-idx3-ubyte[.gz])");
  std::string labels_name = name;
  labels_name.replace(at, key.size(), "labels-idx1");
  std::string labels_path = (fs::path(path).parent_path() / labels_name).string();
  GRAFT_CHECK(fs::exists(labels_path), "IDX images '", path, "' have no labels file '",
              labels_path, "' next to them");

  auto images = std::make_shared<IdxImages>(read_idx_images(path));
  std::vector<uint8_t> labels = read_idx_labels(labels_path);
  GRAFT_CHECK(int64_t(labels.size()) == images->count, "IDX labels '", labels_path, "' hold ",
              labels.size(), " labels but images '", path, "' hold ", images->count,
              " images (expected equal counts)");

  ImageSet set;
  set.root = path;
  int max_label = 9;
  for (uint8_t l : labels) max_label = std::max(max_label, int(l));
  for (int c = 0; c <= max_label; ++c) set.classes.push_back(std::to_string(c));
  set.samples.reserve(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    set.samples.push_back(Sample{std::string(), int64_t(i), int(labels[i])});
  }
  set.idx = std::move(images);
  return set;
}

// A file or folder by identity (device and inode, links followed): links
// are followed, but a folder is listed once and a file counted once.
using FileId = std::pair<dev_t, ino_t>;

std::optional<FileId> file_id(const fs::path& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

// The warnings of a folder's listing: links to folders or images listed
// already, files left out.
void warn_about_listing(const ImageSet& set, const std::string& path, int64_t loops, const std::string& first_loop,
                        int64_t duplicates, int64_t files_total) {
  if (loops > 0)
    log_warn(str_cat("image folder '", path, "': ", loops,
                     loops == 1 ? " folder link leads" : " folder links lead",
                     " to a folder listed already (a cycle or a second name; first: '", first_loop,
                     "'); not listed again"));
  if (duplicates > 0)
    log_warn(str_cat("image folder '", path, "': ", duplicates,
                     duplicates == 1 ? " file is a link" : " files are links",
                     " to an image listed already; each image is used once"));
  if (set.skipped > 0)
    log_warn(str_cat("image folder '", path, "': ", unreadable_summary(set.unreadable, files_total, set.classes)));
}

ImageSet open_folder(const std::string& path, const OpenOptions& options) {
  ImageSet set;
  set.root = path;
  int64_t loose_files = 0, loops = 0, duplicates = 0;
  std::string first_loop;
  std::error_code ec;
  // Every folder already listed, the root and the class folders first: a link
  // back to any of them (cat/loop -> ., loop -> .) is a cycle, not new data.
  std::set<FileId> folders;
  if (auto id = file_id(path)) folders.insert(*id);
  fs::directory_iterator entries(path, ec);
  GRAFT_CHECK(!ec, "cannot list image folder '", path, "': ", ec.message());
  std::vector<std::string> names;
  if (!options.as_class.empty()) entries = fs::directory_iterator();  // the folder is the class
  for (; entries != fs::directory_iterator(); entries.increment(ec)) {
    GRAFT_CHECK(!ec, "cannot list image folder '", path, "': ", ec.message());
    if (is_hidden(entries->path())) continue;
    std::error_code dir_ec;
    if (fs::is_directory(entries->path(), dir_ec)) {
      names.push_back(entries->path().filename().string());
    } else {
      ++loose_files;
    }
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    auto id = file_id(fs::path(path) / name);
    if (id && !folders.insert(*id).second) {
      // A second name for the root or for another class folder.
      ++loops;
      if (first_loop.empty()) first_loop = (fs::path(path) / name).string();
      continue;
    }
    set.classes.push_back(name);
  }
  if (!options.as_class.empty()) set.classes = {options.as_class};
  GRAFT_CHECK(!set.classes.empty(), "image folder '", path,
              "' has no class sub-folders (expected one folder per class with images",
              loose_files > 0 ? str_cat("; it holds ", loose_files, " files directly") : "",
              ")");

  std::set<FileId> seen_files;
  std::vector<int64_t> files_per_class;
  for (size_t label = 0; label < set.classes.size(); ++label) {
    const fs::path dir = options.as_class.empty() ? fs::path(path) / set.classes[label] : fs::path(path);
    std::vector<std::string> files;
    fs::recursive_directory_iterator it(
        dir, fs::directory_options::follow_directory_symlink, ec);
    GRAFT_CHECK(!ec, "cannot list class folder '", dir.string(), "': ", ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      GRAFT_CHECK(!ec, "cannot list class folder '", dir.string(), "': ", ec.message());
      std::error_code type_ec;
      if (is_hidden(it->path())) {
        if (it->is_directory(type_ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_directory(type_ec)) {
        auto id = file_id(it->path());
        if (id && !folders.insert(*id).second) {
          it.disable_recursion_pending();  // listed already: a link cycle or a second name
          ++loops;
          if (first_loop.empty()) first_loop = it->path().string();
        }
        continue;
      }
      if (it->is_regular_file(type_ec)) {
        // The same file under two names (links) is one sample, in the first
        // class that lists it: never on both sides of the split.
        auto id = file_id(it->path());
        if (id && !seen_files.insert(*id).second) {
          ++duplicates;
          continue;
        }
        files.push_back(it->path().string());
      }
    }
    std::sort(files.begin(), files.end());
    // Every file is tried: its first bytes say whether it is an image graft
    // reads, whatever its name.
    for (const std::string& f : files) {
      try {
        image_file_format(f);
      } catch (const ImageError& e) {
        if (options.strict)
          throw Error(str_cat(e.what(), " (in image folder '", path, "'; --strict makes this an error)"));
        set.unreadable.push_back(unreadable_image(e, f, int(label)));
        continue;
      }
      set.samples.push_back(Sample{f, -1, int(label)});
    }
    files_per_class.push_back(int64_t(files.size()));
  }
  set.skipped = int64_t(set.unreadable.size());
  const int64_t files_total = int64_t(set.samples.size()) + set.skipped;
  // Nothing usable: say why before anything else.
  GRAFT_CHECK(!set.samples.empty() || files_total == 0, "image folder '", path, "': ",
              unreadable_summary(set.unreadable, files_total, set.classes));
  const std::vector<int64_t> counts = set.class_counts();
  for (size_t c = 0; c < set.classes.size(); ++c) {
    if (counts[c] > 0) continue;
    const std::string dir = options.as_class.empty() ? (fs::path(path) / set.classes[c]).string() : path;
    GRAFT_CHECK(files_per_class[c] > 0, "class folder '", dir, "' holds no files (expected images: ",
                supported_image_formats(), ")");
    std::vector<UnreadableImage> here;
    for (const UnreadableImage& u : set.unreadable)
      if (u.label == int(c)) here.push_back(u);
    throw Error(str_cat("class folder '", dir, "' holds no readable image: ", unreadable_reasons(here, {}),
                        "; graft reads ", supported_image_formats()));
  }
  warn_about_listing(set, path, loops, first_loop, duplicates, files_total);
  return set;
}

}  // namespace

cv::Mat load_image(const std::string& path) { return decode_image(read_image_bytes(path), path); }

cv::Mat grey_or_rgb_from_bgr(const cv::Mat& image, const std::string& name) {
  if (image.empty()) throw ImageError(name, ImageProblem::kDamaged, "image", "it is empty");
  return to_8bit_grey_or_rgb(image, name, "image");
}

cv::Mat decode_image(const std::vector<uint8_t>& bytes, const std::string& path) {
  // The format from the first bytes, width x height from the header: a small
  // file may claim an image of gigabytes (refused over max_image_pixels(),
  // before any decoding).
  const std::string format = check_image_header(bytes.data(), bytes.size(), path).format;
  if (format == "GIF") return decode_gif(bytes, path);
  if (format == "JPEG" && !jpeg_complete(bytes))
    throw ImageError(path, ImageProblem::kTruncated, "JPEG", "no end-of-image marker");
  cv::Mat raw;
  try {
    raw = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw ImageError(path, ImageProblem::kDamaged, format, str_cat("OpenCV: ", e.err));
  }
  if (raw.empty() || raw.rows <= 0 || raw.cols <= 0) {
    if (image_data_ends_early(bytes, format))
      throw ImageError(path, ImageProblem::kTruncated, format, "the data ends early");
    throw ImageError(path, ImageProblem::kDamaged, format, "OpenCV's decoder refused it");
  }
  return to_8bit_grey_or_rgb(raw, path, format);
}

cv::Mat ImageSet::load(size_t i) const {
  GRAFT_CHECK(i < samples.size(), "sample ", i, " is out of range (the set '", root, "' has ",
              samples.size(), ")");
  const Sample& s = samples[i];
  if (s.index < 0) return load_image(s.path);
  GRAFT_CHECK(idx && s.index < idx->count, "sample ", i, " of '", root, "' refers to IDX row ",
              s.index, " (the file has ", idx ? idx->count : 0, ")");
  const size_t plane = size_t(idx->rows * idx->cols);
  cv::Mat m(int(idx->rows), int(idx->cols), CV_8UC1);
  std::memcpy(m.data, idx->pixels.data() + size_t(s.index) * plane, plane);
  return m;
}

std::string ImageSet::identity(size_t i) const {
  const Sample& s = samples.at(i);
  return s.index < 0 ? s.path : str_cat(root, "#", s.index);
}

std::vector<int64_t> ImageSet::class_counts() const {
  std::vector<int64_t> counts(classes.size(), 0);
  for (const Sample& s : samples) {
    if (s.label >= 0 && size_t(s.label) < counts.size()) ++counts[s.label];
  }
  return counts;
}

ImageSet ImageSet::subset(const std::vector<size_t>& positions) const {
  ImageSet out;
  out.root = root;
  out.classes = classes;
  out.idx = idx;
  out.skipped = skipped;
  out.unreadable = unreadable;
  out.samples.reserve(positions.size());
  for (size_t p : positions) {
    GRAFT_CHECK(p < samples.size(), "subset position ", p, " is out of range (the set '", root,
                "' has ", samples.size(), " samples)");
    out.samples.push_back(samples[p]);
  }
  return out;
}

ImageSet open_image_set(const std::string& path, const OpenOptions& options) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  GRAFT_CHECK(!path.empty() && fs::exists(st), "image set '", path,
              "' does not exist (expected a folder with one sub-folder per class, or an IDX "
              "images file *-images-idx3-ubyte[.gz])");
  if (fs::is_directory(st)) return open_folder(path, options);
  return open_idx(path);
}

ImageSet select_classes(const ImageSet& set, const std::vector<std::string>& names) {
  std::string valid;
  for (const std::string& c : set.classes) valid += (valid.empty() ? "" : ", ") + c;
  std::map<int, int> relabel;
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = std::find(set.classes.begin(), set.classes.end(), names[i]);
    GRAFT_CHECK(it != set.classes.end(), "class '", names[i], "' is not in '", set.root,
                "' (its classes: ", valid, ")");
    int old = int(it - set.classes.begin());
    GRAFT_CHECK(relabel.count(old) == 0, "class '", names[i], "' is selected twice");
    relabel[old] = int(i);
  }
  ImageSet out;
  out.root = set.root;
  out.classes = names;
  out.idx = set.idx;
  for (const Sample& s : set.samples) {
    auto it = relabel.find(s.label);
    if (it == relabel.end()) continue;
    Sample t = s;
    t.label = it->second;
    out.samples.push_back(std::move(t));
  }
  // The unreadable files of the classes kept (all of an IDX set's count).
  for (const UnreadableImage& u : set.unreadable) {
    auto it = relabel.find(u.label);
    if (it == relabel.end()) continue;
    out.unreadable.push_back(u);
    out.unreadable.back().label = it->second;
  }
  out.skipped = set.unreadable.empty() ? set.skipped : int64_t(out.unreadable.size());
  return out;
}

namespace {

/// Positions of the samples of each class, in set order.
std::vector<std::vector<size_t>> positions_by_class(const ImageSet& set) {
  std::vector<std::vector<size_t>> by(set.classes.size());
  for (size_t i = 0; i < set.samples.size(); ++i) {
    int l = set.samples[i].label;
    GRAFT_CHECK(l >= 0 && size_t(l) < by.size(), "sample '", set.identity(i), "' has label ", l,
                " (expected 0..", int(by.size()) - 1, ")");
    by[l].push_back(i);
  }
  return by;
}

/// k positions of `pos` chosen at random, marked in `chosen`.
void choose(const std::vector<size_t>& pos, size_t k, std::mt19937_64& rng,
            std::vector<bool>& chosen) {
  std::vector<size_t> v = pos;
  // Partial Fisher-Yates: the first k entries become a uniform sample.
  for (size_t i = 0; i < k && i < v.size(); ++i) {
    size_t j = i + size_t(data_random::below(rng, v.size() - i));
    std::swap(v[i], v[j]);
    chosen[v[i]] = true;
  }
}

}  // namespace

ImageSet take_per_class(const ImageSet& set, int64_t n, uint64_t seed) {
  GRAFT_CHECK(n > 0, "samples per class = ", n, " (expected > 0)");
  auto by = positions_by_class(set);
  std::vector<bool> chosen(set.samples.size(), false);
  for (size_t c = 0; c < by.size(); ++c) {
    // One stream per class: the choice in one class does not depend on the
    // size of the others.
    std::mt19937_64 rng(mix_seed(seed, data_random::kTakeStream, c));
    choose(by[c], std::min<size_t>(by[c].size(), size_t(n)), rng, chosen);
  }
  std::vector<size_t> keep;
  for (size_t i = 0; i < chosen.size(); ++i) {
    if (chosen[i]) keep.push_back(i);
  }
  return set.subset(keep);
}

std::pair<ImageSet, ImageSet> split_stratified(const ImageSet& set, double fraction,
                                               uint64_t seed) {
  GRAFT_CHECK_USAGE(fraction >= 0.0 && fraction < 1.0, "--val-split ", fraction,
                    " is out of range (expected a fraction in [0, 1))");
  auto by = positions_by_class(set);
  std::vector<bool> second(set.samples.size(), false);
  if (fraction > 0.0) {
    for (size_t c = 0; c < by.size(); ++c) {
      const size_t count = by[c].size();
      size_t k = std::max<size_t>(1, size_t(std::llround(fraction * double(count))));
      GRAFT_CHECK(k < count, "--val-split ", fraction, " leaves class '", set.classes[c],
                        "' of '", set.root, "' empty on one side (it has ", count,
                        count == 1 ? " image" : " images", ", ", k,
                        " would go to validation; expected at least 2 images per class, "
                        "or a smaller --val-split)");
      std::mt19937_64 rng(mix_seed(seed, data_random::kSplitStream, c));
      choose(by[c], k, rng, second);
    }
  }
  std::vector<size_t> a, b;
  for (size_t i = 0; i < second.size(); ++i) (second[i] ? b : a).push_back(i);
  return {set.subset(a), set.subset(b)};
}

ImageSet align_classes(const ImageSet& set, const std::vector<std::string>& classes,
                       const std::string& what) {
  std::vector<int> relabel(set.classes.size(), -1);
  for (size_t c = 0; c < set.classes.size(); ++c) {
    auto it = std::find(classes.begin(), classes.end(), set.classes[c]);
    if (it == classes.end()) {
      std::string valid;
      for (const std::string& n : classes) valid += (valid.empty() ? "" : ", ") + n;
      throw Error(str_cat(what, " '", set.root, "' has class '", set.classes[c],
                          "', which the training classes lack (expected a subset of: ", valid,
                          ")"));
    }
    relabel[c] = int(it - classes.begin());
  }
  ImageSet out = set;
  out.classes = classes;
  for (Sample& s : out.samples) {
    GRAFT_CHECK(s.label >= 0 && size_t(s.label) < relabel.size(), "sample '", s.path,
                "' has label ", s.label, " (expected 0..", int(relabel.size()) - 1, ")");
    s.label = relabel[s.label];
  }
  return out;
}

}  // namespace graft
