/* The per-echo hot path of probes/icmp.py: the echoes in flight (a slot per sequence number),
 * sending a round's echoes over the raw IPv4 socket with sendmmsg, reading its replies with
 * recvmmsg, and timing echoes out.
 *
 * probes/icmp.py is the interface and its `parse_reply` the reference: `parse_v4` (the parser
 * `Flight.read_v4` uses) takes exactly the raw IPv4 packets `parse_reply` takes, with the same
 * result (tests/test_icmp_c.py checks it, hypothesis against the reference). A reply settles its
 * echo only if it comes from that echo's target; ICMP errors go back to Python, which settles
 * them. IPv6 and the ping socket stay in Python and share the slots through `claim`, `take`,
 * `peek` and `release`. Every read is bounded by the datagram's length. The GIL stays held
 * through sendmmsg and recvmmsg: the socket never blocks, and handing the GIL to a worker thread
 * at each call could keep the event loop waiting for a switch interval (5 ms) to get it back.
 *
 * A reply's time is the kernel's stamp of its arrival (SO_TIMESTAMPNS, which probes/icmp.py
 * sets on its sockets), not the time the event loop got round to reading it: a loop busy for
 * 170 ms made loopback echoes look 170 ms slow, and lines fail the latency rule.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define SEQUENCES 65536
#define SEND_CHUNK 16   /* echoes per sendmmsg, sharing one send time: 64 or 512 cost no less CPU */
#define RECV_CHUNK 64   /* datagrams per recvmmsg */
#define DATAGRAM 2048   /* bytes read of a datagram, as recv_into(bytearray(2048)) did */
#define FAILED 1        /* Sweep.state: the target has an error, send it nothing more */
#define PYTHON 2        /* Sweep.state: not for the raw IPv4 socket, probes/icmp.py sends it */

typedef struct {
    PyObject_HEAD
    uint16_t ident;
    uint16_t seq; /* the sequence handed out last */
    uint8_t token[8];
    Py_ssize_t in_flight;
    PyObject *sweep[SEQUENCES]; /* owned; NULL: the sequence is free */
    uint32_t echo[SEQUENCES];   /* target x count + round, in its sweep */
    double sent[SEQUENCES];
    double deadline[SEQUENCES]; /* INFINITY when free */
    uint32_t peer[SEQUENCES];   /* the raw IPv4 echo's target, network order */
    uint8_t raw4[SEQUENCES];    /* the echo went out on the raw IPv4 socket */
    uint8_t buffers[RECV_CHUNK][DATAGRAM];
    uint8_t stamps[RECV_CHUNK][CMSG_SPACE(sizeof(struct timespec))]; /* each datagram's arrival */
} Flight;

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now(void)
{
    return seconds(CLOCK_MONOTONIC); /* time.monotonic()'s clock */
}

/* When a datagram arrived, on the monotonic clock: its kernel stamp (wall clock) moved by
 * `wall_ahead`, the wall clock's lead over the monotonic one as the read began, and kept between
 * `sent` and `read` (the time it was read), so a wall clock stepped meanwhile cannot make it
 * earlier than its echo or later than the read; `read` when it has no stamp. */
static double arrival(struct msghdr *message, double wall_ahead, double sent, double read)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(message); c != NULL; c = CMSG_NXTHDR(message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            double at = (double)ts.tv_sec + ts.tv_nsec * 1e-9 - wall_ahead;
            return at < sent ? sent : at > read ? read : at;
        }
    }
    return read;
}

/* The sum of the big-endian 16-bit words (an odd last octet padded with zero), modulo 0xFFFF:
 * probes/icmp.py's `int.from_bytes(data, "big") % 0xFFFF` */
static uint32_t word_sum(const uint8_t *d, Py_ssize_t n)
{
    uint64_t sum = 0;
    Py_ssize_t i = 0;
    for (; i + 1 < n; i += 2)
        sum += (uint32_t)d[i] << 8 | d[i + 1];
    if (i < n)
        sum += (uint32_t)d[i] << 8;
    return (uint32_t)(sum % 0xFFFF);
}

/* A raw IPv4 packet as `parse_reply(data, AF_INET, True, ident, token)` reads it: the ICMP type
 * (0 echo reply, 3 or 11 an error about one of our echoes) with the sequence, the address (the
 * reply's source, or the error's original destination, network order) and the code; -1 if the
 * packet is not for us */
