/* The per-value hot path of probes/ber.py: check a whole Response datagram, and decode a walk's
 * GETBULK replies straight into per-column cells; per-second rates over a column's counters.
 *
 * probes/ber.py is the interface and its Python decoder the reference: `read_response` accepts
 * exactly what `decode_response` accepts (same checks: lengths within their enclosing element,
 * one-octet tags, sub-identifiers at most 2**32-1 with no leading zero septet, OIDs under 128
 * sub-identifiers, INTEGERs of 1 to 9 octets within their type's range), and a `Walk` keeps
 * exactly the cells the Python walk loop kept (tests/test_ber_walk.py checks both, hypothesis
 * against the reference). Every read is bounded by the datagram's length; nothing recurses.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_OID_LENGTH 128
#define MAX_INTEGER_OCTETS 9

enum {
    INTEGER = 0x02, OCTET_STRING = 0x04, NUL = 0x05, OID = 0x06, SEQUENCE = 0x30,
    IP_ADDRESS = 0x40, COUNTER32 = 0x41, GAUGE32 = 0x42, TIMETICKS = 0x43, OPAQUE = 0x44,
    COUNTER64 = 0x46, NO_SUCH_OBJECT = 0x80, NO_SUCH_INSTANCE = 0x81, END_OF_MIB_VIEW = 0x82,
    RESPONSE = 0xA2,
};

static PyObject *ber_error(void)
{
    /* probes/ber.py sets BerError on this module as it imports it */
    static PyObject *error = NULL;
    if (error == NULL) {
        PyObject *module = PyImport_ImportModule("probes._ber");
        if (module == NULL)
            return PyExc_ValueError;
        error = PyObject_GetAttrString(module, "BerError");
        Py_DECREF(module);
        if (error == NULL) {
            PyErr_Clear();
            return PyExc_ValueError;
        }
    }
    return error;
}

static int fail(const char *message)
{
    PyErr_SetString(ber_error(), message);
    return -1;
}

/* (tag, start, stop) of the element at `pos`, which must lie within `end`: probes/ber.py's _header */
static int header(const uint8_t *d, Py_ssize_t pos, Py_ssize_t end, int *tag, Py_ssize_t *start, Py_ssize_t *stop)
{
    if (pos + 2 > end)
        return fail("truncated");
    *tag = d[pos];
    if ((*tag & 0x1F) == 0x1F)
        return fail("multi-octet tag");
    Py_ssize_t length = d[pos + 1];
    pos += 2;
    if (length & 0x80) {
        int octets = (int)(length & 0x7F);
        if (octets < 1 || octets > 4 || pos + octets > end)
            return fail("bad or indefinite length");
        length = 0;
        for (int i = 0; i < octets; i++)
            length = length << 8 | d[pos + i];
        pos += octets;
    }
    if (length > end - pos)
        return fail("length beyond the enclosing element");
    *start = pos;
    *stop = pos + length;
    return 0;
}

/* Checks OID contents as decode_oid does; the number of encoded sub-identifiers (the first
 * stands for two arcs) */
static int check_oid(const uint8_t *c, Py_ssize_t n)
{
    if (n == 0)
        return fail("empty OID");
    if (c[n - 1] & 0x80)
        return fail("OID ends inside a sub-identifier");
    uint64_t arc = 0;
    int count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t octet = c[i];
        if (octet < 0x80) {
            arc = 0;
            if (++count >= MAX_OID_LENGTH)
                return fail("OID longer than 128 sub-identifiers");
        } else if (arc >> 18) {
            return fail("OID sub-identifier above 2**32-1");
        } else if (octet == 0x80 && arc == 0) {
            return fail("OID sub-identifier with a leading zero septet");
        } else {
            arc = arc << 7 | (octet & 0x7F);
        }
    }
    return count;
}

/* The arcs of checked OID contents (sub-identifiers as encoded: the first is not split) */
static int arcs_of(const uint8_t *c, Py_ssize_t n, uint32_t *arcs)
{
    int count = 0;
    uint32_t arc = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        arc = arc << 7 | (c[i] & 0x7F);
        if (c[i] < 0x80) {
            arcs[count++] = arc;
            arc = 0;
        }
    }
    return count;
}

