/* Exercises: a destructor. clang turns it into an init function that registers it with
 * __cxa_atexit(fn, 0, &__dso_handle), so the module imports __cxa_atexit and refers to the
 * linker-defined __dso_handle.
 * Check: dtor_check() returns 9, the value the destructor passes to host_unregister when
 * the registered atexit functions run. */

extern void host_unregister(int value);

static int dtor_value = 9;

__attribute__((destructor)) static void dtor_fini(void) { host_unregister(dtor_value); }

int dtor_check(void) { return dtor_value; }
