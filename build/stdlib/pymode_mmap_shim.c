/* mmap for the wasm CPython's mmap side module (build/src/stdlib.rs, docs/stdlib.md): maps
   are copies in linear memory, as in wasi-libc's emulation, but a MAP_SHARED map opened for
   writing is written back to its file with pwrite by msync (mmap.flush) and by munmap
   (mmap.close, or the object going away). Other processes cannot share the memory, and a
   write to the file through the descriptor is not seen by the map (WASI preview 1 has no
   shared memory with the host's page cache).

   A map outlives its file's descriptor (`mmap.mmap(f.fileno(), 0)`, then `f.close()`), so
   a map to write back, and the module's own copy of the descriptor, are aliases the host
   makes (sock_accept with PYMODE_DUP_FLAG: pymode_abi::host::socketpair). A host without
   them answers an error (ENOTSOCK); then the caller's descriptor is used, and must stay open. */
#define _WASI_EMULATED_MMAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

#include "pymode_mmap_shim.h"
/* This file uses the real calls. */
#undef mmap
#undef munmap
#undef msync
#undef _Py_dup
#undef close

#ifndef PYMODE_DUP_FLAG
#error "PYMODE_DUP_FLAG must be defined (pymode_abi::host::socketpair::DUP_FLAG)"
#endif

/* A host-made alias of fd, or -1 (errno set) when the host makes none. */
static int host_dup(int fd) {
    __wasi_fd_t alias;
    __wasi_errno_t error = __wasi_sock_accept((__wasi_fd_t)fd, PYMODE_DUP_FLAG, &alias);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return (int)alias;
}

struct pymode_map {
    struct pymode_map *next;
    char *data;
    size_t length;
    off_t offset;
    int prot;
    int flags;
    int fd;       /* the file to write back to, or -1 */
    int owns_fd;  /* fd is an alias of ours, closed with the map */
};

static struct pymode_map *maps;

void *pymode_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    int kind = flags & (MAP_SHARED | MAP_PRIVATE);
    /* PROT_NONE (a guard map) and PROT_EXEC are accepted as natively, but mean nothing here:
       wasm has no page protection, and linear memory is never executed. */
    if ((kind != MAP_SHARED && kind != MAP_PRIVATE) || (flags & MAP_FIXED) || length == 0 || offset < 0) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    struct pymode_map *map = malloc(sizeof *map);
    char *data = map ? malloc(length) : NULL;
    if (!data) {
        free(map);
        errno = ENOMEM;
        return MAP_FAILED;
    }
    size_t filled = 0;
    if (!(flags & MAP_ANON)) {
        while (filled < length) {
            ssize_t n = pread(fd, data + filled, length - filled, offset + (off_t)filled);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int saved = errno;
                free(data);
                free(map);
                errno = saved;
                return MAP_FAILED;
            }
            if (n == 0)
                break;
            filled += (size_t)n;
        }
    }
    memset(data + filled, 0, length - filled);
    int write_fd = -1, owns_fd = 0;
    if (kind == MAP_SHARED && (prot & PROT_WRITE) && !(flags & MAP_ANON)) {
        write_fd = host_dup(fd);
        owns_fd = write_fd >= 0;
        if (!owns_fd)
            write_fd = fd;
    }
    *map = (struct pymode_map){
        .next = maps,
        .data = data,
        .length = length,
        .offset = offset,
        .prot = prot,
        .flags = flags,
        .fd = write_fd,
        .owns_fd = owns_fd,
    };
    maps = map;
    return data;
}

/* The map holding [addr, addr + length). */
static struct pymode_map *find(const char *addr, size_t length) {
    for (struct pymode_map *m = maps; m; m = m->next) {
        if (addr >= m->data && length <= m->length && (size_t)(addr - m->data) <= m->length - length)
            return m;
    }
    return NULL;
}

/* Writes [from, from + length) of a shared writable file map back to the file. */
static int write_back(struct pymode_map *m, const char *from, size_t length) {
    if (m->fd < 0)
        return 0;
    size_t done = 0;
    off_t at = m->offset + (off_t)(from - m->data);
    while (done < length) {
        ssize_t n = pwrite(m->fd, from + done, length - done, at + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

int pymode_msync(void *addr, size_t length, int flags) {
    struct pymode_map *m = find(addr, length);
    if (!m) {
        errno = ENOMEM; /* as Linux says for an unmapped range */
        return -1;
    }
    return write_back(m, addr, length);
}

int pymode_munmap(void *addr, size_t length) {
    for (struct pymode_map **link = &maps; *link; link = &(*link)->next) {
        struct pymode_map *m = *link;
        if (m->data != addr)
            continue;
        if (m->length != length) {
            errno = EINVAL; /* partial unmapping is not supported */
            return -1;
        }
        int result = write_back(m, m->data, m->length);
        int saved = errno;
        if (m->owns_fd)
            close(m->fd);
        *link = m->next;
        free(m->data);
        free(m);
        errno = saved;
        return result;
    }
    errno = EINVAL;
    return -1;
}

/* Descriptors handed out by pymode_mmap_dup, with how many times. */
static struct {
    int fd;
    int count;
} lent[64];

/* Stands in for CPython's _Py_dup, which WASI cannot do: the host's alias, or else the same
   descriptor, counted so that the module's close() of it leaves it open for its owner.
   Raises OSError as _Py_dup does. */
int pymode_mmap_dup(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    int alias = host_dup(fd);
    if (alias >= 0)
        return alias;
    size_t slot = sizeof lent / sizeof lent[0];
    for (size_t i = 0; i < sizeof lent / sizeof lent[0]; i++) {
        if (lent[i].count > 0 && lent[i].fd == fd) {
            lent[i].count++;
            return fd;
        }
        if (lent[i].count == 0 && slot == sizeof lent / sizeof lent[0])
            slot = i;
    }
    if (slot == sizeof lent / sizeof lent[0]) {
        errno = EMFILE;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    lent[slot].fd = fd;
    lent[slot].count = 1;
    return fd;
}

int pymode_mmap_close(int fd) {
    for (size_t i = 0; i < sizeof lent / sizeof lent[0]; i++) {
        if (lent[i].count > 0 && lent[i].fd == fd) {
            lent[i].count--;
            return 0;
        }
    }
    return close(fd);
}