static PyObject *oid_tuple(const uint8_t *c, Py_ssize_t n)
{
    uint32_t arcs[MAX_OID_LENGTH];
    int count = arcs_of(c, n, arcs);
    PyObject *oid = PyTuple_New(count + 1);
    if (oid == NULL)
        return NULL;
    uint32_t first = arcs[0];
    uint32_t head = first < 80 ? first / 40 : 2, second = first < 80 ? first % 40 : first - 80;
    PyObject *item = PyLong_FromUnsignedLong(head);
    if (item == NULL)
        goto error;
    PyTuple_SET_ITEM(oid, 0, item);
    item = PyLong_FromUnsignedLong(second);
    if (item == NULL)
        goto error;
    PyTuple_SET_ITEM(oid, 1, item);
    for (int i = 1; i < count; i++) {
        item = PyLong_FromUnsignedLong(arcs[i]);
        if (item == NULL)
            goto error;
        PyTuple_SET_ITEM(oid, i + 1, item);
    }
    return oid;
error:
    Py_DECREF(oid);
    return NULL;
}

static int is_integer_tag(int tag)
{
    return tag == INTEGER || tag == COUNTER32 || tag == GAUGE32 || tag == TIMETICKS || tag == COUNTER64;
}

/* A checked INTEGER-like value: its two's complement in 64 bits; range as probes/ber.py's RANGES */
static int integer_value(int tag, const uint8_t *c, Py_ssize_t n, uint64_t *number)
{
    int negative;
    uint64_t bits = 0;
    if (n < 1 || n > MAX_INTEGER_OCTETS)
        return fail("integer of the wrong size");
    if (n == MAX_INTEGER_OCTETS) {
        for (int i = 1; i < 9; i++)
            bits = bits << 8 | c[i];
        if (c[0] == 0x00)
            negative = 0;
        else if (c[0] == 0xFF && (bits >> 63))
            negative = 1;
        else
            return fail("integer out of range");
    } else {
        negative = c[0] >> 7;
        bits = negative ? UINT64_MAX : 0;
        for (Py_ssize_t i = 0; i < n; i++)
            bits = bits << 8 | c[i];
    }
    if (tag == INTEGER) {
        if (negative ? (int64_t)bits < INT32_MIN : bits > INT32_MAX)
            return fail("INTEGER out of range");
    } else if (negative || (tag != COUNTER64 && bits > UINT32_MAX)) {
        return fail("unsigned value out of range");
    }
    *number = bits;
    return 0;
}

typedef struct {
    Py_ssize_t name, name_length, value, value_length;
    int tag;
    uint64_t number; /* integer tags */
} Varbind;