static int parse(const uint8_t *d, Py_ssize_t size, uint16_t ident, const uint8_t *token, uint16_t *seq,
                 uint32_t *address, int *code)
{
    if (size < 20)
        return -1;
    Py_ssize_t ihl = (d[0] & 0x0F) * 4;
    if (size - ihl < 16)
        return -1;
    const uint8_t *m = d + ihl;
    Py_ssize_t n = size - ihl;
    if (word_sum(m, n) != 0)
        return -1;
    int kind = m[0];
    *code = m[1];
    if (kind == 0) {
        if ((m[4] << 8 | m[5]) != ident || memcmp(m + 8, token, 8) != 0)
            return -1;
        *seq = (uint16_t)(m[6] << 8 | m[7]);
        memcpy(address, d + 12, 4);
        return 0;
    }
    if (kind != 3 && kind != 11)
        return -1;
    const uint8_t *inner = m + 8;
    Py_ssize_t k = n - 8, offset = (inner[0] & 0x0F) * 4;
    if (offset < 20 || k < offset + 8 || inner[9] != IPPROTO_ICMP)
        return -1;
    if (inner[offset] != 8 || (inner[offset + 4] << 8 | inner[offset + 5]) != ident)
        return -1;
    *seq = (uint16_t)(inner[offset + 6] << 8 | inner[offset + 7]);
    memcpy(address, inner + 16, 4);
    return kind;
}

/* --- slots ---------------------------------------------------------------------------------- */

static void release(Flight *self, uint16_t seq)
{
    Py_CLEAR(self->sweep[seq]);
    self->deadline[seq] = INFINITY;
    self->raw4[seq] = 0;
    self->in_flight--;
}

static void take(Flight *self, uint16_t seq, PyObject *sweep, uint32_t echo, double sent, double deadline)
{
    Py_INCREF(sweep);
    self->sweep[seq] = sweep;
    self->echo[seq] = echo;
    self->sent[seq] = sent;
    self->deadline[seq] = deadline;
    self->in_flight++;
}

static uint16_t next_free(Flight *self)
{
    /* the caller has checked that in_flight < SEQUENCES */
    uint16_t seq = (uint16_t)(self->seq + 1);
    while (self->sweep[seq] != NULL)
        seq++;
    self->seq = seq;
    return seq;
}

/* The sweep whose echoes are being settled, its rtts open for writing; echoes ended since the
 * last `finish` call. Replies and timeouts come mostly in runs of one sweep's echoes, so a sweep
 * is looked up and `Sweep.finish` called once per run, not per echo. */
typedef struct {
    PyObject *sweep;
    Py_buffer rtts;
    Py_ssize_t ended;
} Run;

static int run_flush(Run *run)
{
    if (run->sweep == NULL)
        return 0;
    PyBuffer_Release(&run->rtts);
    PyObject *done = run->ended ? PyObject_CallMethod(run->sweep, "finish", "n", run->ended) : Py_NewRef(Py_None);
    Py_CLEAR(run->sweep);
    run->ended = 0;
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    return 0;
}

static int run_switch(Run *run, PyObject *sweep)
{
    if (run->sweep == sweep)
        return 0;
    if (run_flush(run) < 0)
        return -1;
    PyObject *rtts = PyObject_GetAttrString(sweep, "rtts");
    if (rtts == NULL)
        return -1;
    int failed = PyObject_GetBuffer(rtts, &run->rtts, PyBUF_WRITABLE);
    Py_DECREF(rtts);
    if (failed)
        return -1;
    if (run->rtts.len % (Py_ssize_t)sizeof(double)) {
        PyBuffer_Release(&run->rtts);
        PyErr_SetString(PyExc_TypeError, "Sweep.rtts must be an array of doubles");
        return -1;
    }
    run->sweep = Py_NewRef(sweep);
    return 0;
}

/* --- Flight --------------------------------------------------------------------------------- */

static int flight_init(Flight *self, PyObject *args, PyObject *kwds)
{
    unsigned int ident;
    Py_buffer token;
    if (!PyArg_ParseTuple(args, "Iy*", &ident, &token))
        return -1;
    int bad = ident > 0xFFFF || token.len != 8;
    if (!bad)
        memcpy(self->token, token.buf, 8);
    PyBuffer_Release(&token);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "ident is 16 bits and the token 8 octets");
        return -1;
    }
    for (int i = 0; i < SEQUENCES; i++) {
        Py_CLEAR(self->sweep[i]);
        self->deadline[i] = INFINITY;
        self->raw4[i] = 0;
    }
    self->ident = (uint16_t)ident;
    self->seq = 0;
    self->in_flight = 0;
    return 0;
}

