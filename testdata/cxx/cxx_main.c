/* The main module for loader/tests/all/cxx.rs: dlopens /lib/cxx_user.so, runs its checks and,
 * given an argument, calls the throwing function (argv[1]: "throw" or "try"), which must end
 * the program. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef int (*checks_fn)(void);
typedef int (*int_fn)(int);

int main(int argc, char **argv) {
    void *h = dlopen("/lib/cxx_user.so", RTLD_NOW);
    if (!h) { printf("FAIL dlopen %s\n", dlerror()); return 100; }
    checks_fn checks = (checks_fn)dlsym(h, "cxx_checks");
    int_fn thrower = (int_fn)dlsym(h, "cxx_throw");
    int_fn trier = (int_fn)dlsym(h, "cxx_try");
    if (!checks || !thrower || !trier) { printf("FAIL dlsym %s\n", dlerror()); return 101; }
    int rc = checks();
    printf("checks %d\n", rc);
    fflush(stdout);
    if (argc > 1) {
        int r = strcmp(argv[1], "try") == 0 ? trier(5) : thrower(5);
        printf("FAIL returned %d after the throw\n", r);
        return 102;
    }
    return rc;
}
