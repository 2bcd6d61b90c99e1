// Operator schemas and the Python module `microvae._C`. Kernels register themselves per
// device in csrc/cpu and csrc/cuda (the torchvision csrc/ops layout).
#include <Python.h>
#include <torch/library.h>

#include "gram.h"

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

}  // namespace microvae

TORCH_LIBRARY(microvae, m) {
  m.def("gram_forward(Tensor features) -> Tensor");
  m.def("gram_backward(Tensor grad_gram, Tensor features) -> Tensor");
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
