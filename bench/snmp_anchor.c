/* The C anchor for SNMP figures: net-snmp's async API doing what monitord's SnmpClient does.
 *
 *   snmp_anchor [-3 USER AUTHPASS PRIVPASS] walk DEVICES IN_FLIGHT REPETITIONS RETRIES PEERS COLUMN...
 *   snmp_anchor [-3 USER AUTHPASS PRIVPASS] get  REQUESTS IN_FLIGHT RETRIES PEERS OID
 *
 * walk: DEVICES multi-column GETBULK walks (all COLUMNs in each request, ended columns dropped,
 * max-repetitions REPETITIONS), IN_FLIGHT devices at once, device n on peer n % len(PEERS).
 * get: REQUESTS GETs of OID, IN_FLIGHT outstanding at any time, spread over PEERS.
 * PEERS is comma-separated (udp:127.0.0.1:16100,...), community "public", v2c, timeout 2 s;
 * with -3, SNMPv3 authPriv as USER with SHA and AES-128 keys from the two passphrases (the
 * engine ID is discovered when each session opens, before the clock starts).
 * Prints one line: values requests timeouts errors wall_s cpu_s, CPU and wall time counted from
 * the first request to the last reply (library set-up left out, as for the Python clients).
 * Built by bench/snmp_walk.py: gcc -O2 -o snmp_anchor snmp_anchor.c $(net-snmp-config --libs)
 */
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <time.h>

#define MAX_COLUMNS 64

struct walk {
    netsnmp_session *session;
    int active[MAX_COLUMNS], nactive;
    oid last[MAX_COLUMNS][MAX_OID_LEN];
    size_t last_len[MAX_COLUMNS];
};

static oid columns[MAX_COLUMNS][MAX_OID_LEN];
static size_t column_len[MAX_COLUMNS];
static int ncolumns, repetitions, started, finished, total, in_flight, npeers;
static long values, requests, timeouts, errors;
static netsnmp_session *peers[64];
static oid get_oid[MAX_OID_LEN];
static size_t get_oid_len;

static int walk_reply(int op, netsnmp_session *sp, int reqid, netsnmp_pdu *pdu, void *magic);
static int get_reply(int op, netsnmp_session *sp, int reqid, netsnmp_pdu *pdu, void *magic);

static void walk_send(struct walk *w) {
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GETBULK);
    pdu->non_repeaters = 0;
    pdu->max_repetitions = repetitions;
    for (int i = 0; i < w->nactive; i++)
        snmp_add_null_var(pdu, w->last[w->active[i]], w->last_len[w->active[i]]);
    requests++;
    if (!snmp_async_send(w->session, pdu, walk_reply, w)) { snmp_free_pdu(pdu); errors++; finished++; free(w); }
}

static void walk_start(void) {
    struct walk *w = calloc(1, sizeof *w);
    w->session = peers[started++ % npeers];
    w->nactive = ncolumns;
    for (int c = 0; c < ncolumns; c++) {
        w->active[c] = c;
        memcpy(w->last[c], columns[c], column_len[c] * sizeof(oid));
        w->last_len[c] = column_len[c];
    }
    walk_send(w);
}

static void walk_end(struct walk *w) {
    free(w);
    finished++;
    if (started < total) walk_start();
}

static int walk_reply(int op, netsnmp_session *sp, int reqid, netsnmp_pdu *pdu, void *magic) {
    struct walk *w = magic;
    if (op == NETSNMP_CALLBACK_OP_RESEND) return 1;
    if (op != NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || pdu->errstat != SNMP_ERR_NOERROR) {
        if (op == NETSNMP_CALLBACK_OP_TIMED_OUT) timeouts++; else errors++;
        walk_end(w);
        return 1;
    }
    int ended[MAX_COLUMNS] = {0}, position = 0;
    for (netsnmp_variable_list *v = pdu->variables; v; v = v->next_variable, position++) {
        int c = w->active[position % w->nactive];
        if (ended[c]) continue;
        if (v->type == SNMP_ENDOFMIBVIEW || v->name_length <= column_len[c]
            || memcmp(v->name, columns[c], column_len[c] * sizeof(oid)) != 0) { ended[c] = 1; continue; }
        if (snmp_oid_compare(v->name, v->name_length, w->last[c], w->last_len[c]) <= 0) { errors++; walk_end(w); return 1; }
        memcpy(w->last[c], v->name, v->name_length * sizeof(oid));
        w->last_len[c] = v->name_length;
        if (v->type != SNMP_NOSUCHOBJECT && v->type != SNMP_NOSUCHINSTANCE) values++;
    }
    int kept = 0;
    for (int i = 0; i < w->nactive; i++)
        if (!ended[w->active[i]]) w->active[kept++] = w->active[i];
    w->nactive = kept;
    if (kept && position) walk_send(w); else walk_end(w);
    return 1;
}

static void get_send(void) {
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
    snmp_add_null_var(pdu, get_oid, get_oid_len);
    requests++;
    if (!snmp_async_send(peers[started++ % npeers], pdu, get_reply, NULL)) { snmp_free_pdu(pdu); errors++; finished++; }
}

