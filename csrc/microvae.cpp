// Operator schemas and the Python module `microvae._C`. Kernels register themselves per
// device in csrc/cpu and csrc/cuda (the torchvision csrc/ops layout).
#include <Python.h>
#include <torch/library.h>

#include "gram.h"
#include "style_loss.h"

namespace microvae {

void check_gram_inputs(const at::Tensor& features) {
  TORCH_CHECK(features.dim() == 3, "gram: features must be (B, C, N), got ", features.dim(), " dims");
  TORCH_CHECK(at::isFloatingType(features.scalar_type()),
              "gram: features must be floating point, got ", features.scalar_type());
}

void check_gram_backward_inputs(const at::Tensor& grad_gram, const at::Tensor& features) {
  check_gram_inputs(features);
  TORCH_CHECK(grad_gram.dim() == 3 && grad_gram.size(0) == features.size(0) &&
                  grad_gram.size(1) == features.size(1) && grad_gram.size(2) == features.size(1),
              "gram_backward: grad must be (B, C, C) matching features (B, C, N), got ",
              grad_gram.sizes(), " and ", features.sizes());
}

void check_style_inputs(const at::Tensor& features, const at::Tensor& ref_gram, int64_t mode) {
  TORCH_CHECK(mode == kStylePaired || mode == kStyleAllPairs, "style_layer: mode must be 1 (paired) or ",
              "2 (all_pairs), got ", mode);
  TORCH_CHECK(features.dim() == 3, "style_layer: features must be (B, C, N), got ", features.sizes());
  TORCH_CHECK(features.scalar_type() == at::kFloat || features.scalar_type() == at::kDouble,
              "style_layer: features must be float32 or float64, got ", features.scalar_type());
  TORCH_CHECK(features.size(0) >= 1 && features.size(1) >= 1, "style_layer: empty features ", features.sizes());
  const int64_t C = features.size(1);
  TORCH_CHECK(ref_gram.dim() == 3 && ref_gram.size(1) == C && ref_gram.size(2) == C && ref_gram.size(0) >= 1,
              "style_layer: reference Grams must be (P, C, C) with C = ", C, ", got ", ref_gram.sizes());
  TORCH_CHECK(ref_gram.scalar_type() == features.scalar_type() && ref_gram.device() == features.device(),
              "style_layer: reference Grams must match the features' dtype and device");
  TORCH_CHECK(mode != kStylePaired || ref_gram.size(0) == features.size(0),
              "style_layer: paired mode needs as many references as generated images, got ",
              ref_gram.size(0), " and ", features.size(0));
}

void check_style_backward_inputs(const at::Tensor& grad_loss, const std::optional<at::Tensor>& grad_gram,
                                 const at::Tensor& features, const at::Tensor& gram, const at::Tensor& ref_gram,
                                 int64_t mode) {
  check_style_inputs(features, ref_gram, mode);
  const int64_t B = features.size(0), C = features.size(1);
  TORCH_CHECK(grad_loss.numel() == 1, "style_layer_backward: grad_loss must be a scalar, got ", grad_loss.sizes());
  TORCH_CHECK(gram.dim() == 3 && gram.size(0) == B && gram.size(1) == C && gram.size(2) == C,
              "style_layer_backward: gram must be (B, C, C) = (", B, ", ", C, ", ", C, "), got ", gram.sizes());
  TORCH_CHECK(gram.scalar_type() == features.scalar_type(), "style_layer_backward: gram dtype differs from features");
  if (grad_gram.has_value() && grad_gram->defined()) {
    TORCH_CHECK(grad_gram->sizes() == gram.sizes() && grad_gram->scalar_type() == gram.scalar_type(),
                "style_layer_backward: grad_gram must match gram, got ", grad_gram->sizes());
  }
}

}  // namespace microvae

TORCH_LIBRARY(microvae, m) {
  m.def("gram_forward(Tensor features) -> Tensor");
  m.def("gram_backward(Tensor grad_gram, Tensor features) -> Tensor");
  // Returns (loss, gram); mode 1 = paired, 2 = all_pairs; gram = scale * F F^T.
  m.def("style_layer_forward(Tensor features, Tensor ref_gram, int mode, float scale) -> (Tensor, Tensor)");
  // Returns (grad_features, grad_ref_gram); grad_ref_gram is undefined (None) unless ref_grad.
  m.def("style_layer_backward(Tensor grad_loss, Tensor? grad_gram, Tensor features, Tensor gram, "
        "Tensor ref_gram, int mode, float scale, bool ref_grad) -> (Tensor, Tensor)");
  // Returns (loss, inner) with inner = sum over layers of G G^T, the (B, B) style-vector dot products.
  m.def("mode_collapse_forward(Tensor[] grams, float eps) -> (Tensor, Tensor)");
  m.def("mode_collapse_backward(Tensor grad_loss, Tensor[] grams, Tensor inner, float eps) -> Tensor[]");
}

static PyObject* has_cuda(PyObject*, PyObject*) {
#ifdef MICROVAE_WITH_CUDA
  Py_RETURN_TRUE;
#else
  Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"has_cuda", has_cuda, METH_NOARGS, "True when the extension was compiled with CUDA kernels."},
    {nullptr, nullptr, 0, nullptr}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C",
                                        "Compiled operators of microvae (registered under torch.ops.microvae).",
                                        -1, methods};

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module_def); }
