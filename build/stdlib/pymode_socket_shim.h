/* Declarations for pymode_socket_shim.c, force-included (-include) into CPython's
   Modules/socketmodule.c when it is built as the wasm CPython's _socket side module.
   wasi-libc (WASI preview 1) declares none of these: it can use sockets the host hands in
   (accept, recv, send, shutdown) but cannot make, name or resolve any. */
#ifndef PYMODE_SOCKET_SHIM_H
#define PYMODE_SOCKET_SHIM_H

#include <sys/socket.h>

/* Constants socketmodule.c uses with bind/connect/listen, which WASI's headers leave out
   (Linux's values; the calls fail before they matter). */
#ifndef SO_ERROR
#define SO_ERROR 4
#endif
#ifndef SOMAXCONN
#define SOMAXCONN 128
#endif

int socketpair(int domain, int type, int protocol, int sv[2]);
int setsockopt(int fd, int level, int name, const void *value, socklen_t len);
int bind(int fd, const struct sockaddr *addr, socklen_t len);
int connect(int fd, const struct sockaddr *addr, socklen_t len);
int listen(int fd, int backlog);
int getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int getpeername(int fd, struct sockaddr *addr, socklen_t *len);
int gethostname(char *name, size_t len);

#endif
