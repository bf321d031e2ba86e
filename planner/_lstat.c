/* planner._lstat: the lstat signatures of many paths at once, in threads, outside the interpreter.
 *
 * Why C: proving a snapshot costs one lstat per path (100k on our users' repositories). On a VM with the
 * usual speculation mitigations an lstat costs about 2.3 us in the kernel, and Python adds about 1.2 us per
 * path around it (the call, the stat_result, the packing), with the GIL held: threads cannot share that part,
 * and two forked processes pay for the fork and the pickled answer. Here the paths come as one buffer, the
 * signatures go back as one buffer, and the kernel's part is shared between threads with the GIL released.
 *
 * The bytes are exactly what planner.keys.signatures packs in Python ("<QQqqQ": inode, device, mtime_ns, ctime_ns,
 * size of a regular file else 0), and 40 zero bytes for a path that cannot be read or whose times do not fit;
 * tests/unit/test_lstat_reader.py compares the two on the same paths.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#define PACKED 40
#define MAX_THREADS 16

typedef struct {
    const char *const *paths;
    Py_ssize_t start, stop;
    unsigned char *out;
    Py_ssize_t unread;
} Part;

static void put_u64(unsigned char *at, uint64_t value) {
    for (int i = 0; i < 8; i++) at[i] = (unsigned char)(value >> (8 * i));
}

/* nanoseconds since the epoch, as Python's st_*time_ns; 0 when it does not fit a signed 64-bit integer */
static int nanoseconds(struct timespec when, int64_t *out) {
    int64_t scaled;
    if (__builtin_mul_overflow((int64_t)when.tv_sec, (int64_t)1000000000, &scaled)) return 0;
    return !__builtin_add_overflow(scaled, (int64_t)when.tv_nsec, out);
}

static void *read_part(void *arg) {
    Part *part = arg;
    struct stat st;
    for (Py_ssize_t i = part->start; i < part->stop; i++) {
        unsigned char *at = part->out + i * PACKED;
        int64_t mtime, ctime;
        if (lstat(part->paths[i], &st) != 0 || !nanoseconds(st.st_mtim, &mtime) ||
            !nanoseconds(st.st_ctim, &ctime)) {
            memset(at, 0, PACKED);
            part->unread++;
            continue;
        }
        put_u64(at, (uint64_t)st.st_ino);
        put_u64(at + 8, (uint64_t)st.st_dev);
        put_u64(at + 16, (uint64_t)mtime);
        put_u64(at + 24, (uint64_t)ctime);
        put_u64(at + 32, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
    }
    return NULL;
}

PyDoc_STRVAR(read_doc,
             "read(joined, count, threads) -> (bytes, int)\n\n"
             "The packed lstat signatures of `count` paths given as bytes joined by NUL (file system "
             "encoding), 40 bytes each, zeros for a path that cannot be read, and how many could not be "
             "read; read by up to `threads` threads with the GIL released.");

static PyObject *read_signatures(PyObject *module, PyObject *args) {
    PyObject *joined;
    Py_ssize_t count;
    int threads;
    if (!PyArg_ParseTuple(args, "O!ni:read", &PyBytes_Type, &joined, &count, &threads)) return NULL;
    if (count < 0) {
        PyErr_SetString(PyExc_ValueError, "count must not be negative");
        return NULL;
    }
    const char *buffer = PyBytes_AS_STRING(joined); /* bytes end with a NUL past their size */
    Py_ssize_t size = PyBytes_GET_SIZE(joined);
    Py_ssize_t found = count == 0 ? 0 : 1;
    if (count > 0) {
        for (const char *at = buffer; (at = memchr(at, '\0', (size_t)(buffer + size - at))) != NULL; at++) {
            found++;
        }
    } else if (size != 0) {
        found = -1;
    }
    if (found != count) {
        PyErr_Format(PyExc_ValueError, "%zd paths joined, %zd expected", found, count);
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, count * PACKED);
    if (result == NULL) return NULL;
    if (count == 0) return Py_BuildValue("(Nn)", result, (Py_ssize_t)0);
    const char **paths = PyMem_RawMalloc((size_t)count * sizeof(char *));
    if (paths == NULL) {
        Py_DECREF(result);
        return PyErr_NoMemory();
    }
    const char *at = buffer;
    for (Py_ssize_t i = 0; i < count; i++) {
        paths[i] = at;
        at += strlen(at) + 1;
    }
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > count) threads = (int)count;
    Part parts[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    for (int t = 0; t < threads; t++) {
        parts[t] = (Part){paths, count * t / threads, count * (t + 1) / threads, out, 0};
        if (t > 0) started[t] = pthread_create(&ids[t], NULL, read_part, &parts[t]) == 0;
    }
    read_part(&parts[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) {
            pthread_join(ids[t], NULL);
        } else {
            read_part(&parts[t]); /* no thread to be had: read that part here */
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(paths);
    Py_ssize_t unread = 0;
    for (int t = 0; t < threads; t++) unread += parts[t].unread;
    (void)module;
    return Py_BuildValue("(Nn)", result, unread);
}

static PyMethodDef methods[] = {
    {"read", read_signatures, METH_VARARGS, read_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, "planner._lstat", "Packed lstat signatures of many paths, read in threads.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__lstat(void) { return PyModule_Create(&definition); }
