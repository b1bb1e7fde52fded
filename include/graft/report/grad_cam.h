#pragma once
/// Grad-CAM overlays for report.html: the heat map of models/grad_cam.h over
/// the preprocessed crop of some of an image run's test images, as PNG.
/// Torch-free.

#include <string>
#include <vector>

namespace graft {

/// One image's overlay.
struct GradCamOverlay {
  std::string path;       ///< the image (a file, or FILE#INDEX inside an IDX file)
  std::string target;     ///< the class whose evidence is shown (the predicted one)
  std::string png;        ///< the crop with the heat map blended at 0.5, PNG bytes
  std::string error;      ///< why there is no overlay (png empty): an unreadable image
};

/// Whether `run_dir`'s model has a Grad-CAM: an image run (model.json and
/// model.safetensors) whose backbone is a CNN of the registry.
bool grad_cam_applies(const std::string& run_dir);

/// Loads the run's model once and computes, for each image in `paths` with
/// its predicted class in `predicted` (one of the run's classes), the
/// Grad-CAM of that class over the crop evaluation sees (the run's input
/// spec, eval transforms), blended onto it. An image that cannot be read
/// gets `error`; graft::Error when the model cannot be loaded or a class is
/// not the run's.
std::vector<GradCamOverlay> grad_cam_overlays(const std::string& run_dir, const std::vector<std::string>& paths,
                                              const std::vector<std::string>& predicted);

}  // namespace graft