/* The varbinds of the VarBindList at `pos` (it must end at `end`), each checked as _varbinds checks it */
static int parse_varbinds(const uint8_t *d, Py_ssize_t pos, Py_ssize_t end, Varbind **out, Py_ssize_t *capacity, Py_ssize_t *count)
{
    int tag;
    Py_ssize_t stop;
    if (header(d, pos, end, &tag, &pos, &stop) < 0)
        return -1;
    if (tag != SEQUENCE || stop != end)
        return fail("no varbind list");
    Py_ssize_t n = 0;
    while (pos < end) {
        Py_ssize_t start, varbind_end;
        if (header(d, pos, end, &tag, &pos, &varbind_end) < 0)
            return -1;
        if (tag != SEQUENCE)
            return fail("varbind is not a SEQUENCE");
        if (header(d, pos, varbind_end, &tag, &start, &pos) < 0)
            return -1;
        if (tag != OID)
            return fail("varbind name is not an OID");
        if (check_oid(d + start, pos - start) < 0)
            return -1;
        if (n == *capacity) {
            Py_ssize_t grown = *capacity ? *capacity * 2 : 64;
            Varbind *more = PyMem_Realloc(*out, grown * sizeof(Varbind));
            if (more == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            *out = more;
            *capacity = grown;
        }
        Varbind *v = *out + n;
        v->name = start;
        v->name_length = pos - start;
        if (header(d, pos, varbind_end, &tag, &start, &pos) < 0)
            return -1;
        if (pos != varbind_end)
            return fail("varbind has more than a name and a value");
        v->tag = tag;
        v->value = start;
        v->value_length = pos - start;
        v->number = 0;
        if (is_integer_tag(tag)) {
            if (integer_value(tag, d + start, pos - start, &v->number) < 0)
                return -1;
        } else if (tag == OID) {
            if (check_oid(d + start, pos - start) < 0)
                return -1;
        } else if (tag == NUL || tag == NO_SUCH_OBJECT || tag == NO_SUCH_INSTANCE || tag == END_OF_MIB_VIEW) {
            if (pos != start)
                return fail("empty value with contents");
        } else if (tag == IP_ADDRESS && pos - start != 4) {
            return fail("IpAddress is not 4 octets");
        }
        n++;
    }
    *count = n;
    return 0;
}

/* An Integer32 header field (version, request-id, error status and index): _int_at */
static int int_at(const uint8_t *d, Py_ssize_t *pos, Py_ssize_t end, long *number)
{
    int tag;
    Py_ssize_t start, stop;
    uint64_t bits;
    if (header(d, *pos, end, &tag, &start, &stop) < 0)
        return -1;
    if (tag != INTEGER || stop - start < 1 || stop - start > MAX_INTEGER_OCTETS)
        return fail("expected an INTEGER");
    if (integer_value(INTEGER, d + start, stop - start, &bits) < 0)
        return -1;
    *number = (long)(int64_t)bits;
    *pos = stop;
    return 0;
}

static PyObject *read_response(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *d = view.buf;
    Py_ssize_t end = view.len, pos, stop, community, varbinds;
    long version, request_id, status, index;
    int tag;
    Varbind *parsed = NULL;
    Py_ssize_t capacity = 0, count;
    PyObject *result = NULL;
    if (header(d, 0, end, &tag, &pos, &stop) < 0)
        goto done;
    if (tag != SEQUENCE || stop != end) {
        fail("not one SEQUENCE");
        goto done;
    }
    if (int_at(d, &pos, end, &version) < 0 || header(d, pos, end, &tag, &community, &pos) < 0)
        goto done;
    if (tag != OCTET_STRING) {
        fail("no community");
        goto done;
    }
    Py_ssize_t community_end = pos;
    if (header(d, pos, end, &tag, &pos, &stop) < 0)
        goto done;
    if (tag != RESPONSE || stop != end) {
        fail("not a Response PDU");
        goto done;
    }
    if (int_at(d, &pos, end, &request_id) < 0 || int_at(d, &pos, end, &status) < 0 || int_at(d, &pos, end, &index) < 0)
        goto done;
    varbinds = pos;
    if (parse_varbinds(d, pos, end, &parsed, &capacity, &count) < 0)
        goto done;
    result = Py_BuildValue("(ly#llln)", version, (const char *)d + community, community_end - community, request_id, status,
                           index, varbinds);
done:
    PyMem_Free(parsed);
    PyBuffer_Release(&view);
    return result;
}

/* --- walks ---------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *prefix; /* contents octets of the column's OID */
    Py_ssize_t prefix_length;
    uint8_t *last; /* contents octets of the last name walked (the prefix at first) */
    Py_ssize_t last_length, last_capacity;
    uint32_t index[MAX_OID_LENGTH]; /* the sub-identifiers of `last` past the prefix */
    int index_length;
    PyObject *indexes; /* list: the row index of each cell */
    PyObject *values;  /* list: the value of each cell */
    uint8_t *tags;
    Py_ssize_t cells, tags_capacity;
} Column;

typedef struct {
    PyObject_HEAD
    Column *columns;
    Py_ssize_t count;
    PyObject *rows; /* dict: index octets -> the index tuple, one per row for every column */
    Varbind *parsed;
    Py_ssize_t parsed_capacity;
} Walk;

