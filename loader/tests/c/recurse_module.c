/* A C extension for the recursion tests (loader/tests/all/recursion.rs): recursion that runs
 * through a side module's own frames, guarded the way extensions guard it, and recursion
 * that goes from the side module back into Python and in again. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* depth(obj): how deep lists nest in obj, walking them in C. */
static long nesting(PyObject *obj) {
    if (!PyList_Check(obj)) {
        return 0;
    }
    if (Py_EnterRecursiveCall(" in recurse.depth")) {
        return -1;
    }
    long deepest = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(obj); i++) {
        long d = nesting(PyList_GET_ITEM(obj, i));
        if (d < 0) {
            deepest = -1;
            break;
        }
        if (d > deepest) {
            deepest = d;
        }
    }
    Py_LeaveRecursiveCall();
    return deepest < 0 ? -1 : deepest + 1;
}

static PyObject *depth(PyObject *self, PyObject *obj) {
    long d = nesting(obj);
    return d < 0 ? NULL : PyLong_FromLong(d);
}

/* call(f): f(), from C; f may call call() again. */
static PyObject *call(PyObject *self, PyObject *f) {
    return PyObject_CallNoArgs(f);
}

static PyMethodDef methods[] = {
    {"depth", depth, METH_O, "How deep lists nest, walked in C."},
    {"call", call, METH_O, "Call f with no arguments, from C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "recurse", NULL, -1, methods};

PyMODINIT_FUNC PyInit_recurse(void) {
    return PyModule_Create(&module);
}
