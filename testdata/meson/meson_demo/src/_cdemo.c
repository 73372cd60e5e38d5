/* meson_demo._cdemo: calls into the package's static library and reports what meson's
   compile checks found for the target. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "demo_config.h"

double demo_norm(const double *values, int count);

static PyObject *norm(PyObject *self, PyObject *args) {
    double values[3];
    if (!PyArg_ParseTuple(args, "ddd", &values[0], &values[1], &values[2])) return NULL;
    return PyFloat_FromDouble(demo_norm(values, 3));
}

static PyObject *config(PyObject *self, PyObject *unused) {
    return Py_BuildValue("{s:i,s:i,s:i}", "sizeof_long", DEMO_SIZEOF_LONG, "sizeof_long_double",
                         DEMO_SIZEOF_LONG_DOUBLE, "have_hypot", DEMO_HAVE_HYPOT);
}

static PyMethodDef methods[] = {
    {"norm", norm, METH_VARARGS, "The Euclidean norm of three numbers."},
    {"config", config, METH_NOARGS, "What meson's compile checks found."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cdemo", NULL, 0, methods};

PyMODINIT_FUNC PyInit__cdemo(void) { return PyModule_Create(&module); }
