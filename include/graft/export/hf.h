#pragma once
/// graft export RUN --format safetensors-hf --out DIR: a run's model as a
/// folder that torchvision (image runs) or Hugging Face transformers (BERT
/// text runs) load as it is: model.safetensors under the library's own
/// parameter names and config.json (for BERT: transformers' BertConfig with
/// architectures BertForSequenceClassification, id2label and label2id; for
/// images: the torchvision builder and its arguments), plus vocab.txt and
/// tokenizer_config.json for text.
#include <string>

namespace graft {

/// An image run (a torchvision family with a linear head) into `out`.
/// graft::Error naming the run and what stands in the way for a CIFAR ResNet
/// (not in torchvision) or an MLP/centroid head (not a torchvision module).
void export_image_run_hf(const std::string& run, const std::string& out);

/// A BERT text run with a linear head into `out` (TF-IDF and centroid runs
/// are refused, naming why).
void export_text_run_hf(const std::string& run, const std::string& out);

}  // namespace graft
