#include <ATen/ATen.h>
#include <torch/library.h>

#include "../gram.h"

namespace microvae {

// The GEMMs go to ATen's BLAS-backed bmm: on a CPU no hand-written loop beats it, and the
// savings that matter (sharing the Gram between losses, one backward GEMM) are made by the
// fused loss ops built on top.
at::Tensor gram_forward_cpu(const at::Tensor& features) {
  check_gram_inputs(features);
  auto f = features.contiguous();
  return at::bmm(f, f.transpose(1, 2));
}

at::Tensor gram_backward_cpu(const at::Tensor& grad_gram, const at::Tensor& features) {
  check_gram_backward_inputs(grad_gram, features);
  return at::bmm(grad_gram + grad_gram.transpose(1, 2), features.contiguous());
}

TORCH_LIBRARY_IMPL(microvae, CPU, m) {
  m.impl("gram_forward", &gram_forward_cpu);
  m.impl("gram_backward", &gram_backward_cpu);
}

}  // namespace microvae
