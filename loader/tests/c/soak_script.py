import gc, sys, tracemalloc
import soakdrv as drv

N, D, ROUNDS = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
MEASURED = [int(x) for x in sys.argv[4].split(",")]
tracemalloc.start()
drv.setup(tracemalloc.get_traced_memory)

def slot(r, k):
    # The j-th measured round takes slots 4 * j + 1 .. 4 * j + 4.
    return 4 * MEASURED.index(r) + k if r in MEASURED else None

def mark(slot):
    gc.collect()  # always, measured or not: the rounds must not differ
    if slot is None:
        return
    sys.stdout.flush()  # no output pending in the TextIOWrapper when measuring
    drv.mark(slot)

def soak_round(r):
    for i in range(N):
        drv.open(i, f"{D}/soak_{i:03}.so")
    mods = [drv.init(i, f"soak_{i:03}") for i in range(N)]
    mark(slot(r, 1))  # all N loaded and initialized
    for i, m in enumerate(mods):
        t0 = drv.load_u32(drv.sym(i, f"soak_{i:03}_table"))
        print("module", r, i, m.__name__, m.ident(), m.checksum(), t0, drv.handle(i))
    mark(slot(r, 2))  # every module used
    # A module and its functions form a cycle (module dict -> function -> module): collect it
    # before dlclose frees the PyModuleDef and PyMethodDefs they point into.
    del m, mods
    gc.collect()
    mark(slot(r, 3))  # module objects gone, libraries still loaded
    for i in range(N):
        drv.close(i)

mark(0)
for r in range(ROUNDS):
    soak_round(r)
    mark(slot(r, 4))  # all N closed again
for m in drv.marks():
    print("mark", *m)
print("done")
