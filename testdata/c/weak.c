/* Exercises: a weak defined function (exported, and interposable under PIC: imported via
 * GOT.func and exported at once) and a weak undefined function (dylink.0 IMPORT_INFO weak;
 * its address is 0 when nothing defines it).
 * Check: weak_check() returns 42 when maybe_missing is unresolved, 142 when something
 * defines it (and then calls it once). */

__attribute__((weak)) int weak_value(void) { return 42; }

extern void maybe_missing(void) __attribute__((weak));

int has_maybe(void) { return maybe_missing != 0; }

int weak_check(void) {
    int r = weak_value();
    if (has_maybe()) {
        maybe_missing();
        r += 100;
    }
    return r;
}
