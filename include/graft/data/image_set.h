#pragma once
/// Labelled image collections: a folder of class folders, or an IDX pair
/// (the MNIST format, gzipped or not).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "graft/data/image_header.h"

namespace graft {

/// Images of an IDX file (magic 0x00000803), held in memory.
struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major
};

/// Reads an IDX image file (.gz or raw). Throws graft::Error naming the file
/// and the field (magic, dimensions, length) that is wrong.
IdxImages read_idx_images(const std::string& path);
/// Reads an IDX label file (magic 0x00000801).
std::vector<uint8_t> read_idx_labels(const std::string& path);
/// The same from the (decompressed) bytes of such a file; `name` is used in
/// errors.
IdxImages parse_idx_images(const std::vector<uint8_t>& bytes, const std::string& name);
std::vector<uint8_t> parse_idx_labels(const std::vector<uint8_t>& bytes, const std::string& name);

/// Decodes an image file: 8-bit, 1 channel (grey) or 3 channels in RGB order
/// (alpha dropped, 16-bit scaled to 8-bit, EXIF orientation ignored as PIL
/// and torchvision do). The format comes from the file's first bytes, never
/// its name: PNG, JPEG, BMP, PNM, WebP and TIFF through OpenCV, GIF (the
/// first frame, as Pillow gives it: src/data/gif.h) through giflib. Every
/// verb reads images through this function. Throws ImageError
/// (graft/data/image_header.h) naming the file and the reason: not an image,
/// an unsupported format, truncated (a JPEG that ends before its
/// end-of-image marker, a PNG without IEND, ...), too large (a header
/// claiming more than max_image_pixels(), refused before decoding), damaged,
/// or a file that cannot be read.
cv::Mat load_image(const std::string& path);
/// The same from the bytes of an image file; `name` is used in errors.
cv::Mat decode_image(const std::vector<uint8_t>& bytes, const std::string& name);
/// An image in OpenCV's order (BGR or BGRA, as cv::imread gives it; grey,
/// grey + alpha; 8- or 16-bit, or float in [0, 1]) as load_image returns its
/// images: 8-bit grey or RGB. Throws ImageError naming `name` otherwise.
cv::Mat grey_or_rgb_from_bgr(const cv::Mat& image, const std::string& name);

/// One sample: a file path, or an index into the set's IDX images.
struct Sample {
  std::string path;    // empty for IDX samples
  int64_t index = -1;  // IDX row, -1 for files
  int label = 0;       // index into ImageSet::classes
};

struct OpenOptions {
  /// A file that is no image graft reads (by its first bytes) is an error
  /// instead of a counted warning.
  bool strict = false;
  /// When not empty, the folder opened is itself the one class folder, of
  /// this class (graft enroll): its images, searched recursively.
  std::string as_class;
};

/// A labelled image collection. Copies are cheap (IDX pixels are shared).
struct ImageSet {
  std::string root;                  // what the user gave (for messages)
  std::vector<std::string> classes;  // label i is classes[i]
  std::vector<Sample> samples;
  std::shared_ptr<const IdxImages> idx;
  int64_t skipped = 0;  // files left out when opening (unreadable.size() for a folder)
  /// Files left out when opening a folder, and why (not images, or images of
  /// a format graft does not read, by their first bytes), labelled by class.
  std::vector<UnreadableImage> unreadable;

  size_t size() const { return samples.size(); }
  /// Decodes sample i: 8-bit, 1 channel (grey) or 3 channels in RGB order.
  /// Throws graft::Error naming the file if it cannot be decoded.
  cv::Mat load(size_t i) const;
  /// A stable identity of sample i for cache keys and messages
  /// ("path" or "root#index").
  std::string identity(size_t i) const;
  /// Number of samples per class, indexed by label.
  std::vector<int64_t> class_counts() const;
  /// The same set restricted to the given sample positions (in that order).
  ImageSet subset(const std::vector<size_t>& positions) const;
};

/// Opens `path`: a folder with one sub-folder per class (every file whose
/// first bytes are an image graft reads, whatever its name: PNG, JPEG, BMP,
/// GIF, PNM, WebP, TIFF; sorted by name, classes sorted by name), or an IDX
/// image file `*-images-idx3-ubyte[.gz]` whose labels are the matching
/// `*-labels-idx1-ubyte[.gz]` (classes named "0".."9").
/// Class folders are searched recursively, like torchvision's ImageFolder;
/// names starting with '.' are ignored. Other files (not images, or images of
/// a format graft does not read) are left out, listed in `unreadable` with
/// their reason and reported in one warning that counts them by reason and
/// class; with options.strict the first is an error naming it. Decoding
/// itself is left to load().
/// Errors: a missing path, an empty folder, a folder where no file is a
/// readable image ("0 of N files could be read: ..." with the reasons), a
/// class folder with no readable image, a labels file whose count
/// disagrees: graft::Error naming the path.
ImageSet open_image_set(const std::string& path, const OpenOptions& options = {});

/// Keeps the samples of the named classes and relabels them 0..k-1 in the
/// order given. Throws graft::Error naming an unknown class (and listing the
/// valid ones).
ImageSet select_classes(const ImageSet& set, const std::vector<std::string>& names);

/// Keeps at most n samples per class, chosen at random (seeded) but in the
/// set's original order.
ImageSet take_per_class(const ImageSet& set, int64_t n, uint64_t seed);

/// Stratified split: each class contributes round(fraction * count) samples
/// (halves rounded up) to the second set (at least one when fraction > 0),
/// chosen at random (seeded); both sets keep the original order. fraction 0
/// gives an empty second set. Throws graft::Error naming --val-split if a
/// class would be left empty on either side, graft::UsageError if fraction
/// is outside [0, 1).
std::pair<ImageSet, ImageSet> split_stratified(const ImageSet& set, double fraction,
                                               uint64_t seed);

/// Re-labels `set` to the class list `classes` (by name). Throws graft::Error
/// naming `what` (e.g. "--val") and the class that `classes` lacks.
ImageSet align_classes(const ImageSet& set, const std::vector<std::string>& classes,
                       const std::string& what);

}  // namespace graft
