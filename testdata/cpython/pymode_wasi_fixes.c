/* Fixes linked into python.wasm for zig 0.17.1's single-threaded wasi-libc.
 *
 * pthread_key_delete: musl's version walks the thread list through td->next, which is only
 * set up in _REENTRANT builds, so it never terminates; Py_Finalize reaches it through
 * PyThread_tss_delete. With one thread, clearing the key's value is all that deleting it
 * has to do. This strong definition takes precedence over libc's weak alias.
 */
#include <pthread.h>

int pthread_key_delete(pthread_key_t key) {
    pthread_setspecific(key, 0);
    return 0;
}

/* The call trampoline behind pycore_emscripten_trampoline.h (see there): calls `func` with
 * as many of (a, b, c) as it takes. The arity comes from the host, once per function: a
 * direct-mapped cache keyed by table index keeps the host call off the hot path. Table slots
 * are not reused for functions of another arity while CPython runs (extensions are never
 * unloaded), so a cached entry stays right.
 */
#include <stdint.h>
#include "pymode_dlfcn.h"

#define PYMODE_ARITY_CACHE 4096
static int32_t arity_cache_index[PYMODE_ARITY_CACHE];
static int8_t arity_cache_value[PYMODE_ARITY_CACHE];

static int32_t pymode_arity(int32_t index) {
    uint32_t slot = (uint32_t)index % PYMODE_ARITY_CACHE;
    if (arity_cache_index[slot] == index && index != 0)
        return arity_cache_value[slot];
    int32_t arity = pymode_fn_arity(index);
    arity_cache_index[slot] = index;
    arity_cache_value[slot] = (int8_t)arity;
    return arity;
}

void *_PyMode_TrampolineCall(void *func, void *a, void *b, void *c) {
    switch (pymode_arity((int32_t)(uintptr_t)func)) {
    case 0:
        return ((void *(*)(void))func)();
    case 1:
        return ((void *(*)(void *))func)(a);
    case 2:
        return ((void *(*)(void *, void *))func)(a, b);
    default:
        /* 3, or a type the host could not describe: the call CPython would make. */
        return ((void *(*)(void *, void *, void *))func)(a, b, c);
    }
}
