/* A C main module for the FFI tests: loads ffi_driver.so from /lib and runs its checks;
 * the exit code is the number of failures. */
#include <dlfcn.h>
#include <stdio.h>

int main(void) {
    void *drv = dlopen("/lib/ffi_driver.so", RTLD_NOW);
    if (drv == NULL) {
        printf("FAIL dlopen ffi_driver.so: %s\n", dlerror());
        return 1;
    }
    int (*checks)(void) = (int (*)(void))dlsym(drv, "ffi_checks");
    if (checks == NULL) {
        printf("FAIL dlsym ffi_checks: %s\n", dlerror());
        return 1;
    }
    int failures = checks();
    fflush(stdout);
    return failures;
}
