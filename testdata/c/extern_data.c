/* Exercises: data the module does not define. Code reads and writes `host_counter`
 * (GOT.mem import under PIC), and data holds its address and an address with an addend
 * (`&host_array[2]`): data relocations against undefined symbols.
 * Check: extern_data_check() returns -1 if counter_ptr != &host_counter or
 * array_elem_ptr != &host_array[2]; otherwise adds 1 to host_counter directly and 10 through
 * counter_ptr, and returns the increase of host_counter (11). */

extern int host_counter;
extern int host_array[4];

int *counter_ptr = &host_counter;
int *array_elem_ptr = &host_array[2];

int extern_data_array_elem(void) { return *array_elem_ptr; }

int extern_data_check(void) {
    if (counter_ptr != &host_counter || array_elem_ptr != &host_array[2]) return -1;
    int before = host_counter;
    host_counter += 1;
    *counter_ptr += 10;
    return host_counter - before;
}