static void flight_dealloc(Flight *self)
{
    for (int i = 0; i < SEQUENCES; i++)
        Py_CLEAR(self->sweep[i]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The sweep's per-target fields send_v4 needs (all checked against its number of targets) */
typedef struct {
    Py_buffer packed, state, sent;
    Py_ssize_t targets;
    unsigned long count;
    double timeout;
} SweepView;

static void view_release(SweepView *v)
{
    PyBuffer_Release(&v->packed);
    PyBuffer_Release(&v->state);
    PyBuffer_Release(&v->sent);
}

static int view_attr(PyObject *sweep, const char *name, Py_buffer *view, int flags)
{
    PyObject *value = PyObject_GetAttrString(sweep, name);
    if (value == NULL)
        return -1;
    int failed = PyObject_GetBuffer(value, view, flags);
    Py_DECREF(value);
    return failed;
}

static int view_open(SweepView *v, PyObject *sweep)
{
    memset(v, 0, sizeof *v);
    if (view_attr(sweep, "packed", &v->packed, PyBUF_SIMPLE) < 0 || view_attr(sweep, "state", &v->state, PyBUF_SIMPLE) < 0 ||
        view_attr(sweep, "sent", &v->sent, PyBUF_WRITABLE) < 0)
        goto error;
    PyObject *value = PyObject_GetAttrString(sweep, "count");
    if (value == NULL)
        goto error;
    v->count = PyLong_AsUnsignedLong(value);
    Py_DECREF(value);
    if (PyErr_Occurred())
        goto error;
    value = PyObject_GetAttrString(sweep, "timeout");
    if (value == NULL)
        goto error;
    v->timeout = PyFloat_AsDouble(value);
    Py_DECREF(value);
    if (PyErr_Occurred())
        goto error;
    v->targets = v->state.len;
    if (v->packed.len != 4 * v->targets || v->sent.len != 4 * v->targets) {
        PyErr_SetString(PyExc_ValueError, "a sweep needs 4 octets of address and of count per target");
        goto error;
    }
    return 0;
error:
    view_release(v);
    return -1;
}

enum { SENT_ALL, BLOCKED, FOR_PYTHON };

/* send_v4(fd, sweep, cursor, end, first_echo, budget, window): send the round's echoes to
 * targets cursor..end-1 over the raw IPv4 socket, at most `budget` of them and while fewer than
 * `window` echoes are in flight, skipping targets with an error. Returns (cursor, echoes sent,
 * echoes ended unsent, status, [(target, errno) of refused sends]); status is BLOCKED (wait until
 * the socket is writable), FOR_PYTHON (the target at `cursor` is Python's to send) or SENT_ALL. */
static PyObject *flight_send_v4(Flight *self, PyObject *args)
{
    int fd;
    PyObject *sweep;
    Py_ssize_t cursor, end, budget, window;
    unsigned long first_echo;
    if (!PyArg_ParseTuple(args, "iOnnknn", &fd, &sweep, &cursor, &end, &first_echo, &budget, &window))
        return NULL;
    SweepView v;
    if (view_open(&v, sweep) < 0)
        return NULL;
    if (cursor < 0 || end > v.targets) {
        view_release(&v);
        PyErr_SetString(PyExc_IndexError, "targets beyond the sweep's");
        return NULL;
    }
    if (window > SEQUENCES - 1)
        window = SEQUENCES - 1;
    const uint8_t *packed = v.packed.buf, *state = v.state.buf;
    uint32_t *sent_counts = v.sent.buf;
    PyObject *failures = PyList_New(0);
    if (failures == NULL) {
        view_release(&v);
        return NULL;
    }
    uint8_t packets[SEND_CHUNK][16];
    struct sockaddr_in addresses[SEND_CHUNK];
    struct iovec iov[SEND_CHUNK];
    struct mmsghdr messages[SEND_CHUNK];
    Py_ssize_t targets[SEND_CHUNK];
    uint16_t seqs[SEND_CHUNK];
    Py_ssize_t sent = 0, ended = 0;
    int status = SENT_ALL;
    /* the request's words but the sequence's, for its checksum */
    uint8_t request[16] = {8, 0, 0, 0, (uint8_t)(self->ident >> 8), (uint8_t)self->ident, 0, 0};
    memcpy(request + 8, self->token, 8);
    uint32_t base = word_sum(request, 16);
    while (status == SENT_ALL) {
        int n = 0;
        while (n < SEND_CHUNK && cursor < end && sent + n < budget && self->in_flight < window) {
            if (state[cursor] & FAILED) {
                cursor++;
                ended++;
                continue;
            }
            if (state[cursor] & PYTHON) {
                status = FOR_PYTHON;
                break;
            }
            uint16_t seq = next_free(self);
            uint32_t checksum = 0xFFFF - (base + seq) % 0xFFFF;
            uint8_t *p = packets[n];
            memcpy(p, request, 16);
            p[2] = (uint8_t)(checksum >> 8);
            p[3] = (uint8_t)checksum;
            p[6] = (uint8_t)(seq >> 8);
            p[7] = (uint8_t)seq;
            memset(&addresses[n], 0, sizeof addresses[n]);
            addresses[n].sin_family = AF_INET;
            memcpy(&addresses[n].sin_addr, packed + 4 * cursor, 4);
            iov[n] = (struct iovec){p, 16};
            messages[n] = (struct mmsghdr){{&addresses[n], sizeof addresses[n], &iov[n], 1, NULL, 0, 0}, 0};
            take(self, seq, sweep, (uint32_t)(cursor * v.count + first_echo), 0.0, INFINITY);
            self->raw4[seq] = 1;
            memcpy(&self->peer[seq], packed + 4 * cursor, 4);
            targets[n] = cursor++;
            seqs[n++] = seq;
        }
        if (n == 0)
            break;
        double at = now();
        for (int i = 0; i < n; i++) {
            self->sent[seqs[i]] = at;
            self->deadline[seqs[i]] = at + v.timeout;
        }
        for (int i = 0; i < n;) {
            int done = sendmmsg(fd, messages + i, n - i, 0);
            if (done > 0) {
                for (int j = i; j < i + done; j++)
                    sent_counts[targets[j]]++;
                sent += done;
                i += done;
                continue;
            }
            int error = errno;
            if (error == EINTR)
                continue;
            if (error == EAGAIN || error == EWOULDBLOCK) {
                cursor = targets[i];
                for (int j = i; j < n; j++)
                    release(self, seqs[j]);
                status = BLOCKED;
                break;
            }
            release(self, seqs[i]);
            ended++;
            PyObject *failure = Py_BuildValue("(ni)", targets[i], error);
            if (failure == NULL || PyList_Append(failures, failure) < 0) {
                Py_XDECREF(failure);
                Py_DECREF(failures);
                view_release(&v);
                return NULL;
            }
            Py_DECREF(failure);
            i++;
        }
        if (cursor >= end || sent >= budget || self->in_flight >= window)
            break;
    }
    view_release(&v);
    return Py_BuildValue("(nnniN)", cursor, sent, ended, status, failures);
}

/* read_v4(fd, limit): read up to `limit` datagrams from the raw IPv4 socket; settle each echo
 * reply of ours that comes from its echo's target. Returns the ICMP errors about our echoes for
 * Python to settle: [(sequence, original destination (4 octets), type, code, time read)]. */
static PyObject *flight_read_v4(Flight *self, PyObject *args)
{
    int fd;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "in", &fd, &limit))
        return NULL;
    PyObject *errors = PyList_New(0);
    if (errors == NULL)
        return NULL;
    struct iovec iov[RECV_CHUNK];
    struct mmsghdr messages[RECV_CHUNK];
    Run run = {NULL};
    Py_ssize_t attempts = 0;
    while (attempts < limit) {
        int wanted = limit - attempts < RECV_CHUNK ? (int)(limit - attempts) : RECV_CHUNK;
        for (int i = 0; i < wanted; i++) {
            iov[i] = (struct iovec){self->buffers[i], DATAGRAM};
            messages[i] = (struct mmsghdr){{NULL, 0, &iov[i], 1, self->stamps[i], sizeof self->stamps[i], 0}, 0};
        }
        double wall_ahead = seconds(CLOCK_REALTIME) - now();
        int got = recvmmsg(fd, messages, wanted, MSG_DONTWAIT, NULL);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            attempts++; /* a pending socket error, as recv_into raised: the next datagram */
            continue;
        }
        if (got == 0)
            break;
        attempts += got;
        double read = now();
        for (int i = 0; i < got; i++) {
            uint16_t seq;
            uint32_t address;
            int code;
            int kind = parse(self->buffers[i], messages[i].msg_len, self->ident, self->token, &seq, &address, &code);
            if (kind < 0 || self->sweep[seq] == NULL || !self->raw4[seq] || self->peer[seq] != address)
                continue;
            double at = arrival(&messages[i].msg_hdr, wall_ahead, self->sent[seq], read);
            if (kind) {
                PyObject *error = Py_BuildValue("(Hy#iid)", seq, (const char *)&address, (Py_ssize_t)4, kind, code, at);
                if (error == NULL || PyList_Append(errors, error) < 0) {
                    Py_XDECREF(error);
                    goto fail;
                }
                Py_DECREF(error);
                continue;
            }
            if (run_switch(&run, self->sweep[seq]) < 0)
                goto fail;
            uint32_t echo = self->echo[seq];
            if ((Py_ssize_t)echo < run.rtts.len / (Py_ssize_t)sizeof(double))
                ((double *)run.rtts.buf)[echo] = (at - self->sent[seq]) * 1000.0;
            release(self, seq);
            run.ended++;
        }
        if (got < wanted)
            break;
    }
    if (run_flush(&run) < 0)
        goto fail;
    return errors;
