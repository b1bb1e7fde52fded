// Transforms follow torchvision's on PIL images (the usual way pretrained
// models were trained and evaluated): geometry and colour run on 8-bit
// images, and the conversion to float happens once, at the end.

#include "graft/data/transforms.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "graft/core/error.h"
#include "graft/data/resample.h"
#include "random.h"

namespace graft {
namespace {

using data_random::below;
using data_random::uniform;
using data_random::uniform01;

void check_spec(const InputSpec& spec) {
  GRAFT_CHECK(spec.size > 0 && spec.resize > 0, "input spec: size ", spec.size, ", resize ",
              spec.resize, " (expected positive)");
  GRAFT_CHECK(spec.channels == 1 || spec.channels == 3, "input spec: channels ", spec.channels,
              " (expected 1 or 3)");
  for (int c = 0; c < spec.channels; ++c) {
    GRAFT_CHECK(spec.std[c] > 0.f, "input spec: std[", c, "] = ", spec.std[c],
                " (expected > 0)");
  }
}

void check_image(const cv::Mat& img) {
  GRAFT_CHECK(!img.empty() && img.depth() == CV_8U && (img.channels() == 1 || img.channels() == 3),
              "transform input: ", img.cols, "x", img.rows, " image of type ", img.type(),
              " (expected a non-empty 8-bit grey or RGB image)");
}

/// Python's round() for the half-integers and integers met here: ties go to
/// the even neighbour.
int round_half_even(double x) { return int(std::nearbyint(x)); }

/// The image in the channel count the network wants, converted before any
/// resizing when it loses colour (as PIL's convert("L") would be applied first).
cv::Mat grey_first(const cv::Mat& img, const InputSpec& spec) {
  return spec.channels == 1 && img.channels() == 3 ? to_channels(img, 1) : img;
}

/// torchvision's ToTensor + Normalize with the same float32 operations
/// ((v / 255 - mean) / std), through a per-channel table.
torch::Tensor to_tensor(const cv::Mat& img, const InputSpec& spec) {
  const int C = img.channels(), H = img.rows, W = img.cols;
  std::array<std::array<float, 256>, 3> lut;
  for (int c = 0; c < C; ++c) {
    for (int v = 0; v < 256; ++v) lut[c][v] = (float(v) / 255.f - spec.mean[c]) / spec.std[c];
  }
  torch::Tensor t = torch::empty({C, H, W}, torch::kFloat32);
  float* out = t.data_ptr<float>();
  const size_t plane = size_t(H) * W;
  for (int y = 0; y < H; ++y) {
    const uint8_t* in = img.ptr<uint8_t>(y);
    for (int c = 0; c < C; ++c) {
      float* o = out + c * plane + size_t(y) * W;
      const float* l = lut[c].data();
      for (int x = 0; x < W; ++x) o[x] = l[in[x * C + c]];
    }
  }
  return t;
}

/// One axis of torchvision's CenterCrop (with its zero padding when the image
/// is smaller): output [out_start, out_start + len) comes from input
/// [src_start, src_start + len).
struct CropAxis {
  int out_start, len, src_start;
};

CropAxis center_axis(int n, int crop) {
  if (crop > n) return {(crop - n) / 2, n, 0};
  return {0, crop, round_half_even((n - crop) / 2.0)};
}

// ---- augmentation ----------------------------------------------------------

/// torchvision's RandomResizedCrop.get_params: ten tries at an area fraction
/// in `scale` and a log-uniform aspect ratio, else a centre crop clamped to
/// the ratio range.
cv::Rect random_resized_crop_box(int width, int height, std::mt19937_64& rng) {
  constexpr double kScaleMin = 0.25, kScaleMax = 1.0;
  constexpr double kRatioMin = 3.0 / 4.0, kRatioMax = 4.0 / 3.0;
  const double area = double(width) * height;
  const double log_min = std::log(kRatioMin), log_max = std::log(kRatioMax);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target = area * uniform(rng, kScaleMin, kScaleMax);
    double ratio = std::exp(uniform(rng, log_min, log_max));
    int w = round_half_even(std::sqrt(target * ratio));
    int h = round_half_even(std::sqrt(target / ratio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      int i = int(below(rng, uint64_t(height - h + 1)));
      int j = int(below(rng, uint64_t(width - w + 1)));
      return cv::Rect(j, i, w, h);
    }
  }
  const double in_ratio = double(width) / height;
  int w = width, h = height;
  if (in_ratio < kRatioMin) {
    h = std::max(1, round_half_even(w / kRatioMin));
  } else if (in_ratio > kRatioMax) {
    w = std::max(1, round_half_even(h * kRatioMax));
  }
  return cv::Rect((width - w) / 2, (height - h) / 2, w, h);
}

void flip_horizontal(cv::Mat& img) {
  const int C = img.channels();
  for (int y = 0; y < img.rows; ++y) {
    uint8_t* row = img.ptr<uint8_t>(y);
    for (int a = 0, b = img.cols - 1; a < b; ++a, --b) {
      for (int c = 0; c < C; ++c) std::swap(row[a * C + c], row[b * C + c]);
    }
  }
}

inline uint8_t saturate(double v) {
  return uint8_t(std::min(255.0, std::max(0.0, std::round(v))));
}

/// PIL's convert("L") weights (ITU-R 601-2 luma) in its 16-bit fixed point.
inline uint8_t luma(const uint8_t* rgb) {
  return uint8_t((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

void apply_lut(cv::Mat& img, const std::array<uint8_t, 256>& lut) {
  const int n = img.cols * img.channels();
  for (int y = 0; y < img.rows; ++y) {
    uint8_t* row = img.ptr<uint8_t>(y);
    for (int x = 0; x < n; ++x) row[x] = lut[row[x]];
  }
}

/// Blends towards a constant grey level: out = level + factor * (v - level).
void blend_constant(cv::Mat& img, double level, double factor) {
  std::array<uint8_t, 256> lut;
  for (int v = 0; v < 256; ++v) lut[v] = saturate(level + factor * (v - level));
  apply_lut(img, lut);
}

void adjust_contrast(cv::Mat& img, double factor) {
  // Mean of the greyscale image, rounded as PIL's ImageEnhance.Contrast does.
  double sum = 0;
  for (int y = 0; y < img.rows; ++y) {
    const uint8_t* row = img.ptr<uint8_t>(y);
    for (int x = 0; x < img.cols; ++x) {
      sum += img.channels() == 3 ? luma(row + 3 * x) : row[x];
    }
  }
  double mean = std::floor(sum / (double(img.rows) * img.cols) + 0.5);
  blend_constant(img, mean, factor);
}

void adjust_saturation(cv::Mat& img, double factor) {
  if (img.channels() != 3) return;  // a grey image has no saturation
  const float f = float(factor);
  for (int y = 0; y < img.rows; ++y) {
    uint8_t* row = img.ptr<uint8_t>(y);
    for (int x = 0; x < img.cols; ++x) {
      uint8_t* p = row + 3 * x;
      const float g = luma(p);
      for (int c = 0; c < 3; ++c) {
        const float v = g + f * (float(p[c]) - g);
        p[c] = uint8_t(std::min(255.f, std::max(0.f, v)) + 0.5f);
      }
    }
  }
}

/// torchvision's ColorJitter(0.4, 0.4, 0.4): factors uniform in [0.6, 1.4],
/// applied in a random order.
void color_jitter(cv::Mat& img, std::mt19937_64& rng) {
  std::vector<int> order{0, 1, 2, 3};  // brightness, contrast, saturation, hue (off)
  data_random::shuffle(order, rng);
  const double b = uniform(rng, 0.6, 1.4);
  const double c = uniform(rng, 0.6, 1.4);
  const double s = uniform(rng, 0.6, 1.4);
  for (int op : order) {
    if (op == 0) blend_constant(img, 0.0, b);
    if (op == 1) adjust_contrast(img, c);
    if (op == 2) adjust_saturation(img, s);
  }
}

/// Rotation by `degrees` (counter-clockwise) about the image centre, bilinear,
/// outside filled with zero; the size is kept (torchvision's expand=False).
/// Fixed point with 10 fraction bits per axis.
cv::Mat rotate(const cv::Mat& img, double degrees) {
  const int C = img.channels(), H = img.rows, W = img.cols;
  constexpr double kPi = 3.14159265358979323846;
  constexpr int kBits = 10, kOne = 1 << kBits;
  // Shifts coordinates positive so that truncation is floor (std::floor is a
  // library call without SSE4.1).
  constexpr int kShift = 1 << 16;
  const double a = degrees * kPi / 180.0, ca = std::cos(a), sa = std::sin(a);
  const double cx = W * 0.5, cy = H * 0.5;
  cv::Mat out(H, W, img.type());
  for (int oy = 0; oy < H; ++oy) {
    uint8_t* o = out.ptr<uint8_t>(oy);
    const double dy = oy + 0.5 - cy;
    for (int ox = 0; ox < W; ++ox) {
      const double dx = ox + 0.5 - cx;
      // Source position in pixel-centre coordinates (inverse rotation).
      const double sx = cx + ca * dx - sa * dy - 0.5;
      const double sy = cy + sa * dx + ca * dy - 0.5;
      const int xi = int((sx + kShift) * kOne) - kShift * kOne;
      const int yi = int((sy + kShift) * kOne) - kShift * kOne;
      const int x0 = xi >> kBits, y0 = yi >> kBits;
      const int fx = xi & (kOne - 1), fy = yi & (kOne - 1);
      uint8_t* q = o + ox * C;
      if (x0 < -1 || y0 < -1 || x0 >= W || y0 >= H) {
        for (int c = 0; c < C; ++c) q[c] = 0;
        continue;
      }
      const int w[4] = {(kOne - fx) * (kOne - fy), fx * (kOne - fy), (kOne - fx) * fy, fx * fy};
      const uint8_t* p[4];
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {
        p[0] = img.ptr<uint8_t>(y0) + x0 * C;
        p[1] = p[0] + C;
        p[2] = img.ptr<uint8_t>(y0 + 1) + x0 * C;
        p[3] = p[2] + C;
        for (int c = 0; c < C; ++c) {
          q[c] = uint8_t((w[0] * p[0][c] + w[1] * p[1][c] + w[2] * p[2][c] + w[3] * p[3][c] +
                          (1 << (2 * kBits - 1))) >> (2 * kBits));
        }
        continue;
      }
      static const uint8_t kZero[4] = {0, 0, 0, 0};
      for (int k = 0; k < 4; ++k) {
        const int x = x0 + (k & 1), y = y0 + (k >> 1);
        p[k] = (x < 0 || y < 0 || x >= W || y >= H) ? kZero : img.ptr<uint8_t>(y) + x * C;
      }
      for (int c = 0; c < C; ++c) {
        q[c] = uint8_t((w[0] * p[0][c] + w[1] * p[1][c] + w[2] * p[2][c] + w[3] * p[3][c] +
                        (1 << (2 * kBits - 1))) >> (2 * kBits));
      }
    }
  }
  return out;
}

/// torchvision's RandomErasing(p=0.25, scale=(0.02, 0.2), ratio=(0.3, 3.3),
/// value=0) on the normalised tensor.
void random_erasing(torch::Tensor& t, std::mt19937_64& rng) {
  if (uniform01(rng) >= 0.25) return;
  const int64_t C = t.size(0), H = t.size(1), W = t.size(2);
  const double area = double(H) * W;
  const double log_min = std::log(0.3), log_max = std::log(3.3);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double erase = area * uniform(rng, 0.02, 0.2);
    double ratio = std::exp(uniform(rng, log_min, log_max));
    int h = round_half_even(std::sqrt(erase * ratio));
    int w = round_half_even(std::sqrt(erase / ratio));
    if (!(h < H && w < W)) continue;
    int i = int(below(rng, uint64_t(H - h + 1)));
    int j = int(below(rng, uint64_t(W - w + 1)));
    float* p = t.data_ptr<float>();
    for (int64_t c = 0; c < C; ++c) {
      for (int y = i; y < i + h; ++y) std::fill_n(p + (c * H + y) * W + j, w, 0.f);
    }
    return;
  }
}

}  // namespace

Augment parse_augment(const std::string& name) {
  if (name == "none") return Augment::None;
  if (name == "light") return Augment::Light;
  if (name == "strong") return Augment::Strong;
  throw UsageError(str_cat("--augment '", name, "' is not a preset (expected none, light or strong)"));
}

std::string to_string(Augment a) {
  switch (a) {
    case Augment::None: return "none";
    case Augment::Light: return "light";
    case Augment::Strong: return "strong";
  }
  return "none";
}

cv::Mat to_channels(const cv::Mat& img, int channels) {
  GRAFT_CHECK(channels == 1 || channels == 3, "to_channels: channels ", channels,
              " (expected 1 or 3)");
  check_image(img);
  if (img.channels() == channels) return img;
  cv::Mat out(img.rows, img.cols, channels == 3 ? CV_8UC3 : CV_8UC1);
  for (int y = 0; y < img.rows; ++y) {
    const uint8_t* in = img.ptr<uint8_t>(y);
    uint8_t* o = out.ptr<uint8_t>(y);
    if (channels == 3) {
      for (int x = 0; x < img.cols; ++x) o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = in[x];
    } else {
      for (int x = 0; x < img.cols; ++x) o[x] = luma(in + 3 * x);
    }
  }
  return out;
}

namespace {

// Resize(spec.resize)'s output size: the shorter side becomes spec.resize, the
// longer one keeps the aspect ratio, truncated (torchvision's
// int(new_short * long / short)).
cv::Size eval_resize_size(int w, int h, const InputSpec& spec) {
  int nw, nh;
  if (w <= h) {
    nw = spec.resize;
    nh = int(double(int64_t(spec.resize) * h) / w);
  } else {
    nh = spec.resize;
    nw = int(double(int64_t(spec.resize) * w) / h);
  }
  return cv::Size(std::max(nw, 1), std::max(nh, 1));
}

// Resize + CenterCrop of eval_transform as an 8-bit image in the channels of
// `src` (only the kept pixels are resampled).
cv::Mat eval_center_crop(const cv::Mat& src, const InputSpec& spec) {
  const cv::Size r = eval_resize_size(src.cols, src.rows, spec);
  const CropAxis ax = center_axis(r.width, spec.size), ay = center_axis(r.height, spec.size);
  cv::Mat kept = resample_bilinear(src, cv::Rect(0, 0, src.cols, src.rows), r,
                                   cv::Rect(ax.src_start, ay.src_start, ax.len, ay.len));
  cv::Mat crop = kept;
  if (ax.len != spec.size || ay.len != spec.size) {
    crop = cv::Mat::zeros(spec.size, spec.size, src.type());
    kept.copyTo(crop(cv::Rect(ax.out_start, ay.out_start, ax.len, ay.len)));
  }
  return crop;
}

// torchvision's five_crop(img, size) boxes, in its order: tl, tr, bl, br, centre.
std::array<cv::Rect, 5> tta_five_crop_boxes(int w, int h, int size) {
  const int cx = center_axis(w, size).src_start, cy = center_axis(h, size).src_start;
  return {cv::Rect(0, 0, size, size), cv::Rect(w - size, 0, size, size), cv::Rect(0, h - size, size, size),
          cv::Rect(w - size, h - size, size, size), cv::Rect(cx, cy, size, size)};
}

}  // namespace

torch::Tensor eval_transform(const cv::Mat& img, const InputSpec& spec) {
  check_spec(spec);
  check_image(img);
  return to_tensor(to_channels(eval_center_crop(grey_first(img, spec), spec), spec.channels), spec);
}

Tta parse_tta(const std::string& name) {
  if (name == "none") return Tta::None;
  if (name == "flip") return Tta::Flip;
  if (name == "five-crop") return Tta::FiveCrop;
  if (name == "ten-crop") return Tta::TenCrop;
  throw UsageError(
      str_cat("--tta '", name, "' is not a test-time augmentation (expected none, flip, five-crop or ten-crop)"));
}

std::string to_string(Tta t) {
  switch (t) {
    case Tta::None: return "none";
    case Tta::Flip: return "flip";
    case Tta::FiveCrop: return "five-crop";
    case Tta::TenCrop: return "ten-crop";
  }
  return "none";
}

int tta_views(Tta t) {
  switch (t) {
    case Tta::None: return 1;
    case Tta::Flip: return 2;
    case Tta::FiveCrop: return 5;
    case Tta::TenCrop: return 10;
  }
  return 1;
}

int tta_padding(const InputSpec& spec) { return spec.resize <= spec.size ? std::max(1, spec.size / 8) : 0; }

torch::Tensor eval_views(const cv::Mat& img, const InputSpec& spec, Tta tta) {
  check_spec(spec);
  check_image(img);
  const cv::Mat src = grey_first(img, spec);
  // The views as 8-bit images in the channels of `src`.
  std::vector<cv::Mat> views;
  if (tta == Tta::None || tta == Tta::Flip) {
    views.push_back(eval_center_crop(src, spec));
    if (tta == Tta::Flip) {
      views.push_back(views[0].clone());
      flip_horizontal(views[1]);
    }
  } else {
    // Resize(spec.resize), Pad(P) when there is no margin, then FiveCrop /
    // TenCrop(spec.size): TenCrop's last five are five_crop(hflip(image)).
    const cv::Size size = eval_resize_size(src.cols, src.rows, spec);
    const int pad = tta_padding(spec);
    GRAFT_CHECK_USAGE(size.width + 2 * pad >= spec.size && size.height + 2 * pad >= spec.size, "--tta ",
                      to_string(tta), ": the image resized to ", size.width, "x", size.height,
                      (pad > 0 ? str_cat(" and padded by ", pad, " pixels") : std::string()),
                      " is smaller than the model's ", spec.size, "x", spec.size,
                      " crop (expected --tta none or flip for this model)");
    cv::Mat resized = resample_bilinear(src, size);
    if (pad > 0) {
      cv::Mat padded = cv::Mat::zeros(resized.rows + 2 * pad, resized.cols + 2 * pad, resized.type());
      resized.copyTo(padded(cv::Rect(pad, pad, resized.cols, resized.rows)));
      resized = padded;
    }
    const auto boxes = tta_five_crop_boxes(resized.cols, resized.rows, spec.size);
    for (const auto& b : boxes) views.push_back(resized(b));
    if (tta == Tta::TenCrop) {
      cv::Mat flipped = resized.clone();
      flip_horizontal(flipped);
      for (const auto& b : boxes) views.push_back(flipped(b));
    }
  }
  const int64_t S = spec.size, C = spec.channels, plane = C * S * S;
  torch::Tensor out = torch::empty({int64_t(views.size()), C, S, S}, torch::kFloat32);
  // Plain copies (no torch::stack): views are made on the loader's threads.
  float* dst = out.data_ptr<float>();
  for (size_t v = 0; v < views.size(); ++v) {
    const torch::Tensor t = to_tensor(to_channels(views[v], spec.channels), spec);
    std::memcpy(dst + int64_t(v) * plane, t.data_ptr<float>(), size_t(plane) * sizeof(float));
  }
  return out;
}

torch::Tensor train_transform(const cv::Mat& img, const InputSpec& spec, Augment augment,
                              std::mt19937_64& rng) {
  if (augment == Augment::None) return eval_transform(img, spec);
  check_spec(spec);
  check_image(img);
  cv::Mat src = grey_first(img, spec);
  const int S = spec.size;
  cv::Rect box = random_resized_crop_box(src.cols, src.rows, rng);
  cv::Mat out = resample_bilinear(src, box, cv::Size(S, S), cv::Rect(0, 0, S, S));
  if (uniform01(rng) < 0.5) flip_horizontal(out);
  if (augment == Augment::Strong) {
    color_jitter(out, rng);
    out = rotate(out, uniform(rng, -15.0, 15.0));
  }
  torch::Tensor t = to_tensor(to_channels(out, spec.channels), spec);
  if (augment == Augment::Strong) random_erasing(t, rng);
  return t;
}

}  // namespace graft
