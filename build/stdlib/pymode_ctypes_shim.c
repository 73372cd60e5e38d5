/* See pymode_ctypes_shim.h. Compiled without the renames, so dlopen here is python.wasm's. */
#include <Python.h>
#include <dlfcn.h>

#include "ffi.h"

/* The handle dlopen(NULL) returns: any address that is no real handle (the dlfcn shim's
   handles are small integers). */
static char main_program;

void *pymode_ctypes_dlopen(const char *path, int flags) {
    if (path == NULL) return &main_program;
    return dlopen(path, flags);
}

void *pymode_ctypes_dlsym(void *handle, const char *name) {
    return dlsym(handle == &main_program ? RTLD_DEFAULT : handle, name);
}

int pymode_ctypes_dlclose(void *handle) {
    if (handle == &main_program) return 0;
    return dlclose(handle);
}

int pymode_ctypes_raise_ffi_error(void) {
    int status = pymode_ffi_last_status();
    if (status == 0) return 0;
    /* A wrong signature is the caller's type error; a trap is the callee failing, as an
       access violation is an OSError in ctypes on Windows. */
    PyObject *type = status == PYMODE_FFI_MISMATCH ? PyExc_TypeError : status == PYMODE_FFI_TRAPPED ? PyExc_OSError : PyExc_RuntimeError;
    PyErr_SetString(type, pymode_ffi_last_error());
    return 1;
}