static void walk_dealloc(Walk *self)
{
    for (Py_ssize_t i = 0; i < self->count; i++) {
        Column *c = &self->columns[i];
        PyMem_Free(c->prefix);
        PyMem_Free(c->last);
        PyMem_Free(c->tags);
        Py_XDECREF(c->indexes);
        Py_XDECREF(c->values);
    }
    PyMem_Free(self->columns);
    PyMem_Free(self->parsed);
    Py_XDECREF(self->rows);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int set_last(Column *c, const uint8_t *name, Py_ssize_t length)
{
    if (length > c->last_capacity) {
        uint8_t *grown = PyMem_Realloc(c->last, length);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->last = grown;
        c->last_capacity = length;
    }
    memcpy(c->last, name, length);
    c->last_length = length;
    return 0;
}

static int walk_init(Walk *self, PyObject *args, PyObject *kwds)
{
    PyObject *prefixes;
    if (self->columns != NULL) {
        PyErr_SetString(PyExc_TypeError, "a Walk is initialised once");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "O", &prefixes))
        return -1;
    PyObject *sequence = PySequence_Fast(prefixes, "prefixes must be a sequence of OID contents octets");
    if (sequence == NULL)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    self->columns = PyMem_Calloc(count ? count : 1, sizeof(Column));
    self->rows = PyDict_New();
    if (self->columns == NULL || self->rows == NULL) {
        Py_DECREF(sequence);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Column *c = &self->columns[i];
        self->count = i + 1;
        char *octets;
        Py_ssize_t length;
        if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(sequence, i), &octets, &length) < 0 ||
            check_oid((const uint8_t *)octets, length) < 0) {
            Py_DECREF(sequence);
            return -1;
        }
        c->prefix = PyMem_Malloc(length);
        c->indexes = PyList_New(0);
        c->values = PyList_New(0);
        if (c->prefix == NULL || c->indexes == NULL || c->values == NULL || set_last(c, (const uint8_t *)octets, length) < 0) {
            Py_DECREF(sequence);
            if (!PyErr_Occurred())
                PyErr_NoMemory();
            return -1;
        }
        memcpy(c->prefix, octets, length);
        c->prefix_length = length;
    }
    Py_DECREF(sequence);
    return 0;
}

