// One CPU kernel for a whole momentum-SGD update with L2 weight decay, for mindcv.optim.fused.FusedMomentum.
//
// For every parameter i (all float32, updated in place):
//     g = grad_i + decay_i * param_i
//     moment_i = momentum * moment_i + g
//     param_i  = param_i - lr * moment_i
// which is MindSpore's nn.Momentum (ApplyMomentum) after its L2 decay, in one pass over memory and one kernel launch
// instead of one or two per parameter. MindSpore calls it as an "aot" Custom operator with these inputs:
//     0 lr (float32 scalar), 1 momentum (float32 scalar), 2 decay (float32, k values), 3 threads (int32, 1 value),
//     4 .. 4+k-1 params, then k grads, then k moments; and one output (float32, 1 value, set to 0).
// It returns nonzero, which MindSpore reports as a failed launch, when the inputs do not have that form.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

struct Slot {
  float *param;
  const float *grad;
  float *moment;
  float decay;
  int64_t size;
};

int64_t NumElements(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  return n;
}

bool IsFloat32(const char *dtype) { return std::strcmp(dtype, "float32") == 0; }

// Updates elements [lo, hi) of the parameters laid end to end.
void UpdateRange(const std::vector<Slot> &slots, float lr, float momentum, int64_t lo, int64_t hi) {
  int64_t offset = 0;
  for (const Slot &s : slots) {
    const int64_t begin = std::max<int64_t>(lo - offset, 0);
    const int64_t end = std::min<int64_t>(hi - offset, s.size);
    if (begin < end) {
      float *__restrict p = s.param;
      const float *__restrict g = s.grad;
      float *__restrict m = s.moment;
      const float decay = s.decay;
      for (int64_t t = begin; t < end; ++t) {
        const float v = momentum * m[t] + (g[t] + decay * p[t]);
        m[t] = v;
        p[t] -= lr * v;
      }
    }
    offset += s.size;
    if (offset >= hi) break;
  }
}

}  // namespace

extern "C" int FusedMomentum(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  (void)stream;
  (void)extra;
  const int k = (nparam - 5) / 3;  // 4 scalars/vectors in front, 1 output at the end
  if (k < 1 || nparam != 5 + 3 * k) return 1;
  for (int i = 0; i < 3; ++i) {
    if (!IsFloat32(dtypes[i])) return 2;
  }
  if (NumElements(ndims[0], shapes[0]) != 1 || NumElements(ndims[1], shapes[1]) != 1) return 3;
  if (NumElements(ndims[2], shapes[2]) != k || NumElements(ndims[3], shapes[3]) != 1) return 3;
  if (std::strcmp(dtypes[3], "int32") != 0) return 2;

  const float lr = *static_cast<const float *>(params[0]);
  const float momentum = *static_cast<const float *>(params[1]);
  const float *decay = static_cast<const float *>(params[2]);
  const int max_threads = *static_cast<const int32_t *>(params[3]);

  std::vector<Slot> slots(k);
  int64_t total = 0;
  for (int i = 0; i < k; ++i) {
    const int p = 4 + i, g = 4 + k + i, m = 4 + 2 * k + i;
    if (!IsFloat32(dtypes[p]) || !IsFloat32(dtypes[g]) || !IsFloat32(dtypes[m])) return 2;
    const int64_t n = NumElements(ndims[p], shapes[p]);
    if (NumElements(ndims[g], shapes[g]) != n || NumElements(ndims[m], shapes[m]) != n) return 3;
    slots[i] = {static_cast<float *>(params[p]), static_cast<const float *>(params[g]),
                static_cast<float *>(params[m]), decay[i], n};
    total += n;
  }

  // Memory-bound: a thread per 256K elements at most, so that small models do not pay for thread start-up.
  const int64_t by_size = std::max<int64_t>(1, total >> 18);
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(max_threads, by_size)));
  // Worker t covers [total * t / threads, total * (t + 1) / threads); this thread covers the first range and,
  // if the system refused a thread, everything from the first range it did not get.
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) {
    try {
      workers.emplace_back(UpdateRange, std::cref(slots), lr, momentum, total * t / threads, total * (t + 1) / threads);
    } catch (...) {
      break;
    }
  }
  const int covered = static_cast<int>(workers.size()) + 1;
  UpdateRange(slots, lr, momentum, 0, total / threads);
  if (covered < threads) UpdateRange(slots, lr, momentum, total * covered / threads, total);
  for (std::thread &w : workers) w.join();

  *static_cast<float *>(params[nparam - 1]) = 0.0f;
  return 0;
}
