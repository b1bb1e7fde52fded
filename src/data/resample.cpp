#include "graft/data/resample.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "graft/core/error.h"

namespace graft {
namespace {

// Pillow's Resample.c: 8-bit images use integer weights with 22 fraction bits
// (32 bits minus 8 for the pixel and 2 for headroom).
constexpr int kPrecisionBits = 32 - 8 - 2;

/// Weights of one axis: output i reads inputs [first[i], first[i] + count[i])
/// with weights k[i * ksize + ...].
struct Axis {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc, with the same double
// arithmetic and truncating casts, so the integer weights are identical.
Axis precompute(int in_size, int out_size) {
  const double scale = double(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // the triangle filter's support is 1
  const double ss = 1.0 / filterscale;
  Axis a;
  a.ksize = int(std::ceil(support)) * 2 + 1;
  a.first.resize(out_size);
  a.count.resize(out_size);
  a.k.assign(size_t(out_size) * a.ksize, 0);
  std::vector<double> w(a.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    double center = (xx + 0.5) * scale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = triangle((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? w[x] / ww : w[x];
      a.k[size_t(xx) * a.ksize + x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits))
                                            : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    a.first[xx] = xmin;
    a.count[xx] = xmax;
  }
  return a;
}

inline uint8_t clip8(int32_t in) {
  if (in >= (1 << kPrecisionBits << 8)) return 255;
  if (in <= 0) return 0;
  return uint8_t(in >> kPrecisionBits);
}

/// Horizontal pass over rows [row0, row0 + rows) of src, output columns
/// [col0, col0 + cols).
template <int C>
void horizontal(const cv::Mat& src, int row0, int rows, const Axis& ax, int col0, int cols,
                cv::Mat& dst) {
  for (int y = 0; y < rows; ++y) {
    const uint8_t* in = src.ptr<uint8_t>(row0 + y);
    uint8_t* out = dst.ptr<uint8_t>(y);
    for (int xx = 0; xx < cols; ++xx) {
      const int o = col0 + xx;
      const int32_t* k = &ax.k[size_t(o) * ax.ksize];
      const uint8_t* p = in + ax.first[o] * C;
      const int n = ax.count[o];
      int32_t ss[C];
      for (int c = 0; c < C; ++c) ss[c] = 1 << (kPrecisionBits - 1);
      for (int x = 0; x < n; ++x) {
        for (int c = 0; c < C; ++c) ss[c] += int32_t(p[x * C + c]) * k[x];
      }
      for (int c = 0; c < C; ++c) out[xx * C + c] = clip8(ss[c]);
    }
  }
}

/// Vertical pass: output rows [row0, row0 + rows); src row r holds input row
/// r + src_row0.
template <int C>
void vertical(const cv::Mat& src, int src_row0, const Axis& ax, int row0, int rows,
              cv::Mat& dst) {
  const int width = src.cols * C;
  std::vector<int32_t> ss(width);
  for (int yy = 0; yy < rows; ++yy) {
    const int o = row0 + yy;
    const int32_t* k = &ax.k[size_t(o) * ax.ksize];
    const int first = ax.first[o] - src_row0;
    std::fill(ss.begin(), ss.end(), 1 << (kPrecisionBits - 1));
    // Row by row instead of Pillow's pixel by pixel: the same sums in the same
    // order, but reading memory contiguously.
    for (int y = 0; y < ax.count[o]; ++y) {
      const uint8_t* in = src.ptr<uint8_t>(first + y);
      const int32_t w = k[y];
      for (int i = 0; i < width; ++i) ss[i] += int32_t(in[i]) * w;
    }
    uint8_t* out = dst.ptr<uint8_t>(yy);
    for (int i = 0; i < width; ++i) out[i] = clip8(ss[i]);
  }
}

template <int C>
cv::Mat resample(const cv::Mat& src, const cv::Size& out_size, const cv::Rect& region) {
  const bool need_h = out_size.width != src.cols;
  const bool need_v = out_size.height != src.rows;
  Axis ah, av;
  if (need_h) ah = precompute(src.cols, out_size.width);
  if (need_v) av = precompute(src.rows, out_size.height);

  // Input rows that the kept output rows read.
  int row_first = region.y, row_end = region.y + region.height;
  if (need_v) {
    row_first = av.first[region.y];
    row_end = 0;
    for (int y = region.y; y < region.y + region.height; ++y) {
      row_end = std::max(row_end, av.first[y] + av.count[y]);
    }
  }

  cv::Mat tmp;
  if (need_h) {
    tmp.create(row_end - row_first, region.width, src.type());
    horizontal<C>(src, row_first, row_end - row_first, ah, region.x, region.width, tmp);
  } else {
    tmp = src(cv::Range(row_first, row_end), cv::Range(region.x, region.x + region.width));
  }
  if (!need_v) return need_h ? tmp : tmp.clone();
  cv::Mat out(region.height, region.width, src.type());
  vertical<C>(tmp, row_first, av, region.y, region.height, out);
  return out;
}

}  // namespace

cv::Mat resample_bilinear(const cv::Mat& src, const cv::Rect& src_box, const cv::Size& out_size,
                          const cv::Rect& out_region) {
  GRAFT_CHECK(src.depth() == CV_8U && src.channels() >= 1 && src.channels() <= 4,
              "resample_bilinear: image type ", src.type(), " (expected 8-bit, 1-4 channels)");
  GRAFT_CHECK(src_box.width > 0 && src_box.height > 0 &&
                  (src_box & cv::Rect(0, 0, src.cols, src.rows)) == src_box,
              "resample_bilinear: source box ", src_box, " is empty or outside the ", src.cols,
              "x", src.rows, " image");
  GRAFT_CHECK(out_size.width > 0 && out_size.height > 0, "resample_bilinear: output size ",
              out_size, " (expected positive)");
  GRAFT_CHECK(out_region.width > 0 && out_region.height > 0 &&
                  (out_region & cv::Rect(cv::Point(0, 0), out_size)) == out_region,
              "resample_bilinear: output region ", out_region, " is empty or outside ",
              out_size);
  cv::Mat box = src(src_box);
  switch (src.channels()) {
    case 1: return resample<1>(box, out_size, out_region);
    case 2: return resample<2>(box, out_size, out_region);
    case 3: return resample<3>(box, out_size, out_region);
    default: return resample<4>(box, out_size, out_region);
  }
}

}  // namespace graft
