// Mode-collapse loss over the style vectors s_i = concat_l vec(G_l[i]) of a batch (paper Eq. 9):
//
//   L = 2 / (B (B - 1)) sum_{i<j} (s_i . s_j)^2 / (|s_i|^2 |s_j|^2)
//
// The style vectors are never concatenated: P = sum_l G_l G_l^T (B x B, one GEMM per layer) holds
// every dot product, and the backward is dG_l = (W + W^T) G_l with W = dL/dP, again one GEMM per
// layer. Squared norms are floored at eps^2 (torch.nn.functional.normalize's eps, squared) so that
// an all-zero style vector gives a zero loss term instead of NaN.
//
// All the work is in the GEMMs and in B x B element-wise algebra, which ATen runs on whichever
// device holds the Grams, so this op has one implementation registered for every backend.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

namespace microvae {
namespace {

void check_mode_collapse_inputs(at::TensorList grams) {
  TORCH_CHECK(!grams.empty(), "mode_collapse: needs at least one Gram tensor");
  const auto& g0 = grams[0];
  for (const auto& g : grams) {
    TORCH_CHECK(g.dim() == 3 && g.size(1) == g.size(2), "mode_collapse: Grams must be (B, C, C), got ", g.sizes());
    TORCH_CHECK(g.size(0) == g0.size(0), "mode_collapse: all layers must have the same batch size, got ",
                g.size(0), " and ", g0.size(0));
    TORCH_CHECK(g.scalar_type() == g0.scalar_type() && g.device() == g0.device(),
                "mode_collapse: all Grams must share dtype and device");
    TORCH_CHECK(at::isFloatingType(g.scalar_type()), "mode_collapse: Grams must be floating point");
  }
  TORCH_CHECK(g0.size(0) >= 2, "mode_collapse: needs a batch of at least 2 images, got ", g0.size(0));
}

at::Tensor inner_products(at::TensorList grams) {
  const int64_t B = grams[0].size(0);
  auto inner = at::zeros({B, B}, grams[0].options());
  for (const auto& g : grams) {
    const auto s = g.reshape({B, -1});
    inner.addmm_(s, s.t());
  }
  return inner;
}

// Squared cosines with a zero diagonal, and the floored squared norms.
std::tuple<at::Tensor, at::Tensor> squared_cosines(const at::Tensor& inner, double eps) {
  const auto q = inner.diagonal().clamp_min(eps * eps);
  auto cos2 = inner.square() / at::outer(q, q);
  cos2.fill_diagonal_(0);
  return {cos2, q};
}

std::tuple<at::Tensor, at::Tensor> mode_collapse_forward(at::TensorList grams, double eps) {
  check_mode_collapse_inputs(grams);
  const int64_t B = grams[0].size(0);
  auto inner = inner_products(grams);
  const auto cos2 = std::get<0>(squared_cosines(inner, eps));
  return {cos2.sum() / static_cast<double>(B * (B - 1)), inner};
}

std::vector<at::Tensor> mode_collapse_backward(const at::Tensor& grad_loss, at::TensorList grams,
                                               const at::Tensor& inner, double eps) {
  check_mode_collapse_inputs(grams);
  const int64_t B = grams[0].size(0);
  TORCH_CHECK(inner.dim() == 2 && inner.size(0) == B && inner.size(1) == B,
              "mode_collapse_backward: inner products must be (B, B), got ", inner.sizes());
  const auto [cos2, q] = squared_cosines(inner, eps);
  const auto c = grad_loss.to(inner.scalar_type()) / static_cast<double>(B * (B - 1));
  // Off the diagonal dL/dP_ij = 2c P_ij / (q_i q_j); on it, through q_i = max(P_ii, eps^2),
  // dL/dP_ii = -c sum_j (cos2_ij + cos2_ji) / q_i where the floor is not active.
  auto w = 2.0 * c * inner / at::outer(q, q);
  const auto active = inner.diagonal() > eps * eps;
  w.diagonal().copy_(-c * (cos2.sum(1) + cos2.sum(0)) / q * active);
  const auto w2 = w + w.t();
  std::vector<at::Tensor> grads;
  grads.reserve(grams.size());
  for (const auto& g : grams) grads.push_back(at::mm(w2, g.reshape({B, -1})).view(g.sizes()));
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(microvae, CompositeExplicitAutograd, m) {
  m.impl("mode_collapse_forward", &mode_collapse_forward);
  m.impl("mode_collapse_backward", &mode_collapse_backward);
}

}  // namespace microvae
