/* Exercises: a static (local) function whose address escapes, both in data
 * (TABLE_INDEX_I32 against a local symbol) and in code (TABLE_INDEX_REL_SLEB relative to
 * __table_base under PIC). Both must give the same canonical table slot.
 * Check: static_fn_escape_check() returns 1001 (the callback applied to 1) if the stored
 * pointer and the one returned by code are equal, else -1. */

typedef int (*callback)(int);

static int secret_cb(int x) { return x + 1000; }

callback stored_cb = secret_cb;

callback static_fn_get(void) { return secret_cb; }

int static_fn_escape_check(void) {
    if (stored_cb != static_fn_get()) return -1;
    return stored_cb(1);
}
