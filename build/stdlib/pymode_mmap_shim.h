/* Force-included (-include) into CPython's Modules/mmapmodule.c when it is built as the wasm
   CPython's mmap side module. wasi-libc's emulated mman (in python.wasm) copies a file into
   malloc'd memory and never writes it back, and has no msync; these names send the module
   to pymode_mmap_shim.c instead, whose shared writable maps are written back to their file
   (pwrite) by flush() and close(). WASI has no dup(): the module's private copy of the
   descriptor is an alias the host makes, or else the caller's own descriptor, whose
   closing is then left to the caller. */
#ifndef PYMODE_MMAP_SHIM_H
#define PYMODE_MMAP_SHIM_H

#include <stddef.h>
#include <sys/types.h>

#define mmap pymode_mmap
#define munmap pymode_munmap
#define msync pymode_msync
#define _Py_dup pymode_mmap_dup
#define close pymode_mmap_close

void *pymode_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
int pymode_munmap(void *addr, size_t length);
int pymode_msync(void *addr, size_t length, int flags);
int pymode_mmap_dup(int fd);
int pymode_mmap_close(int fd);

#endif