static int append_tag(Column *c, int tag)
{
    if (c->cells == c->tags_capacity) {
        Py_ssize_t grown = c->tags_capacity ? c->tags_capacity * 2 : 256;
        uint8_t *more = PyMem_Realloc(c->tags, grown);
        if (more == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->tags = more;
        c->tags_capacity = grown;
    }
    c->tags[c->cells++] = (uint8_t)tag;
    return 0;
}

static PyObject *value_object(const uint8_t *d, const Varbind *v)
{
    switch (v->tag) {
    case INTEGER:
        return PyLong_FromLongLong((int64_t)v->number);
    case COUNTER32:
    case GAUGE32:
    case TIMETICKS:
    case COUNTER64:
        return PyLong_FromUnsignedLongLong(v->number);
    case OID:
        return oid_tuple(d + v->value, v->value_length);
    default: /* OCTET STRING, IpAddress, Opaque */
        return PyBytes_FromStringAndSize((const char *)d + v->value, v->value_length);
    }
}

/* The row's index tuple, shared by every column's cell of that row */
static PyObject *row_index(Walk *self, const uint8_t *octets, Py_ssize_t length, const uint32_t *arcs, int count)
{
    PyObject *key = PyBytes_FromStringAndSize((const char *)octets, length);
    if (key == NULL)
        return NULL;
    PyObject *index = PyDict_GetItemWithError(self->rows, key);
    if (index != NULL || PyErr_Occurred()) {
        Py_DECREF(key);
        Py_XINCREF(index);
        return index;
    }
    index = PyTuple_New(count);
    if (index == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        PyObject *arc = PyLong_FromUnsignedLong(arcs[i]);
        if (arc == NULL) {
            Py_DECREF(key);
            Py_DECREF(index);
            return NULL;
        }
        PyTuple_SET_ITEM(index, i, arc);
    }
    if (PyDict_SetItem(self->rows, key, index) < 0) {
        Py_DECREF(key);
        Py_DECREF(index);
        return NULL;
    }
    Py_DECREF(key);
    return index;
}

static int is_known(int tag)
{
    return is_integer_tag(tag) || tag == OCTET_STRING || tag == OID || tag == IP_ADDRESS || tag == OPAQUE;
}

static int is_empty(int tag)
{
    return tag == NUL || tag == NO_SUCH_OBJECT || tag == NO_SUCH_INSTANCE || tag == END_OF_MIB_VIEW;
}

/* Walk.feed(data, at, active): see probes/ber.py's Walk */
static PyObject *walk_feed(Walk *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t at;
    PyObject *active;
    if (!PyArg_ParseTuple(args, "y*nO!", &view, &at, &PyList_Type, &active))
        return NULL;
    const uint8_t *d = view.buf;
    PyObject *done = NULL, *result = NULL;
    Py_ssize_t count, skipped = 0;
    Py_ssize_t width = PyList_GET_SIZE(active);
    if (at < 0 || at > view.len) {
        PyErr_SetString(PyExc_ValueError, "position outside the datagram");
        goto out;
    }
    if (parse_varbinds(d, at, view.len, &self->parsed, &self->parsed_capacity, &count) < 0)
        goto out;
    done = PyList_New(0);
    if (done == NULL)
        goto out;
    for (Py_ssize_t slot = 0; slot < width && count; slot++) {
        Py_ssize_t number = PyLong_AsSsize_t(PyList_GET_ITEM(active, slot));
        if (number < 0 || number >= self->count) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_IndexError, "no such column");
            goto out;
        }
        Column *c = &self->columns[number];
        for (Py_ssize_t i = slot; i < count; i += width) { /* a column's values are every width-th */
            const Varbind *v = &self->parsed[i];
            const uint8_t *name = d + v->name;
            if (v->tag == END_OF_MIB_VIEW || v->name_length < c->prefix_length ||
                memcmp(name, c->prefix, c->prefix_length) != 0) {
                if (PyList_Append(done, PyList_GET_ITEM(active, slot)) < 0)
                    goto out;
                break;
            }
            uint32_t index[MAX_OID_LENGTH];
            const uint8_t *suffix = name + c->prefix_length;
            Py_ssize_t suffix_length = v->name_length - c->prefix_length;
            int length = arcs_of(suffix, suffix_length, index);
            int order = 0;
            for (int k = 0; k < length && k < c->index_length && !order; k++)
                order = index[k] < c->index[k] ? -1 : index[k] > c->index[k];
            if (order < 0 || (order == 0 && length <= c->index_length)) {
                result = Py_BuildValue("(nnO(y#y#))", count, skipped, done, (const char *)name, v->name_length, (const char *)c->last,
                                       c->last_length);
                goto out;
            }
            if (set_last(c, name, v->name_length) < 0)
                goto out;
            memcpy(c->index, index, length * sizeof(uint32_t));
            c->index_length = length;
            if (is_known(v->tag)) {
                PyObject *row = row_index(self, suffix, suffix_length, index, length);
                if (row == NULL)
                    goto out;
                int appended = PyList_Append(c->indexes, row);
                Py_DECREF(row);
                PyObject *value = appended < 0 ? NULL : value_object(d, v);
                if (value == NULL)
                    goto out;
                appended = PyList_Append(c->values, value);
                Py_DECREF(value);
                if (appended < 0 || append_tag(c, v->tag) < 0)
                    goto out;
            } else if (!is_empty(v->tag)) {
                skipped++;
            }
        }
    }
    result = Py_BuildValue("(nnOO)", count, skipped, done, Py_None);
out:
    Py_XDECREF(done);
    PyBuffer_Release(&view);
    return result;
}

