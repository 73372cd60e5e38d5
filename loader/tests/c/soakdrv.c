/* soakdrv: the soak test's driver extension (loader/tests/all/soak.rs). */
#include <Python.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

#define MARKS 32
static uint32_t dtor_total;
static long long mark_pages[MARKS], mark_table[MARKS], mark_traced[MARKS], mark_dtors[MARKS];
static int mark_used[MARKS];
static PyObject *traced_memory;

static PyObject *fail(const char *what) {
    const char *e = dlerror();
    PyErr_Format(PyExc_OSError, "%s: %s", what, e ? e : "(no dlerror)");
    return NULL;
}

/* Handles stay in C, indexed by module number: as Python ints, those past 256 (not cached by
   CPython) would make the traced heap differ between rounds. */
#define MAX_MODULES 1024
static void *handles[MAX_MODULES];

static void *handle_at(PyObject *index) {
    long i = PyLong_AsLong(index);
    if (i < 0 || i >= MAX_MODULES || !handles[i]) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_IndexError, "no open module %ld", i);
        return NULL;
    }
    return handles[i];
}

/* open(i, path): dlopen into slot i. */
static PyObject *drv_open(PyObject *self, PyObject *args) {
    long i;
    const char *path;
    if (!PyArg_ParseTuple(args, "ls", &i, &path)) return NULL;
    if (i < 0 || i >= MAX_MODULES || handles[i]) return PyErr_Format(PyExc_IndexError, "slot %ld", i);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return fail(path);
    handles[i] = h;
    Py_RETURN_NONE;
}

/* The loader's handle of module i (the shim's pointer is the handle plus one). */
static PyObject *drv_handle(PyObject *self, PyObject *index) {
    void *h = handle_at(index);
    return h ? PyLong_FromLong((long)((uintptr_t)h - 1u)) : NULL;
}

static PyObject *drv_sym(PyObject *self, PyObject *args) {
    PyObject *index;
    const char *name;
    if (!PyArg_ParseTuple(args, "Os", &index, &name)) return NULL;
    void *h = handle_at(index);
    if (!h) return NULL;
    void *p = dlsym(h, name);
    if (!p) return fail(name);
    return PyLong_FromVoidPtr(p);
}

static PyObject *drv_close(PyObject *self, PyObject *index) {
    void *h = handle_at(index);
    if (!h) return NULL;
    handles[PyLong_AsLong(index)] = NULL;
    if (dlclose(h) != 0) return fail("dlclose");
    Py_RETURN_NONE;
}

/* init(i, name): arms the module's destructor counter, then calls PyInit_<name> through
   dlsym's pointer and returns the module object. */
static PyObject *drv_init(PyObject *self, PyObject *args) {
    PyObject *index;
    const char *name;
    char sym[96];
    if (!PyArg_ParseTuple(args, "Os", &index, &name)) return NULL;
    void *h = handle_at(index);
    if (!h) return NULL;
    snprintf(sym, sizeof sym, "%s_arm", name);
    void (*arm)(uint32_t *) = (void (*)(uint32_t *))dlsym(h, sym);
    if (!arm) return fail(sym);
    arm(&dtor_total);
    snprintf(sym, sizeof sym, "PyInit_%s", name);
    PyObject *(*init)(void) = (PyObject *(*)(void))dlsym(h, sym);
    if (!init) return fail(sym);
    return init();
}

static PyObject *drv_load_u32(PyObject *self, PyObject *arg) {
    const uint32_t *p = PyLong_AsVoidPtr(arg);
    if (!p) return PyErr_Occurred() ? NULL : fail("load_u32(NULL)");
    return PyLong_FromUnsignedLong(*p);
}

static long table_size(void) {
    unsigned long n;
    __asm__ volatile("table.size __indirect_function_table\n\tlocal.set %0" : "=r"(n));
    return (long)n;
}

/* tracemalloc.get_traced_memory, called by mark(). */
static PyObject *drv_setup(PyObject *self, PyObject *arg) {
    Py_XSETREF(traced_memory, Py_NewRef(arg));
    Py_RETURN_NONE;
}

/* The first item of f()'s tuple: current traced bytes. */
static long long traced_now(PyObject *f) {
    PyObject *r = PyObject_CallNoArgs(f);
    if (!r) return -1;
    PyObject *current = PyTuple_GetItem(r, 0);
    long long v = current ? PyLong_AsLongLong(current) : -1;
    Py_DECREF(r);
    return v;
}

/* Records the measurements in C arrays: nothing allocated here outlives the call. */
static PyObject *drv_mark(PyObject *self, PyObject *arg) {
    long slot = PyLong_AsLong(arg);
    if (slot < 0 || slot >= MARKS) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_IndexError, "mark slot");
        return NULL;
    }
    if (!traced_memory) {
        PyErr_SetString(PyExc_RuntimeError, "setup() first");
        return NULL;
    }
    mark_traced[slot] = traced_now(traced_memory);
    if (PyErr_Occurred()) return NULL;
    mark_pages[slot] = (long long)__builtin_wasm_memory_size(0);
    mark_table[slot] = table_size();
    mark_dtors[slot] = dtor_total;
    mark_used[slot] = 1;
    Py_RETURN_NONE;
}

static PyObject *drv_marks(PyObject *self, PyObject *unused) {
    PyObject *list = PyList_New(0);
    if (!list) return NULL;
    for (int i = 0; i < MARKS; i++) {
        if (!mark_used[i]) continue;
        PyObject *t = Py_BuildValue("iLLLL", i, mark_pages[i], mark_table[i], mark_traced[i], mark_dtors[i]);
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(t);
    }
    return list;
}

static PyMethodDef methods[] = {
    {"open", drv_open, METH_VARARGS, NULL},
    {"handle", drv_handle, METH_O, NULL},
    {"sym", drv_sym, METH_VARARGS, NULL},
    {"close", drv_close, METH_O, NULL},
    {"init", drv_init, METH_VARARGS, NULL},
    {"load_u32", drv_load_u32, METH_O, NULL},
    {"setup", drv_setup, METH_O, NULL},
    {"mark", drv_mark, METH_O, NULL},
    {"marks", drv_marks, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "soakdrv", NULL, -1, methods};
PyMODINIT_FUNC PyInit_soakdrv(void) { return PyModule_Create(&def); }
