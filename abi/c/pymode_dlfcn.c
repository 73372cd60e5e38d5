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

int dlclose(void *handle) {
    pymode_dl_close(ptr_to_handle(handle));
    return 0;
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