fail:
    if (run.sweep != NULL) {
        PyBuffer_Release(&run.rtts);
        Py_CLEAR(run.sweep);
    }
    Py_DECREF(errors);
    return NULL;
}

/* reap(now): end the echoes whose deadline has passed; returns the earliest deadline left
 * (infinity if none). A scan of the 65,536 slots: tens of µs, at most once per _REAP_SLACK. */
static PyObject *flight_reap(Flight *self, PyObject *arg)
{
    double at = PyFloat_AsDouble(arg);
    if (at == -1.0 && PyErr_Occurred())
        return NULL;
    double earliest = INFINITY;
    Run run = {NULL};
    for (int seq = 0; seq < SEQUENCES; seq++) {
        double deadline = self->deadline[seq];
        if (deadline > at) {
            if (deadline < earliest)
                earliest = deadline;
            continue;
        }
        /* a timeout writes no RTT, but Run keeps the sweep's finish calls to one per run */
        if (run_switch(&run, self->sweep[seq]) < 0)
            goto fail;
        release(self, (uint16_t)seq);
        run.ended++;
    }
    if (run_flush(&run) < 0)
        goto fail;
    return PyFloat_FromDouble(earliest);
fail:
    if (run.sweep != NULL) {
        PyBuffer_Release(&run.rtts);
        Py_CLEAR(run.sweep);
    }
    return NULL;
}

