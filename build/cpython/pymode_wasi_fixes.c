/* Fixes linked into python.wasm for zig 0.17.1's single-threaded wasi-libc.
 *
 * pthread_key_delete: musl's version walks the thread list through td->next, which is only
 * set up in _REENTRANT builds, so it never terminates; Py_Finalize reaches it through
 * PyThread_tss_delete. With one thread, clearing the key's value is all that deleting it
 * has to do. This strong definition takes precedence over libc's weak alias.
 *
 * dup: WASI preview 1 has none, and wasi-libc hides its declaration. The pymode host makes
 * aliases of real descriptors (sock_accept with PYMODE_DUP_FLAG, pymode_abi::host::socketpair):
 * an alias shares its descriptor's file and offset, as dup's result does, and the descriptor
 * stays open in the host until the last alias is closed. A host without aliases answers an
 * error, and dup fails with it. config.site-pymode sets HAVE_DUP, so _Py_dup and os.dup use it.
 */
#include <errno.h>
#include <pthread.h>
#include <wasi/api.h>

#ifndef PYMODE_DUP_FLAG
#error "PYMODE_DUP_FLAG must be defined (pymode_abi::host::socketpair::DUP_FLAG)"
#endif

int pthread_key_delete(pthread_key_t key) {
    pthread_setspecific(key, 0);
    return 0;
}


int dup(int fd) {
    __wasi_fd_t alias;
    __wasi_errno_t error = __wasi_sock_accept((__wasi_fd_t)fd, PYMODE_DUP_FLAG, &alias);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return (int)alias;
}
