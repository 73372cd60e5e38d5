/* A function the extension gets from the package's own static library. */
#include <math.h>

double demo_norm(const double *values, int count) {
    double sum = 0.0;
    for (int i = 0; i < count; i++) sum = hypot(sum, values[i]);
    return sum;
}