/* claim(): the next free sequence, for an echo Python sends (then `take`s if the send went out) */
static PyObject *flight_claim(Flight *self, PyObject *unused)
{
    if (self->in_flight >= SEQUENCES - 1) {
        PyErr_SetString(PyExc_RuntimeError, "every sequence is in flight");
        return NULL;
    }
    return PyLong_FromLong(next_free(self));
}

static int seq_of(PyObject *arg, uint16_t *seq)
{
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value < 0 || value >= SEQUENCES) {
        PyErr_SetString(PyExc_ValueError, "sequence out of range");
        return -1;
    }
    *seq = (uint16_t)value;
    return 0;
}

/* take(seq, sweep, echo, sent, deadline): the echo Python sent holds sequence `seq` */
static PyObject *flight_take(Flight *self, PyObject *args)
{
    PyObject *arg, *sweep;
    unsigned long echo;
    double sent, deadline;
    uint16_t seq;
    if (!PyArg_ParseTuple(args, "OOkdd", &arg, &sweep, &echo, &sent, &deadline) || seq_of(arg, &seq) < 0)
        return NULL;
    if (self->sweep[seq] != NULL) {
        PyErr_SetString(PyExc_ValueError, "sequence in flight");
        return NULL;
    }
    take(self, seq, sweep, (uint32_t)echo, sent, deadline);
    Py_RETURN_NONE;
}

/* peek(seq): (sweep, echo, sent) of the echo in flight there, or None */
static PyObject *flight_peek(Flight *self, PyObject *arg)
{
    uint16_t seq;
    if (seq_of(arg, &seq) < 0)
        return NULL;
    if (self->sweep[seq] == NULL)
        Py_RETURN_NONE;
    return Py_BuildValue("(Okd)", self->sweep[seq], (unsigned long)self->echo[seq], self->sent[seq]);
}

