/* A side module over zlib: linked by `pymode-ld -shared zlib_user.o libz.a`, where libz.a is
 * zlib built by its own configure/make without -fPIC (`cargo xtask staticlib zlib`), so the
 * zlib code in the module is code pymode-ld rewrote. loader/tests/all/staticlib.rs drives it
 * through zlib_main.c. */
#include <zlib.h>

const char *zu_version(void) { return zlibVersion(); }

unsigned long zu_bound(unsigned long n) { return compressBound(n); }

/* Returns zlib's status; *dst_len is the capacity on entry and the size on return. */
int zu_compress(unsigned char *dst, unsigned long *dst_len, const unsigned char *src, unsigned long n, int level) {
    uLongf len = *dst_len;
    int rc = compress2(dst, &len, src, n, level);
    *dst_len = len;
    return rc;
}

int zu_uncompress(unsigned char *dst, unsigned long *dst_len, const unsigned char *src, unsigned long n) {
    uLongf len = *dst_len;
    int rc = uncompress(dst, &len, src, n);
    *dst_len = len;
    return rc;
}

unsigned long zu_crc32(const unsigned char *buf, unsigned long n) {
    return crc32(crc32(0L, Z_NULL, 0), buf, (uInt)n);
}
