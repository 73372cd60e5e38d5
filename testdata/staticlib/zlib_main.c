/* The main module for loader/tests/all/staticlib.rs: built with zig (wasi-libc) and run by
 * pymode-run. It dlopens /lib/zlib_user.so and, for every file named on the command line
 * (read from /data), compresses it, decompresses the result, and writes both to /out
 * (NAME.z, NAME.out); it prints one line per file for the Rust test to check:
 *   file NAME len N compressed C crc X rc_compress R1 rc_uncompress R2
 * The exit code is the number of failures it saw itself. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef const char *(*version_fn)(void);
typedef unsigned long (*bound_fn)(unsigned long);
typedef int (*compress_fn)(unsigned char *, unsigned long *, const unsigned char *, unsigned long, int);
typedef int (*uncompress_fn)(unsigned char *, unsigned long *, const unsigned char *, unsigned long);
typedef unsigned long (*crc_fn)(const unsigned char *, unsigned long);

static unsigned char *read_file(const char *path, unsigned long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    *len = (unsigned long)n;
    return buf;
}

static int write_file(const char *path, const unsigned char *buf, unsigned long len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = len ? fwrite(buf, 1, len, f) : 0;
    return fclose(f) == 0 && w == len ? 0 : -1;
}

int main(int argc, char **argv) {
    void *h = dlopen("/lib/zlib_user.so", RTLD_NOW);
    if (!h) { printf("FAIL dlopen %s\n", dlerror()); return 100; }
    version_fn version = (version_fn)dlsym(h, "zu_version");
    bound_fn bound = (bound_fn)dlsym(h, "zu_bound");
    compress_fn zcompress = (compress_fn)dlsym(h, "zu_compress");
    uncompress_fn zuncompress = (uncompress_fn)dlsym(h, "zu_uncompress");
    crc_fn crc = (crc_fn)dlsym(h, "zu_crc32");
    if (!version || !bound || !zcompress || !zuncompress || !crc) { printf("FAIL dlsym %s\n", dlerror()); return 101; }
    printf("version %s\n", version());
    int failures = 0;
    for (int i = 1; i < argc; i++) {
        char path[512];
        unsigned long n;
        snprintf(path, sizeof path, "/data/%s", argv[i]);
        unsigned char *src = read_file(path, &n);
        if (!src) { printf("FAIL read %s\n", path); failures++; continue; }
        unsigned long cap = bound(n), clen = cap;
        unsigned char *z = malloc(cap);
        int rc1 = zcompress(z, &clen, src, n, 9);
        /* One spare byte: a decompressor that produced more than n would say so. */
        unsigned long dlen = n + 1;
        unsigned char *back = malloc(n + 1);
        int rc2 = rc1 == 0 ? zuncompress(back, &dlen, z, clen) : -99;
        printf("file %s len %lu compressed %lu crc %lu rc_compress %d rc_uncompress %d\n", argv[i], n, clen, crc(src, n), rc1, rc2);
        snprintf(path, sizeof path, "/out/%s.z", argv[i]);
        if (write_file(path, z, clen) != 0) { printf("FAIL write %s\n", path); failures++; }
        snprintf(path, sizeof path, "/out/%s.out", argv[i]);
        if (write_file(path, back, rc2 == 0 ? dlen : 0) != 0) { printf("FAIL write %s\n", path); failures++; }
        if (rc1 != 0 || rc2 != 0) failures++;
        free(src); free(z); free(back);
    }
    dlclose(h);
    printf("failures %d\n", failures);
    return failures;
}