static PyObject *flight_release(Flight *self, PyObject *arg)
{
    uint16_t seq;
    if (seq_of(arg, &seq) < 0)
        return NULL;
    if (self->sweep[seq] != NULL)
        release(self, seq);
    Py_RETURN_NONE;
}

/* clear(): [(sweep, echo)] of every echo in flight, all released */
static PyObject *flight_clear(Flight *self, PyObject *unused)
{
    PyObject *held = PyList_New(0);
    if (held == NULL)
        return NULL;
    for (int seq = 0; seq < SEQUENCES; seq++) {
        if (self->sweep[seq] == NULL)
            continue;
        PyObject *item = Py_BuildValue("(Ok)", self->sweep[seq], (unsigned long)self->echo[seq]);
        if (item == NULL || PyList_Append(held, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(held);
            return NULL;
        }
        Py_DECREF(item);
        release(self, (uint16_t)seq);
    }
    return held;
}

static PyObject *flight_get_in_flight(Flight *self, void *unused)
{
    return PyLong_FromSsize_t(self->in_flight);
}

static PyObject *flight_get_seq(Flight *self, void *unused)
{
    return PyLong_FromLong(self->seq);
}

static PyMethodDef flight_methods[] = {
    {"send_v4", (PyCFunction)flight_send_v4, METH_VARARGS, NULL},
    {"read_v4", (PyCFunction)flight_read_v4, METH_VARARGS, NULL},
    {"reap", (PyCFunction)flight_reap, METH_O, NULL},
    {"claim", (PyCFunction)flight_claim, METH_NOARGS, NULL},
    {"take", (PyCFunction)flight_take, METH_VARARGS, NULL},
    {"peek", (PyCFunction)flight_peek, METH_O, NULL},
    {"release", (PyCFunction)flight_release, METH_O, NULL},
    {"clear", (PyCFunction)flight_clear, METH_NOARGS, NULL},
    {NULL},
};

static PyGetSetDef flight_getset[] = {
    {"in_flight", (getter)flight_get_in_flight, NULL, NULL, NULL},
    {"seq", (getter)flight_get_seq, NULL, NULL, NULL},
    {NULL},
};

static PyTypeObject FlightType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "probes._icmp.Flight",
    .tp_basicsize = sizeof(Flight),
    .tp_dealloc = (destructor)flight_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = flight_methods,
    .tp_getset = flight_getset,
    .tp_init = (initproc)flight_init,
    .tp_new = PyType_GenericNew,
};

/* parse_v4(data, ident, token): what read_v4 makes of one raw IPv4 datagram, for the tests:
 * (type, sequence, address, code) or None */
static PyObject *parse_v4(PyObject *module, PyObject *args)
{
    Py_buffer data, token;
    unsigned int ident;
    if (!PyArg_ParseTuple(args, "y*Iy*", &data, &ident, &token))
        return NULL;
    PyObject *result = NULL;
    if (token.len != 8 || ident > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "ident is 16 bits and the token 8 octets");
    } else {
        uint16_t seq;
        uint32_t address;
        int code;
        int kind = parse(data.buf, data.len, (uint16_t)ident, token.buf, &seq, &address, &code);
        result = kind < 0 ? Py_NewRef(Py_None) : Py_BuildValue("(iHy#i)", kind, seq, (const char *)&address, (Py_ssize_t)4, code);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&token);
    return result;
}

static PyMethodDef module_methods[] = {
    {"parse_v4", (PyCFunction)parse_v4, METH_VARARGS, NULL},
    {NULL},
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "probes._icmp", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit__icmp(void)
{
    if (PyType_Ready(&FlightType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Py_INCREF(&FlightType);
    if (PyModule_AddObject(module, "Flight", (PyObject *)&FlightType) < 0 ||
        PyModule_AddIntConstant(module, "FAILED", FAILED) < 0 || PyModule_AddIntConstant(module, "PYTHON", PYTHON) < 0 ||
        PyModule_AddIntConstant(module, "BLOCKED", BLOCKED) < 0 ||
        PyModule_AddIntConstant(module, "SO_TIMESTAMPNS", SO_TIMESTAMPNS) < 0) {
        Py_DECREF(&FlightType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
