/* The libc calls CPython's socketmodule.c needs that wasi-libc (WASI preview 1) lacks, for
   the wasm CPython's _socket side module (build/src/stdlib.rs, docs/stdlib.md).

   - socketpair() asks the host for a connected pair of virtual stream sockets: it accepts
     from the reserved descriptor PYMODE_SOCKETPAIR_FD (defined on the command line from
     pymode_abi::host::socketpair), and the pair is that descriptor and the next one. The
     loader's wrappers of the WASI functions (loader/src/socketpair.rs) make both work with
     recv, send, shutdown, close, fcntl and poll. A host without them answers EBADF or
     ENOTSOCK, which socketpair() returns as the error.
   - What WASI preview 1 cannot do at all (create, bind, connect, name a socket, resolve a
     name) fails with an errno that says so, never traps. */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <wasi/api.h>

#include "pymode_socket_shim.h"

#ifndef NO_RECOVERY
#define NO_RECOVERY 3 /* musl's value; its netdb.h hides it without _GNU_SOURCE */
#endif

#ifndef PYMODE_SOCKETPAIR_FD
#error "PYMODE_SOCKETPAIR_FD must be defined (pymode_abi::host::socketpair::FACTORY_FD)"
#endif

int socketpair(int domain, int type, int protocol, int sv[2]) {
    if (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM || protocol != 0) {
        errno = EPROTONOSUPPORT;
        return -1;
    }
    __wasi_fd_t fd;
    __wasi_fdflags_t flags = (type & SOCK_NONBLOCK) ? __WASI_FDFLAGS_NONBLOCK : 0;
    __wasi_errno_t error = __wasi_sock_accept(PYMODE_SOCKETPAIR_FD, flags, &fd);
    if (error != 0) {
        errno = error;
        return -1;
    }
    sv[0] = (int)fd;
    sv[1] = (int)fd + 1;
    return 0;
}

/* WASI preview 1 has no socket options to set. */
int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    errno = ENOPROTOOPT;
    return -1;
}

/* Sockets are made by the host, not by the guest: nothing to bind, connect or listen on. */
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    errno = ENOTSUP;
    return -1;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    errno = ENOTSUP;
    return -1;
}

int listen(int fd, int backlog) {
    errno = ENOTSUP;
    return -1;
}

/* WASI preview 1 cannot tell a socket's addresses. */
int getsockname(int fd, struct sockaddr *addr, socklen_t *len) {
    errno = ENOTSUP;
    return -1;
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *len) {
    errno = ENOTSUP;
    return -1;
}

/* WASI has no host name. */
int gethostname(char *name, size_t len) {
    static const char localhost[] = "localhost";
    if (len < sizeof localhost) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(name, localhost, sizeof localhost);
    return 0;
}

/* No resolver: every look-up fails as non-recoverable, which socket.gaierror and
   socket.herror report. */
int getaddrinfo(const char *restrict host, const char *restrict serv, const struct addrinfo *restrict hint,
                struct addrinfo **restrict res) {
    *res = NULL;
    return EAI_FAIL;
}

void freeaddrinfo(struct addrinfo *res) {}

int getnameinfo(const struct sockaddr *restrict sa, socklen_t sl, char *restrict node, socklen_t nodelen,
                char *restrict serv, socklen_t servlen, int flags) {
    return EAI_FAIL;
}

const char *gai_strerror(int ecode) {
    return ecode == EAI_FAIL ? "name resolution is not available on WASI preview 1" : "name resolution failed";
}

static int pymode_h_errno;

int *__h_errno_location(void) {
    return &pymode_h_errno;
}

const char *hstrerror(int ecode) {
    return "host look-up is not available on WASI preview 1";
}

struct hostent *gethostbyname(const char *name) {
    pymode_h_errno = NO_RECOVERY;
    return NULL;
}

struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type) {
    pymode_h_errno = NO_RECOVERY;
    return NULL;
}
