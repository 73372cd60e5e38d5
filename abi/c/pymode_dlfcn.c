/* pymode_dlfcn.c: dlopen/dlsym/dlerror/dlclose for a wasm32-wasi main module, on top of the
 * pymode host imports. CPython's Python/dynload_shlib.c uses these unmodified.
 *
 * Strong definitions here take precedence over the libc's stub dlopen ("not implemented").
 * A void* handle is the host handle plus one, so that handle 0 is not NULL.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pymode_dlfcn.h"

/* dlerror() returns a NUL-terminated string that stays valid until the next call. */
static char pymode_error_buf[512];
static int pymode_error_pending;
/* Errors raised here rather than by the host (a NULL path). */
static const char *pymode_local_error;

static void *handle_to_ptr(int32_t handle) { return (void *)(uintptr_t)((uint32_t)handle + 1u); }

static int32_t ptr_to_handle(void *ptr) {
    if (ptr == RTLD_DEFAULT) return PYMODE_DEFAULT_HANDLE;
    return (int32_t)((uintptr_t)ptr - 1u);
}

void *dlopen(const char *path, int flags) {
    if (path == NULL) {
        /* dlopen(NULL) asks for the main program; symbols there are reached with RTLD_DEFAULT. */
        pymode_local_error = "dlopen(NULL) is not supported; use RTLD_DEFAULT with dlsym";
        pymode_error_pending = 1;
        return NULL;
    }
    int32_t handle = pymode_dl_open_flags(path, (int32_t)strlen(path), flags);
    if (handle == PYMODE_OPEN_FAILED) {
        pymode_local_error = NULL;
        pymode_error_pending = 1;
        return NULL;
    }
    return handle_to_ptr(handle);
}

void *dlsym(void *restrict handle, const char *restrict name) {
    int32_t value = pymode_dl_sym(ptr_to_handle(handle), name, (int32_t)strlen(name));
    if (value == 0) {
        pymode_local_error = NULL;
        pymode_error_pending = 1;
        return NULL;
    }
    return (void *)(uintptr_t)(uint32_t)value;
}

/* The arity cache of pymode_call_trampoline: direct-mapped, keyed by table index, so the
 * host is asked once per function. dlclose empties it: the loader reuses a closed library's
 * table slots, possibly for functions of another arity. */
#define PYMODE_ARITY_CACHE 4096
static int32_t arity_cache_index[PYMODE_ARITY_CACHE];
static int16_t arity_cache_value[PYMODE_ARITY_CACHE]; /* wide enough for PYMODE_FN_ARITY_NO_RESULT */

int dlclose(void *handle) {
    pymode_dl_close(ptr_to_handle(handle));
    memset(arity_cache_index, 0, sizeof arity_cache_index);
    return 0;
}

static int32_t pymode_arity(int32_t index) {
    uint32_t slot = (uint32_t)index % PYMODE_ARITY_CACHE;
    if (arity_cache_index[slot] == index && index != 0)
        return arity_cache_value[slot];
    int32_t arity = pymode_fn_arity(index);
    arity_cache_index[slot] = index;
    arity_cache_value[slot] = (int16_t)arity;
    return arity;
}

/* pymode.fn_arity's flag for a function that returns nothing (pymode_abi::host). */
#define PYMODE_FN_ARITY_NO_RESULT 0x100

void *pymode_call_trampoline(void *func, void *a, void *b, void *c) {
    int32_t arity = pymode_arity((int32_t)(uintptr_t)func);
    if (arity >= 0 && (arity & PYMODE_FN_ARITY_NO_RESULT)) {
        /* A void function in a slot whose callers expect a result (a tp_clear declared
         * void): called with the arguments it takes; the caller gets 0, which is what a
         * well-typed tp_clear returns. */
        switch (arity & ~PYMODE_FN_ARITY_NO_RESULT) {
        case 0:
            ((void (*)(void))func)();
            return NULL;
        case 1:
            ((void (*)(void *))func)(a);
            return NULL;
        case 2:
            ((void (*)(void *, void *))func)(a, b);
            return NULL;
        case 3:
            ((void (*)(void *, void *, void *))func)(a, b, c);
            return NULL;
        default:
            break;
        }
    }
    switch (arity) {
    case 0:
        return ((void *(*)(void))func)();
    case 1:
        return ((void *(*)(void *))func)(a);
    case 2:
        return ((void *(*)(void *, void *))func)(a, b);
    default:
        /* 3, or a type the host could not describe: the call as the caller wrote it. */
        return ((void *(*)(void *, void *, void *))func)(a, b, c);
    }
}

char *dlerror(void) {
    if (!pymode_error_pending) return NULL;
    pymode_error_pending = 0;
    if (pymode_local_error != NULL) {
        size_t n = strlen(pymode_local_error);
        if (n >= sizeof pymode_error_buf) n = sizeof pymode_error_buf - 1;
        memcpy(pymode_error_buf, pymode_local_error, n);
        pymode_error_buf[n] = 0;
        pymode_local_error = NULL;
        return pymode_error_buf;
    }
    int32_t n = pymode_dl_error(pymode_error_buf, (int32_t)sizeof pymode_error_buf - 1);
    if (n <= 0) {
        static const char unknown[] = "pymode: dynamic loading failed (no message from the host)";
        memcpy(pymode_error_buf, unknown, sizeof unknown);
        return pymode_error_buf;
    }
    pymode_error_buf[n] = 0;
    return pymode_error_buf;
}
