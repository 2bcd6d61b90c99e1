#pragma once
#include <torch/types.h>

namespace microvae {

// Batched Gram matrix G[b] = F[b] F[b]^T for F of shape (B, C, N); G is (B, C, C).
// Backward: dF = (dG + dG^T) F, so the op is correct for any (not only symmetric) dG.
at::Tensor gram_forward_cpu(const at::Tensor& features);
at::Tensor gram_backward_cpu(const at::Tensor& grad_gram, const at::Tensor& features);

#ifdef MICROVAE_WITH_CUDA
at::Tensor gram_forward_cuda(const at::Tensor& features);
at::Tensor gram_backward_cuda(const at::Tensor& grad_gram, const at::Tensor& features);
#endif

void check_gram_inputs(const at::Tensor& features);
void check_gram_backward_inputs(const at::Tensor& grad_gram, const at::Tensor& features);

}  // namespace microvae
