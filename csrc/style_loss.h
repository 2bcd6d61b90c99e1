#pragma once
// Fused per-layer style loss: the Gram matrix of one feature layer and its style loss against
// reference Grams in one op, with a backward that spends a single GEMM on dL/dF whatever the
// number of losses (style, mode collapse) that consumed the Gram.
//
//   G[b]  = scale * F[b] F[b]^T                           F: (B, C, N), G: (B, C, C)
//   paired    (mode 1): L = 1/B sum_b ||G[b] - R[b]||^2   R: (B, C, C)
//   all_pairs (mode 2): L = 1/(B P) sum_s sum_p ||G[s] - R[p]||^2, R: (P, C, C), evaluated in O(B + P)
//                       as Var(G) + Var(R) + ||mean G - mean R||^2 (the DESIGN.md identity in its
//                       centred form, which avoids cancelling large sums in floating point).
//
// The op logic is written once over a device "kernels" policy K providing two primitives:
//   K::sqdist(a, b)  -> 0-dim float64 tensor, sum_i (a[i] - b[i mod b.numel()])^2
//   K::scaled_diff(a, b, gg, grad_loss, k, scale, symmetrize)
//                    -> scale * (h + h^T) if symmetrize else scale * h, where
//                       h[i] = k * grad_loss * (a[i] - b[i mod b.numel()]) + gg[i],
//                       a (M, C, C), gg (M, C, C) optional, ^T transposing each C x C block.
#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace microvae {

constexpr int64_t kStylePaired = 1;
constexpr int64_t kStyleAllPairs = 2;

void check_style_inputs(const at::Tensor& features, const at::Tensor& ref_gram, int64_t mode);
void check_style_backward_inputs(const at::Tensor& grad_loss, const std::optional<at::Tensor>& grad_gram,
                                 const at::Tensor& features, const at::Tensor& gram, const at::Tensor& ref_gram,
                                 int64_t mode);

template <typename K>
std::tuple<at::Tensor, at::Tensor> style_layer_forward_impl(const at::Tensor& features, const at::Tensor& ref_gram,
                                                            int64_t mode, double scale) {
  check_style_inputs(features, ref_gram, mode);
  const auto f = features.contiguous();
  const auto ref = ref_gram.contiguous();
  const int64_t B = f.size(0), C = f.size(1);
  // beta = 0: the uninitialized input is ignored, so this is one GEMM with the scale folded in.
  auto gram = at::baddbmm(at::empty({B, C, C}, f.options()), f, f.transpose(1, 2), 0.0, scale);
  at::Tensor loss;
  if (mode == kStylePaired) {
    loss = K::sqdist(gram, ref) / static_cast<double>(B);
  } else {
    const auto gm = gram.mean(0), rm = ref.mean(0);
    loss = K::sqdist(gram, gm) / static_cast<double>(B) + K::sqdist(ref, rm) / static_cast<double>(ref.size(0)) +
           K::sqdist(gm, rm);
  }
  return {loss.to(f.scalar_type()), gram};
}

// Returns (dL/dF, dL/dR); dL/dR is an undefined tensor unless ref_grad.
template <typename K>
std::tuple<at::Tensor, at::Tensor> style_layer_backward_impl(const at::Tensor& grad_loss,
                                                             const std::optional<at::Tensor>& grad_gram,
                                                             const at::Tensor& features, const at::Tensor& gram,
                                                             const at::Tensor& ref_gram, int64_t mode, double scale,
                                                             bool ref_grad) {
  check_style_backward_inputs(grad_loss, grad_gram, features, gram, ref_gram, mode);
  const auto f = features.contiguous();
  const auto g = gram.contiguous();
  const auto ref = ref_gram.contiguous();
  const double B = static_cast<double>(f.size(0)), P = static_cast<double>(ref.size(0));
  const auto gl = grad_loss.to(at::kDouble);
  std::optional<at::Tensor> gg;
  if (grad_gram.has_value() && grad_gram->defined()) gg = grad_gram->contiguous();
  // dL/dG[b] = 2/B (G[b] - T[b]) with T = R (paired) or mean R (all_pairs). With D = dL/dG plus
  // the gradient arriving on the Gram output (from the mode-collapse loss), the Gram backward is
  // dF = scale (D + D^T) F: one GEMM for both losses. (D is not assumed symmetric: references
  // need not be exact Grams.)
  const auto target = mode == kStylePaired ? ref : ref.mean(0);
  const auto d = K::scaled_diff(g, target, gg, gl, 2.0 / B, scale, true);
  auto grad_features = at::bmm(d, f);
  at::Tensor grad_ref;
  if (ref_grad) {
    grad_ref = mode == kStylePaired ? K::scaled_diff(g, ref, std::nullopt, gl, -2.0 / B, 1.0, false)
                                    : K::scaled_diff(ref, g.mean(0), std::nullopt, gl, 2.0 / P, 1.0, false);
  }
  return {grad_features, grad_ref};
}

}  // namespace microvae
