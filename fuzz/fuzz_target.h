#pragma once
/// What every fuzz target in fuzz/ shares: its entry name, the input as
/// bytes, and the rule that a graft::Error is the expected answer to bad
/// input (a refusal), while a crash, a sanitizer report or any other
/// exception is a finding.
///
/// libFuzzer builds each target alone, as LLVMFuzzerTestOneInput; the
/// replays include them all into one file, each under its own name
/// (fuzz/parser_targets.inc defines GRAFT_FUZZ_ENTRY before each).

#include <cstddef>
#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "graft/core/error.h"

#ifndef GRAFT_FUZZ_ENTRY
#define GRAFT_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

namespace graft::fuzz {

inline std::string input_bytes(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

/// Runs `f`; a graft::Error thrown by it is a refusal and is swallowed.
template <typename F>
void refused_or_ok(F&& f) {
  try {
    f();
  } catch (const graft::Error&) {
  }
}

/// Reads the last element of every tensor of a name -> tensor list, so that
/// an offset, shape or stride outside its storage shows up under ASan.
template <typename Tensors>
void touch_last_elements(const Tensors& tensors) {
  for (const auto& entry : tensors) {
    const torch::Tensor& t = entry.second;
    if (t.numel() > 0) (void)t.contiguous().flatten()[t.numel() - 1].item<double>();
  }
}

}  // namespace graft::fuzz
