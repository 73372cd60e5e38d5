/* A side module for the C main test: a comparator the main module's qsort calls, a call into
 * the main module's qsort with it, and the address of a main-module function. */
#include <stdlib.h>

extern int host_add(int a, int b);

int cmp_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

typedef int (*cmp_fn)(const void *, const void *);
cmp_fn side_get_cmp(void) { return cmp_desc; }

typedef int (*binop)(int, int);
binop side_get_add(void) { return host_add; }

/* Sorts through the main module's qsort with this module's comparator. */
void side_sort_desc(int *v, int n) { qsort(v, (size_t)n, sizeof *v, cmp_desc); }