static Column *column_at(Walk *self, PyObject *arg)
{
    Py_ssize_t number = PyLong_AsSsize_t(arg);
    if (number == -1 && PyErr_Occurred())
        return NULL;
    if (number < 0 || number >= self->count) {
        PyErr_SetString(PyExc_IndexError, "no such column");
        return NULL;
    }
    return &self->columns[number];
}

static PyObject *walk_last(Walk *self, PyObject *arg)
{
    Column *c = column_at(self, arg);
    return c == NULL ? NULL : PyBytes_FromStringAndSize((const char *)c->last, c->last_length);
}

static PyObject *walk_cells(Walk *self, PyObject *arg)
{
    Column *c = column_at(self, arg);
    if (c == NULL)
        return NULL;
    return Py_BuildValue("(Oy#O)", c->indexes, c->tags ? (const char *)c->tags : "", c->cells, c->values);
}

static PyMethodDef walk_methods[] = {
    {"feed", (PyCFunction)walk_feed, METH_VARARGS, NULL},
    {"last", (PyCFunction)walk_last, METH_O, NULL},
    {"cells", (PyCFunction)walk_cells, METH_O, NULL},
    {NULL},
};

static PyTypeObject WalkType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "probes._ber.Walk",
    .tp_basicsize = sizeof(Walk),
    .tp_dealloc = (destructor)walk_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = walk_methods,
    .tp_init = (initproc)walk_init,
    .tp_new = PyType_GenericNew,
};

/* --- rates ---------------------------------------------------------------------------------- */

/* rates(values, bits, previous, times, now, scale): see probes/rates.py */
static PyObject *rates(PyObject *module, PyObject *args)
{
    PyObject *sequence, *values = NULL;
    Py_buffer bits, previous, times;
    double now, scale;
    if (!PyArg_ParseTuple(args, "Oy*y*y*dd", &sequence, &bits, &previous, &times, &now, &scale))
        return NULL;
    PyObject *result = NULL;
    values = PySequence_Fast(sequence, "values must be a sequence");
    if (values == NULL)
        goto out;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(values);
    if (bits.len < count || previous.len < count * (Py_ssize_t)sizeof(uint64_t) ||
        times.len < count * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "fewer bits, readings or times than values");
        goto out;
    }
    result = PyList_New(count);
    if (result == NULL)
        goto out;
    const uint8_t *widths = bits.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        uint64_t value = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(values, i));
        if (value == (uint64_t)-1 && PyErr_Occurred()) {
            Py_CLEAR(result);
            goto out;
        }
        uint64_t last;
        double then;
        memcpy(&last, (const char *)previous.buf + i * sizeof(uint64_t), sizeof last);
        memcpy(&then, (const char *)times.buf + i * sizeof(double), sizeof then);
        PyObject *rate = Py_None;
        __int128 delta = (__int128)value - last; /* exact, as Python's ints */
        int usable = !(then >= now || isnan(then));
        if (usable && delta < 0) { /* a Counter32 that fell by more than half its range wrapped */
            usable = widths[i] == 32 && -delta > ((__int128)1 << 31);
            delta += (__int128)1 << 32;
        }
        if (usable) {
            rate = PyFloat_FromDouble((double)delta / (now - then) * scale);
            if (rate == NULL) {
                Py_CLEAR(result);
                goto out;
            }
        } else {
            Py_INCREF(rate);
        }
        PyList_SET_ITEM(result, i, rate);
    }
out:
    Py_XDECREF(values);
    PyBuffer_Release(&bits);
    PyBuffer_Release(&previous);
    PyBuffer_Release(&times);
    return result;
}

static PyMethodDef module_methods[] = {
    {"read_response", (PyCFunction)read_response, METH_O, NULL},
    {"rates", (PyCFunction)rates, METH_VARARGS, NULL},
    {NULL},
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "probes._ber", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit__ber(void)
{
    if (PyType_Ready(&WalkType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Py_INCREF(&WalkType);
    if (PyModule_AddObject(module, "Walk", (PyObject *)&WalkType) < 0) {
        Py_DECREF(&WalkType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
