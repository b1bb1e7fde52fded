#include "graft/train/trainer.h"

#include "graft/train/task.h"

namespace graft {

TrainSummary train(TrainOptions options) {
  if (options.resume) options = resume_options(options);
  TrainSummary s = find_task(options.task).train(options);
  s.task = options.task;
  return s;
}

}  // namespace graft
