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