static int get_reply(int op, netsnmp_session *sp, int reqid, netsnmp_pdu *pdu, void *magic) {
    if (op == NETSNMP_CALLBACK_OP_RESEND) return 1;
    if (op == NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE && pdu->errstat == SNMP_ERR_NOERROR)
        for (netsnmp_variable_list *v = pdu->variables; v; v = v->next_variable) values++;
    else if (op == NETSNMP_CALLBACK_OP_TIMED_OUT) timeouts++;
    else errors++;
    finished++;
    if (started < total) get_send();
    return 1;
}

static double seconds(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

/* SNMPv3 authPriv, SHA-1 and AES-128: the keys are localized by the library once the engine ID is known. */
static int use_v3(netsnmp_session *s, char *user, char *auth, char *priv) {
    s->version = SNMP_VERSION_3;
    s->securityName = user;
    s->securityNameLen = strlen(user);
    s->securityLevel = SNMP_SEC_LEVEL_AUTHPRIV;
    s->securityAuthProto = usmHMACSHA1AuthProtocol;
    s->securityAuthProtoLen = USM_AUTH_PROTO_SHA_LEN;
    s->securityAuthKeyLen = USM_AUTH_KU_LEN;
    s->securityPrivProto = usmAESPrivProtocol;
    s->securityPrivProtoLen = USM_PRIV_PROTO_AES_LEN;
    s->securityPrivKeyLen = USM_PRIV_KU_LEN;
    return generate_Ku(s->securityAuthProto, s->securityAuthProtoLen, (u_char *)auth, strlen(auth), s->securityAuthKey,
                       &s->securityAuthKeyLen) == SNMPERR_SUCCESS
           && generate_Ku(s->securityAuthProto, s->securityAuthProtoLen, (u_char *)priv, strlen(priv), s->securityPrivKey,
                          &s->securityPrivKeyLen) == SNMPERR_SUCCESS;
}

int main(int argc, char **argv) {
    char *v3[3] = {NULL, NULL, NULL};
    int use_v3_session = argc > 4 && !strcmp(argv[1], "-3");
    if (use_v3_session) {
        memcpy(v3, argv + 2, sizeof v3);
        argv[4] = argv[0];
        argv += 4;
        argc -= 4;
    }
    int walk = argc >= 8 && !strcmp(argv[1], "walk"), get = argc == 7 && !strcmp(argv[1], "get");
    if (!walk && !get) {
        fprintf(stderr, "usage: %s [-3 USER AUTHPASS PRIVPASS] walk DEVICES IN_FLIGHT REPETITIONS RETRIES PEERS COLUMN...\n"
                        "       %s [-3 USER AUTHPASS PRIVPASS] get REQUESTS IN_FLIGHT RETRIES PEERS OID\n", argv[0], argv[0]);
        return 2;
    }
    total = atoi(argv[2]);
    in_flight = atoi(argv[3]);
    int arg = 4;
    if (walk) repetitions = atoi(argv[arg++]);
    int retries = atoi(argv[arg++]);
    char *peer_list = argv[arg++];
    init_snmp("snmp_anchor");
    for (char *peer = strtok(peer_list, ","); peer && npeers < 64; peer = strtok(NULL, ",")) {
        netsnmp_session s;
        snmp_sess_init(&s);
        s.peername = peer;
        s.version = SNMP_VERSION_2c;
        s.community = (u_char *)"public";
        s.community_len = 6;
        s.timeout = 2000000;
        s.retries = retries;
        if (use_v3_session && !use_v3(&s, v3[0], v3[1], v3[2])) { fprintf(stderr, "cannot derive the SNMPv3 keys\n"); return 2; }
        if (!(peers[npeers++] = snmp_open(&s))) { snmp_perror("snmp_open"); return 2; }
    }
    if (walk) {
        for (; arg < argc && ncolumns < MAX_COLUMNS; arg++, ncolumns++) {
            column_len[ncolumns] = MAX_OID_LEN;
            if (!read_objid(argv[arg], columns[ncolumns], &column_len[ncolumns])) { snmp_perror(argv[arg]); return 2; }
        }
    } else {
        get_oid_len = MAX_OID_LEN;
        if (!read_objid(argv[arg], get_oid, &get_oid_len)) { snmp_perror(argv[arg]); return 2; }
    }
    struct rusage before, after;
    struct timespec begin, end;
    getrusage(RUSAGE_SELF, &before);
    clock_gettime(CLOCK_MONOTONIC, &begin);
    for (int i = 0; i < in_flight && started < total; i++)
        if (walk) walk_start(); else get_send();
    while (finished < total) {
        int fds = 0, block = 1;
        fd_set readable;
        struct timeval timeout;
        FD_ZERO(&readable);
        snmp_select_info(&fds, &readable, &timeout, &block);
        int n = select(fds, &readable, NULL, NULL, block ? NULL : &timeout);
        if (n > 0) snmp_read(&readable); else if (n == 0) snmp_timeout(); else break;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    getrusage(RUSAGE_SELF, &after);
    double cpu = seconds(after.ru_utime) - seconds(before.ru_utime) + seconds(after.ru_stime) - seconds(before.ru_stime);
    printf("values=%ld requests=%ld timeouts=%ld errors=%ld wall=%.6f cpu=%.6f\n", values, requests, timeouts,
           errors, (end.tv_sec - begin.tv_sec) + (end.tv_nsec - begin.tv_nsec) / 1e9, cpu);
    for (int i = 0; i < npeers; i++) snmp_close(peers[i]);
    snmp_shutdown("snmp_anchor");
    return 0;
}
