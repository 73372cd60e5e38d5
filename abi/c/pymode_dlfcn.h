/* pymode_dlfcn.h: the host imports a PyMode guest uses to load side modules.
 *
 * The host (pymode-loader) provides these in import module "pymode"; the signatures are the
 * contract in pymode-abi's `host` module (DESIGN §2). Strings are passed as pointer and
 * length, never NUL-terminated, so the host can bounds-check them without scanning guest
 * memory.
 */
#ifndef PYMODE_DLFCN_H
#define PYMODE_DLFCN_H

#include <stdint.h>

#define PYMODE_IMPORT(name) __attribute__((import_module("pymode"), import_name(name)))

/* Returns a handle >= 0, or -1 on error. Behaves as RTLD_NOW | RTLD_LOCAL. */
PYMODE_IMPORT("dl_open") int32_t pymode_dl_open(const char *path, int32_t path_len);

/* As pymode_dl_open, with RTLD_* flags from <dlfcn.h>. */
PYMODE_IMPORT("dl_open_flags") int32_t pymode_dl_open_flags(const char *path, int32_t path_len, int32_t flags);

/* A function's canonical table index, a data symbol's address, or 0 if not found.
 * handle PYMODE_DEFAULT_HANDLE searches every library opened with RTLD_GLOBAL. */
PYMODE_IMPORT("dl_sym") int32_t pymode_dl_sym(int32_t handle, const char *name, int32_t name_len);

/* Releases one reference to a handle. */
PYMODE_IMPORT("dl_close") void pymode_dl_close(int32_t handle);

/* Copies the last error (not NUL-terminated, at most buf_len bytes) and returns the bytes
 * written; 0 if there is none. Reading clears it. */
PYMODE_IMPORT("dl_error") int32_t pymode_dl_error(char *buf, int32_t buf_len);

/* The number of parameters of the function at a table index, if its parameters and its one
 * result are all i32; -1 otherwise. For calling a function through a pointer of another
 * type with the arguments it actually takes (wasm traps on a signature mismatch). */
PYMODE_IMPORT("fn_arity") int32_t pymode_fn_arity(int32_t table_index);

/* Calls `func` (a function pointer, i.e. a table index) with as many of (a, b, c) as it
 * takes, asking pymode_fn_arity once per function (cached; dlclose clears the cache). For
 * callers that hold a function pointer of the wrong type: CPython's C-call macros on
 * wasm32-wasi (testdata/cpython/pycore_emscripten_trampoline.h). */
void *pymode_call_trampoline(void *func, void *a, void *b, void *c);

#define PYMODE_DEFAULT_HANDLE (-1)
#define PYMODE_OPEN_FAILED (-1)

#endif
