/* Force-included (-include) into CPython's Modules/_ctypes/*.c when they are built as the
   wasm CPython's _ctypes side module (build/src/stdlib.rs). libffi is abi/c/pymode_ffi.c, over
   the host. Two things differ from a native build:
   - dlopen(NULL) (ctypes.CDLL(None), and ctypes.pythonapi at import) is the main program:
     the dlfcn shim in python.wasm refuses it, so these names send ctypes to
     pymode_ctypes_shim.c, which answers with a handle that dlsym turns into RTLD_DEFAULT
     (the main module's exports and every RTLD_GLOBAL library).
   - ffi_call cannot fail in libffi; here it can (a signature that does not match the
     callee's wasm type, a callee that traps). callproc.c is compiled with one edit that
     calls pymode_ctypes_raise_ffi_error() after the call, which sets the Python exception. */
#ifndef PYMODE_CTYPES_SHIM_H
#define PYMODE_CTYPES_SHIM_H

#include <dlfcn.h>

#define dlopen pymode_ctypes_dlopen
#define dlsym pymode_ctypes_dlsym
#define dlclose pymode_ctypes_dlclose

void *pymode_ctypes_dlopen(const char *path, int flags);
void *pymode_ctypes_dlsym(void *handle, const char *name);
int pymode_ctypes_dlclose(void *handle);
/* 1 with a Python exception set if the last ffi_call failed, else 0. */
int pymode_ctypes_raise_ffi_error(void);

#endif
