/*
 * The filter language: a hand-written tokenizer and recursive-descent
 * parser that compiles straight into a small tree of integer tests over
 * struct ca_hot.  Name tests (host, proto, category, risk) become bitsets
 * over the workspace's interned string ids, built once at compile time, so
 * a flow is matched without touching a string.  Every error names the
 * 0-based column of the token at fault.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "ca_error.h"
#include "filter.h"

#define TEXT_MAX 4096
#define NODES_MAX 512
#define VALUES_MAX 256

enum node_kind { N_TRUE, N_AND, N_OR, N_NOT, N_NUM, N_NUMF, N_ADDR, N_CC, N_STR };

enum getter {
    G_PORT,
    G_ASN,
    G_BYTES,
    G_SENT,
    G_RECV,
    G_PACKETS,
    G_SPKTS,
    G_RPKTS,
    G_DURATION,
    G_START,
    G_END,
    G_START_REL,
    G_END_REL,
    G_HOUR,
    G_DAY,
    G_WEEKDAY,
    G_CAPTURE,
    G_VLAN,
    G_L4,
    G_TCPSTATE,
    G_NRISKS,
    G_IPVER,
};

enum ftype {
    T_ADDR,
    T_NUM, /* plain integer, SI suffixes k/M/G allowed */
    T_BYTES,
    T_DUR,
    T_TIME,
    T_HOUR,
    T_DAY,
    T_WEEKDAY,
    T_L4,
    T_TCPSTATE,
    T_CC,
    T_STR,
    T_CAPTURE,
    T_RISK,
};

/* Which ids of a hot record a name test reads. */
enum { S_HOST = 1, S_DNS = 2, S_PROTO = 4, S_CAT = 8, S_RISKS = 16 };

struct fdef {
    const char *name;
    uint8_t type;
    uint8_t sides; /* 1 client, 2 server, 3 either */
    uint8_t getter;
    uint8_t strsel;
};

static const struct fdef fields[] = {
    {"ip", T_ADDR, 3, 0, 0},
    {"src", T_ADDR, 1, 0, 0},
    {"dst", T_ADDR, 2, 0, 0},
    {"src.ip", T_ADDR, 1, 0, 0},
    {"dst.ip", T_ADDR, 2, 0, 0},
    {"port", T_NUM, 3, G_PORT, 0},
    {"src.port", T_NUM, 1, G_PORT, 0},
    {"dst.port", T_NUM, 2, G_PORT, 0},
    {"l4", T_L4, 1, G_L4, 0},
    {"proto", T_STR, 1, 0, S_PROTO},
    {"category", T_STR, 1, 0, S_CAT},
    {"host", T_STR, 1, 0, S_HOST | S_DNS},
    {"country", T_CC, 3, 0, 0},
    {"src.country", T_CC, 1, 0, 0},
    {"dst.country", T_CC, 2, 0, 0},
    {"asn", T_NUM, 3, G_ASN, 0},
    {"src.asn", T_NUM, 1, G_ASN, 0},
    {"dst.asn", T_NUM, 2, G_ASN, 0},
    {"bytes", T_BYTES, 1, G_BYTES, 0},
    {"sent", T_BYTES, 1, G_SENT, 0},
    {"recv", T_BYTES, 1, G_RECV, 0},
    {"packets", T_NUM, 1, G_PACKETS, 0},
    {"sent.packets", T_NUM, 1, G_SPKTS, 0},
    {"recv.packets", T_NUM, 1, G_RPKTS, 0},
    {"duration", T_DUR, 1, G_DURATION, 0},
    {"start", T_TIME, 1, G_START, 0},
    {"end", T_TIME, 1, G_END, 0},
    {"hour", T_HOUR, 1, G_HOUR, 0},
    {"day", T_DAY, 1, G_DAY, 0},
    {"weekday", T_WEEKDAY, 1, G_WEEKDAY, 0},
    {"capture", T_CAPTURE, 1, G_CAPTURE, 0},
    {"vlan", T_NUM, 1, G_VLAN, 0},
    {"tcp.state", T_TCPSTATE, 1, G_TCPSTATE, 0},
    {"risk", T_RISK, 1, G_NRISKS, S_RISKS},
    {"ip.version", T_NUM, 1, G_IPVER, 0},
};

struct range {
    int64_t lo, hi;
};

struct pfx {
    uint8_t addr[16];
    uint8_t ver, bits;
};

struct node {
    uint8_t kind, getter, getter2, sides, op, strsel;
    int a, b;
    size_t n;
    struct range *r;
    struct pfx *p;
    uint16_t *cc;
    uint8_t *bits;
    uint32_t nbits;
};

struct ca_filter {
    struct node *nodes;
    int nnodes, root;
    int uses_cap_start;
};

/* ---- tokens -------------------------------------------------------------- */

enum tok { K_EOF, K_LP, K_RP, K_COMMA, K_OP, K_WORD, K_STRING };
enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_SUB, OP_IN };

static const char *const op_names[] = {"==", "!=", "<", "<=", ">", ">=", "~", "in"};

struct parser {
    const char *s;
    size_t len, pos;
    /* current token */
    int tk, op;
    size_t tpos;
    char text[TEXT_MAX];
    struct ca_filter *f;
    const struct ca_filter_env *env;
    char *err;
    size_t errlen;
    int errpos, failed;
};

static int fail(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, size_t pos, const char *fmt, ...)
{
    va_list ap;

    if (!p->failed) {
        p->failed = 1;
        p->errpos = (int)pos;
        if (p->err != NULL && p->errlen > 0) {
            va_start(ap, fmt);
            vsnprintf(p->err, p->errlen, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

static int is_word_char(int c)
{
    return c != '\0' && !isspace(c) && strchr("()\",=!<>~&|", c) == NULL;
}

static int lex(struct parser *p)
{
    const char *s = p->s;
    size_t i = p->pos, n = 0;

    while (i < p->len && isspace((unsigned char)s[i]))
        i++;
    p->tpos = i;
    p->text[0] = '\0';
    if (i >= p->len) {
        p->tk = K_EOF;
        p->pos = i;
        return 0;
    }
    switch (s[i]) {
    case '(':
        p->tk = K_LP;
        p->pos = i + 1;
        return 0;
    case ')':
        p->tk = K_RP;
        p->pos = i + 1;
        return 0;
    case ',':
        p->tk = K_COMMA;
        p->pos = i + 1;
        return 0;
    case '"':
        for (i++; i < p->len && s[i] != '"'; i++) {
            if (s[i] == '\\' && i + 1 < p->len)
                i++;
            if (n + 1 >= sizeof(p->text))
                return fail(p, p->tpos, "quoted value too long");
            p->text[n++] = s[i];
        }
        if (i >= p->len)
            return fail(p, p->tpos, "unterminated quoted value");
        p->text[n] = '\0';
        p->tk = K_STRING;
        p->pos = i + 1;
        return 0;
    }
    p->tk = K_OP;
    if (s[i] == '&' || s[i] == '|') {
        if (i + 1 < p->len && s[i + 1] == s[i]) {
            p->tk = K_WORD;
            strcpy(p->text, s[i] == '&' ? "and" : "or");
            p->pos = i + 2;
            return 0;
        }
        return fail(p, i, "unexpected '%c' (use && or ||, or and/or)", s[i]);
    }
    if (s[i] == '=' && s[i + 1] == '=')
        p->op = OP_EQ, p->pos = i + 2;
    else if (s[i] == '=')
        p->op = OP_EQ, p->pos = i + 1;
    else if (s[i] == '!' && s[i + 1] == '=')
        p->op = OP_NE, p->pos = i + 2;
    else if (s[i] == '!') {
        p->tk = K_WORD;
        strcpy(p->text, "not");
        p->pos = i + 1;
        return 0;
    } else if (s[i] == '<' && s[i + 1] == '=')
        p->op = OP_LE, p->pos = i + 2;
    else if (s[i] == '<')
        p->op = OP_LT, p->pos = i + 1;
    else if (s[i] == '>' && s[i + 1] == '=')
        p->op = OP_GE, p->pos = i + 2;
    else if (s[i] == '>')
        p->op = OP_GT, p->pos = i + 1;
    else if (s[i] == '~')
        p->op = OP_SUB, p->pos = i + 1;
    else {
        p->tk = K_WORD;
        while (i < p->len && is_word_char((unsigned char)s[i])) {
            if (n + 1 >= sizeof(p->text))
                return fail(p, p->tpos, "value too long");
            p->text[n++] = s[i++];
        }
        if (n == 0)
            return fail(p, i, "unexpected character '%c'", s[i]);
        p->text[n] = '\0';
        p->pos = i;
    }
    return 0;
}

static int is_kw(const struct parser *p, const char *kw)
{
    return p->tk == K_WORD && strcasecmp(p->text, kw) == 0;
}

/* ---- nodes --------------------------------------------------------------- */

static int node_new(struct parser *p, int kind)
{
    struct ca_filter *f = p->f;
    struct node *g;

    if (f->nnodes >= NODES_MAX)
        return fail(p, p->tpos, "filter too complex (more than %d terms)", NODES_MAX);
    g = realloc(f->nodes, (size_t)(f->nnodes + 1) * sizeof(*g));
    if (g == NULL)
        return fail(p, p->tpos, "out of memory");
    f->nodes = g;
    memset(&g[f->nnodes], 0, sizeof(*g));
    g[f->nnodes].kind = (uint8_t)kind;
    g[f->nnodes].a = g[f->nnodes].b = -1;
    return f->nnodes++;
}

static int node2(struct parser *p, int kind, int a, int b)
{
    int n = node_new(p, kind);

    if (n >= 0) {
        p->f->nodes[n].a = a;
        p->f->nodes[n].b = b;
    }
    return n;
}

/* ---- values -------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* YYYY-MM-DD into days since the epoch; returns chars used or -1. */
static int parse_date(const char *s, int64_t *days)
{
    int y, m, d;

    if (digits(s, 4, &y) < 0 || s[4] != '-' || digits(s + 5, 2, &m) < 0 || s[7] != '-' ||
        digits(s + 8, 2, &d) < 0 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    *days = days_from_civil(y, (unsigned)m, (unsigned)d);
    return 10;
}

int ca_filter_parse_time(const char *s, int64_t *ns)
{
    int64_t days, frac = 0, off = 0;
    int hh = 0, mi = 0, ss = 0, n, fd = 0;
    const char *t;

    n = parse_date(s, &days);
    if (n < 0)
        return -1;
    t = s + n;
    if (*t == 'T' || *t == 't' || *t == '_') {
        t++;
        if (digits(t, 2, &hh) < 0 || t[2] != ':' || digits(t + 3, 2, &mi) < 0)
            return -1;
        t += 5;
        if (*t == ':') {
            if (digits(t + 1, 2, &ss) < 0)
                return -1;
            t += 3;
            if (*t == '.' || *t == ',') {
                for (t++; isdigit((unsigned char)*t); t++, fd++)
                    if (fd < 9)
                        frac = frac * 10 + (*t - '0');
                if (fd == 0)
                    return -1;
                for (int i = fd < 9 ? fd : 9; i < 9; i++)
                    frac *= 10;
            }
        }
        if (hh > 23 || mi > 59 || ss > 60)
            return -1;
    }
    if (*t == 'Z' || *t == 'z') {
        t++;
    } else if (*t == '+' || *t == '-') {
        int oh, om = 0, sign = *t == '-' ? -1 : 1;

        if (digits(t + 1, 2, &oh) < 0)
            return -1;
        t += 3;
        if (*t == ':')
            t++;
        if (isdigit((unsigned char)*t)) {
            if (digits(t, 2, &om) < 0)
                return -1;
            t += 2;
        }
        off = sign * ((int64_t)oh * 3600 + om * 60);
    }
    if (*t != '\0')
        return -1;
    *ns = ((days * 86400 + hh * 3600 + mi * 60 + ss) - off) * 1000000000LL + frac;
    return 0;
}

struct unit {
    const char *name;
    double mul;
};

static const struct unit byte_units[] = {{"", 1},
                                         {"b", 1},
                                         {"k", 1e3},
                                         {"kb", 1e3},
                                         {"m", 1e6},
                                         {"mb", 1e6},
                                         {"g", 1e9},
                                         {"gb", 1e9},
                                         {"t", 1e12},
                                         {"tb", 1e12},
                                         {"kib", 1024},
                                         {"mib", 1048576.0},
                                         {"gib", 1073741824.0},
                                         {"tib", 1099511627776.0},
                                         {NULL, 0}};
static const struct unit dur_units[] = {
    {"", 1e9},   {"ns", 1},     {"us", 1e3},   {"ms", 1e6},    {"s", 1e9},      {"sec", 1e9},
    {"m", 60e9}, {"min", 60e9}, {"h", 3600e9}, {"d", 86400e9}, {"w", 604800e9}, {NULL, 0}};
static const struct unit num_units[] = {{"", 1}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {NULL, 0}};

/* A non-negative number with an optional unit; 0 or -1. */
static int parse_num(const char *s, const struct unit *units, int64_t *out)
{
    char *end;
    double v;

    if (!isdigit((unsigned char)s[0]) && !(s[0] == '.' && isdigit((unsigned char)s[1])))
        return -1;
    v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0)
        return -1;
    for (const struct unit *u = units; u->name != NULL; u++) {
        if (strcasecmp(end, u->name) == 0) {
            v *= u->mul;
            if (v > 9.2e18)
                return -1;
            *out = llround(v);
            return 0;
        }
    }
    return -1;
}

int ca_filter_parse_cidr(const char *s, uint8_t addr[16], int *ver, int *bits)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
    int b = -1;

    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(addr, 0, 16);
    if (slash != NULL) {
        if (digits(slash + 1, (int)strlen(slash + 1), &b) < 0 || slash[1] == '\0' ||
            strlen(slash + 1) > 3)
            return -1;
    }
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *ver = 4;
        if (b > 32)
            return -1;
        *bits = b < 0 ? 32 : b;
    } else if (inet_pton(AF_INET6, buf, addr) == 1) {
        *ver = 6;
        if (b > 128)
            return -1;
        *bits = b < 0 ? 128 : b;
    } else {
        return -1;
    }
    /* Host bits beyond the prefix are ignored (10.1.2.3/8 is 10.0.0.0/8). */
    for (int i = *bits; i < 128; i++)
        addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    return 0;
}

static const char *const l4_names[] = {
    [1] = "icmp", [2] = "igmp", [6] = "tcp",     [17] = "udp",  [41] = "ipv6", [47] = "gre",
    [50] = "esp", [51] = "ah",  [58] = "icmpv6", [89] = "ospf", [132] = "sctp"};

const char *ca_l4_name(int l4)
{
    if (l4 < 0 || l4 >= (int)(sizeof(l4_names) / sizeof(l4_names[0])))
        return NULL;
    return l4_names[l4];
}

static const char *const tcp_state_names[] = {"none",   "incomplete", "established",
                                              "closed", "reset",      "midstream"};

const char *ca_tcp_state_name(int st)
{
    if (st < 0 || st >= (int)(sizeof(tcp_state_names) / sizeof(tcp_state_names[0])))
        return NULL;
    return tcp_state_names[st];
}

static const char *const weekday_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* ---- name matching ------------------------------------------------------- */

struct strmatch {
    const char *val;
    int op;    /* OP_EQ or OP_SUB */
    int field; /* strsel */
    uint8_t *bits;
    uint32_t nbits;
};

static int ieq_n(const char *a, size_t an, const char *b)
{
    return strlen(b) == an && strncasecmp(a, b, an) == 0;
}

static int str_matches(const struct strmatch *m, const char *s)
{
    const char *v = m->val;

    if (m->op == OP_SUB)
        return strcasestr(s, v) != NULL;
    if (m->field & (S_HOST | S_DNS)) {
        if (v[0] == '*') {
            size_t sl = strlen(s), vl = strlen(v + 1);

            return sl >= vl && strcasecmp(s + sl - vl, v + 1) == 0;
        }
        return strcasecmp(s, v) == 0;
    }
    if (m->field & (S_PROTO | S_RISKS)) {
        /* The whole name, or one of its parts: "TLS" matches "TLS.Azure",
         * "Azure" too; a risk name matches a list that holds it. */
        const char *sep = m->field & S_PROTO ? "." : ",";
        const char *p = s;

        if (strcasecmp(s, v) == 0)
            return 1;
        while (*p != '\0') {
            size_t n = strcspn(p, sep);
            const char *q = p;
            size_t qn = n;

            while (qn > 0 && isspace((unsigned char)*q))
                q++, qn--;
            while (qn > 0 && isspace((unsigned char)q[qn - 1]))
                qn--;
            if (ieq_n(q, qn, v))
                return 1;
            p += n;
            if (*p != '\0')
                p++;
        }
        return 0;
    }
    return strcasecmp(s, v) == 0;
}

static int str_each(void *arg, uint32_t id, const char *s)
{
    struct strmatch *m = arg;

    if (id < m->nbits && str_matches(m, s))
        m->bits[id / 8] |= (uint8_t)(1u << (id % 8));
    return 0;
}

/* ---- comparisons --------------------------------------------------------- */

static const struct fdef *field_find(const char *name)
{
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strcasecmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

struct val {
    char text[TEXT_MAX];
    size_t pos;
    int quoted;
};

static int add_range(struct parser *p, struct node *n, int64_t lo, int64_t hi)
{
    struct range *g = realloc(n->r, (n->n + 1) * sizeof(*g));

    if (g == NULL)
        return fail(p, p->tpos, "out of memory");
    n->r = g;
    g[n->n].lo = lo;
    g[n->n].hi = hi;
    n->n++;
    return 0;
}

/* One scalar value of a numeric-like field into *v (with *rel for times). */
static int scalar(struct parser *p, const struct fdef *fd, const char *t, size_t pos, int64_t *v,
                  int *rel)
{
    int64_t x;

    *rel = 0;
    switch (fd->type) {
    case T_NUM:
    case T_CAPTURE:
    case T_RISK:
        if (parse_num(t, num_units, &x) < 0)
            return fail(p, pos, "'%s' is not a number for %s", t, fd->name);
        break;
    case T_BYTES:
        if (parse_num(t, byte_units, &x) < 0)
            return fail(p, pos, "'%s' is not a size for %s (e.g. 1500, 10KB, 1.5MB, 2GiB)", t,
                        fd->name);
        break;
    case T_DUR:
        if (parse_num(t, dur_units, &x) < 0)
            return fail(p, pos, "'%s' is not a duration (e.g. 30s, 250ms, 5m, 2h)", t);
        break;
    case T_TIME:
        if (ca_filter_parse_time(t, &x) == 0)
            break;
        if (parse_num(t[0] == '+' ? t + 1 : t, dur_units, &x) == 0) {
            *rel = 1;
            break;
        }
        return fail(p, pos,
                    "'%s' is not a time: ISO 8601 (2024-03-01T10:00:00Z) or an offset from "
                    "the capture start (+90s, 5m)",
                    t);
    case T_HOUR:
        if (parse_num(t, num_units, &x) < 0 || x > 23)
            return fail(p, pos, "'%s' is not an hour (0-23)", t);
        break;
    case T_DAY:
        if (parse_date(t, &x) != 10 || t[10] != '\0')
            return fail(p, pos, "'%s' is not a date (YYYY-MM-DD)", t);
        break;
    case T_WEEKDAY:
        for (x = 0; x < 7; x++)
            if (strncasecmp(t, weekday_names[x], 3) == 0 && strlen(t) >= 3)
                break;
        if (x == 7) {
            if (parse_num(t, num_units, &x) < 0 || x < 1 || x > 7)
                return fail(p, pos, "'%s' is not a weekday (mon..sun or 1..7)", t);
        } else {
            x++;
        }
        break;
    case T_L4:
        for (x = 0; x < (int64_t)(sizeof(l4_names) / sizeof(l4_names[0])); x++)
            if (l4_names[x] != NULL && strcasecmp(t, l4_names[x]) == 0)
                break;
        if (x == (int64_t)(sizeof(l4_names) / sizeof(l4_names[0])) &&
            (parse_num(t, num_units, &x) < 0 || x > 255))
            return fail(p, pos, "'%s' is not a layer-4 protocol (tcp, udp, icmp, ... or 0-255)", t);
        break;
    case T_TCPSTATE:
        for (x = 0; x < 6; x++)
            if (strcasecmp(t, tcp_state_names[x]) == 0)
                break;
        if (x == 6)
            return fail(p, pos,
                        "'%s' is not a TCP state (established, closed, reset, incomplete, "
                        "midstream, none)",
                        t);
        break;
    default:
        return fail(p, pos, "internal: %s is not numeric", fd->name);
    }
    *v = x;
    return 0;
}

static int has_range_dash(const struct fdef *fd, const char *t)
{
    if (fd->type == T_TIME || fd->type == T_DAY)
        return 0;
    return t[0] != '\0' && strchr(t + 1, '-') != NULL;
}

static int num_value(struct parser *p, const struct fdef *fd, struct node *n, int op,
                     const struct val *v)
{
    int64_t x, y;
    int rel, rel2;

    if (fd->type == T_CAPTURE && (v->quoted || !isdigit((unsigned char)v->text[0]))) {
        uint32_t id = 0;

        if (p->env == NULL || p->env->capture_by_name == NULL ||
            p->env->capture_by_name(p->env->arg, v->text, &id) != 0)
            return fail(p, v->pos, "no capture named '%s'", v->text);
        x = id;
        if (op != OP_EQ)
            return fail(p, v->pos, "a capture name needs == or in");
        return add_range(p, n, x, x);
    }
    if (has_range_dash(fd, v->text)) {
        char a[TEXT_MAX];
        const char *dash = strchr(v->text + 1, '-');
        size_t an = (size_t)(dash - v->text);

        if (op != OP_EQ)
            return fail(p, v->pos, "a range needs == or in");
        memcpy(a, v->text, an);
        a[an] = '\0';
        if (scalar(p, fd, a, v->pos, &x, &rel) < 0 ||
            scalar(p, fd, dash + 1, v->pos + an + 1, &y, &rel2) < 0)
            return -1;
        if (y < x)
            return fail(p, v->pos, "range '%s' ends before it starts", v->text);
        return add_range(p, n, x, y);
    }
    if (scalar(p, fd, v->text, v->pos, &x, &rel) < 0)
        return -1;
    if (rel) {
        n->getter = fd->getter == G_START ? G_START_REL : G_END_REL;
        p->f->uses_cap_start = 1;
    }
    switch (op) {
    case OP_EQ:
        return add_range(p, n, x, x);
    case OP_LT:
        return add_range(p, n, INT64_MIN, x - 1);
    case OP_LE:
        return add_range(p, n, INT64_MIN, x);
    case OP_GT:
        return add_range(p, n, x + 1, INT64_MAX);
    case OP_GE:
        return add_range(p, n, x, INT64_MAX);
    }
    return fail(p, v->pos, "internal: bad operator");
}

static int addr_value(struct parser *p, struct node *n, const struct val *v)
{
    struct pfx *g;
    int ver, bits;

    g = realloc(n->p, (n->n + 1) * sizeof(*g));
    if (g == NULL)
        return fail(p, v->pos, "out of memory");
    n->p = g;
    if (ca_filter_parse_cidr(v->text, g[n->n].addr, &ver, &bits) < 0)
        return fail(p, v->pos, "'%s' is not an IP address or CIDR (10.0.0.0/8, 2001:db8::/32)",
                    v->text);
    g[n->n].ver = (uint8_t)ver;
    g[n->n].bits = (uint8_t)bits;
    n->n++;
    return 0;
}

static int cc_value(struct parser *p, struct node *n, const struct val *v)
{
    size_t l = strlen(v->text);
    uint16_t *g;

    if (l > 2 || (l > 0 && !(isalpha((unsigned char)v->text[0]) || v->text[0] == '-')))
        return fail(p, v->pos, "'%s' is not a two-letter country code (US, DE, -- private)",
                    v->text);
    g = realloc(n->cc, (n->n + 1) * sizeof(*g));
    if (g == NULL)
        return fail(p, v->pos, "out of memory");
    n->cc = g;
    g[n->n++] = (uint16_t)((l > 0 ? toupper((unsigned char)v->text[0]) : 0) << 8 |
                           (l > 1 ? toupper((unsigned char)v->text[1]) : 0));
    return 0;
}

static int str_value(struct parser *p, struct node *n, int op, const struct val *v)
{
    static const int kinds[][2] = {{S_HOST | S_DNS, CA_STR_HOST},
                                   {S_PROTO, CA_STR_PROTO},
                                   {S_CAT, CA_STR_CATEGORY},
                                   {S_RISKS, CA_STR_RISKS}};
    struct strmatch m = {v->text, op, n->strsel, NULL, 0};
    int kind = 0;

    if (v->text[0] == '\0')
        return fail(p, v->pos, "empty name");
    if (p->env == NULL || p->env->strings == NULL)
        return 0; /* nothing interned: matches nothing */
    if (n->bits == NULL) {
        n->nbits = (p->env->str_max != NULL ? p->env->str_max(p->env->arg) : 0) + 1;
        n->bits = calloc((n->nbits + 7) / 8, 1);
        if (n->bits == NULL)
            return fail(p, v->pos, "out of memory");
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i][0] == n->strsel)
            kind = kinds[i][1];
    m.bits = n->bits;
    m.nbits = n->nbits;
    if (p->env->strings(p->env->arg, kind, str_each, &m) != 0)
        return fail(p, v->pos, "cannot read names");
    return 0;
}

static int read_value(struct parser *p, struct val *v)
{
    if (p->tk != K_WORD && p->tk != K_STRING) {
        if (p->tk == K_EOF)
            return fail(p, p->tpos, "a value is missing at the end");
        return fail(p, p->tpos, "expected a value");
    }
    snprintf(v->text, sizeof(v->text), "%s", p->text);
    v->pos = p->tpos;
    v->quoted = p->tk == K_STRING;
    return lex(p);
}

static int comparison(struct parser *p)
{
    const struct fdef *fd;
    size_t fpos = p->tpos, opos;
    int op, n, in_list, nkind;
    struct node *nd;
    struct val v;

    if (p->tk != K_WORD) {
        if (p->tk == K_EOF)
            return fail(p, p->tpos, "a condition is missing at the end");
        return fail(p, p->tpos, "expected a field name");
    }
    fd = field_find(p->text);
    if (fd == NULL)
        return fail(p, fpos, "unknown field '%s'", p->text);
    if (lex(p) < 0)
        return -1;
    opos = p->tpos;
    if (is_kw(p, "in")) {
        op = OP_IN;
    } else if (p->tk == K_OP) {
        op = p->op;
    } else {
        return fail(p, opos, "expected an operator (== != < <= > >= ~ in) after %s", fd->name);
    }
    if (lex(p) < 0)
        return -1;
    in_list = op == OP_IN;
    if (op == OP_SUB && fd->type != T_STR && fd->type != T_RISK)
        return fail(p, opos, "~ (contains) applies to names: host, proto, category, risk");
    if ((op == OP_LT || op == OP_LE || op == OP_GT || op == OP_GE) &&
        (fd->type == T_ADDR || fd->type == T_CC || fd->type == T_STR || fd->type == T_L4 ||
         fd->type == T_TCPSTATE))
        return fail(p, opos, "operator %s does not apply to %s", op_names[op], fd->name);

    /* field OP field: sent > recv */
    if (!in_list && p->tk == K_WORD && field_find(p->text) != NULL &&
        (fd->type == T_NUM || fd->type == T_BYTES || fd->type == T_DUR) && fd->sides != 3 &&
        op != OP_SUB) {
        const struct fdef *f2 = field_find(p->text);

        if (f2->sides == 3 || !(f2->type == T_NUM || f2->type == T_BYTES || f2->type == T_DUR))
            return fail(p, p->tpos, "%s cannot be compared with %s", fd->name, f2->name);
        n = node_new(p, N_NUMF);
        if (n < 0)
            return -1;
        nd = &p->f->nodes[n];
        nd->getter = fd->getter;
        nd->getter2 = f2->getter;
        nd->op = (uint8_t)op;
        if (lex(p) < 0)
            return -1;
        return op == OP_NE ? node2(p, N_NOT, n, -1) : n;
    }

    switch (fd->type) {
    case T_ADDR:
        nkind = N_ADDR;
        break;
    case T_CC:
        nkind = N_CC;
        break;
    case T_STR:
        nkind = N_STR;
        break;
    case T_RISK: /* a count (risk > 0) or names (risk == "...") */
        nkind = (p->tk == K_WORD && isdigit((unsigned char)p->text[0])) ? N_NUM : N_STR;
        break;
    default:
        nkind = N_NUM;
    }
    n = node_new(p, nkind);
    if (n < 0)
        return -1;
    nd = &p->f->nodes[n];
    nd->getter = fd->getter;
    nd->sides = fd->sides;
    nd->strsel = fd->strsel;
    if (nkind == N_STR && op != OP_EQ && op != OP_NE && op != OP_SUB && op != OP_IN)
        return fail(p, opos, "operator %s does not apply to names", op_names[op]);
    if (in_list) {
        if (p->tk != K_LP)
            return fail(p, p->tpos, "expected ( after in");
        if (lex(p) < 0)
            return -1;
    }
    for (int count = 0;; count++) {
        int r, vop = in_list || op == OP_NE ? OP_EQ : op;

        if (count >= VALUES_MAX)
            return fail(p, p->tpos, "too many values (at most %d)", VALUES_MAX);
        if (read_value(p, &v) < 0)
            return -1;
        nd = &p->f->nodes[n];
        switch (nkind) {
        case N_ADDR:
            r = addr_value(p, nd, &v);
            break;
        case N_CC:
            r = cc_value(p, nd, &v);
            break;
        case N_STR:
            r = str_value(p, nd, vop, &v);
            break;
        default:
            r = num_value(p, fd, nd, vop, &v);
        }
        if (r < 0)
            return -1;
        if (!in_list)
            break;
        if (p->tk == K_COMMA) {
            if (lex(p) < 0)
                return -1;
            continue;
        }
        if (p->tk == K_RP) {
            if (lex(p) < 0)
                return -1;
            break;
        }
        return fail(p, p->tpos, "expected , or ) in the list");
    }
    return op == OP_NE ? node2(p, N_NOT, n, -1) : n;
}

static int expr(struct parser *p, int depth);

static int factor(struct parser *p, int depth)
{
    int a;

    if (depth > 64)
        return fail(p, p->tpos, "too deeply nested");
    if (is_kw(p, "not")) {
        if (lex(p) < 0)
            return -1;
        a = factor(p, depth + 1);
        return a < 0 ? -1 : node2(p, N_NOT, a, -1);
    }
    if (p->tk == K_LP) {
        size_t lp = p->tpos;

        if (lex(p) < 0)
            return -1;
        a = expr(p, depth + 1);
        if (a < 0)
            return -1;
        if (p->tk != K_RP)
            return fail(p, p->tk == K_EOF ? lp : p->tpos,
                        p->tk == K_EOF ? "unclosed (" : "expected )");
        if (lex(p) < 0)
            return -1;
        return a;
    }
    return comparison(p);
}

static int term(struct parser *p, int depth)
{
    int a = factor(p, depth), b;

    while (a >= 0 && is_kw(p, "and")) {
        if (lex(p) < 0)
            return -1;
        b = factor(p, depth);
        if (b < 0)
            return -1;
        a = node2(p, N_AND, a, b);
    }
    return a;
}

static int expr(struct parser *p, int depth)
{
    int a = term(p, depth), b;

    while (a >= 0 && is_kw(p, "or")) {
        if (lex(p) < 0)
            return -1;
        b = term(p, depth);
        if (b < 0)
            return -1;
        a = node2(p, N_OR, a, b);
    }
    return a;
}

void ca_filter_free(struct ca_filter *f)
{
    if (f == NULL)
        return;
    for (int i = 0; i < f->nnodes; i++) {
        free(f->nodes[i].r);
        free(f->nodes[i].p);
        free(f->nodes[i].cc);
        free(f->nodes[i].bits);
    }
    free(f->nodes);
    free(f);
}

int ca_filter_compile(const char *text, const struct ca_filter_env *env, struct ca_filter **out,
                      char *err, size_t errlen, int *pos)
{
    struct parser p;
    struct ca_filter *f;

    *out = NULL;
    if (pos != NULL)
        *pos = 0;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
    f->root = -1;
    memset(&p, 0, sizeof(p));
    p.s = text != NULL ? text : "";
    p.len = strlen(p.s);
    p.f = f;
    p.env = env;
    p.err = err;
    p.errlen = errlen;
    if (p.len > 8192) {
        fail(&p, 8192, "filter longer than 8192 characters");
        goto bad;
    }
    if (lex(&p) < 0)
        goto bad;
    if (p.tk == K_EOF) {
        *out = f;
        return 0;
    }
    f->root = expr(&p, 0);
    if (f->root < 0)
        goto bad;
    if (p.tk != K_EOF) {
        if (p.tk == K_RP)
            fail(&p, p.tpos, "unmatched )");
        else
            fail(&p, p.tpos, "expected and/or here");
        goto bad;
    }
    *out = f;
    return 0;
bad:
    if (pos != NULL)
        *pos = p.errpos;
    ca_filter_free(f);
    return CA_EINVAL;
}

int ca_filter_is_all(const struct ca_filter *f)
{
    return f == NULL || f->root < 0;
}

int ca_filter_uses_cap_start(const struct ca_filter *f)
{
    return f != NULL && f->uses_cap_start;
}

/* ---- matching ------------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t get(int g, int side, const struct ca_filter_row *r)
{
    const struct ca_hot *h = r->h;

    switch (g) {
    case G_PORT:
        return side == 1 ? h->src_port : h->dst_port;
    case G_ASN:
        return side == 1 ? h->src_asn : h->dst_asn;
    case G_BYTES:
        return (int64_t)(h->sent_bytes + h->recv_bytes);
    case G_SENT:
        return (int64_t)h->sent_bytes;
    case G_RECV:
        return (int64_t)h->recv_bytes;
    case G_PACKETS:
        return (int64_t)h->sent_pkts + h->recv_pkts;
    case G_SPKTS:
        return h->sent_pkts;
    case G_RPKTS:
        return h->recv_pkts;
    case G_DURATION:
        return ca_hot_duration(h);
    case G_START:
        return h->first_ns;
    case G_END:
        return h->last_ns;
    case G_START_REL:
        return h->first_ns - r->cap_start;
    case G_END_REL:
        return h->last_ns - r->cap_start;
    case G_HOUR:
        return floor_div(h->first_ns, 3600000000000LL) % 24 + (h->first_ns < 0 ? 24 : 0);
    case G_DAY:
        return floor_div(h->first_ns, 86400000000000LL);
    case G_WEEKDAY: {
        int64_t d = floor_div(h->first_ns, 86400000000000LL);

        return ((d + 3) % 7 + 7) % 7 + 1;
    }
    case G_CAPTURE:
        return r->capture;
    case G_VLAN:
        return h->vlan;
    case G_L4:
        return h->l4;
    case G_TCPSTATE:
        return h->tcp_state;
    case G_NRISKS:
        return h->nrisks;
    case G_IPVER:
        return h->ip_version;
    }
    return 0;
}

static int pfx_match(const struct pfx *p, int ver, const uint8_t *a)
{
    int full = p->bits / 8, rest = p->bits % 8;

    if (p->ver != ver)
        return 0;
    if (memcmp(p->addr, a, (size_t)full) != 0)
        return 0;
    return rest == 0 || ((a[full] ^ p->addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

static int bit(const struct node *n, uint32_t id)
{
    return id != 0 && id < n->nbits && (n->bits[id / 8] >> (id % 8) & 1);
}

static int eval(const struct ca_filter *f, int i, const struct ca_filter_row *r)
{
    const struct node *n = &f->nodes[i];
    const struct ca_hot *h = r->h;

    switch (n->kind) {
    case N_TRUE:
        return 1;
    case N_AND:
        return eval(f, n->a, r) && eval(f, n->b, r);
    case N_OR:
        return eval(f, n->a, r) || eval(f, n->b, r);
    case N_NOT:
        return !eval(f, n->a, r);
    case N_NUM:
        for (int side = 1; side <= 2; side++) {
            int64_t v;

            if (!(n->sides & side))
                continue;
            v = get(n->getter, side, r);
            for (size_t k = 0; k < n->n; k++)
                if (v >= n->r[k].lo && v <= n->r[k].hi)
                    return 1;
        }
        return 0;
    case N_NUMF: {
        int64_t a = get(n->getter, 1, r), b = get(n->getter2, 1, r);

        switch (n->op) {
        case OP_EQ:
        case OP_NE:
            return a == b;
        case OP_LT:
            return a < b;
        case OP_LE:
            return a <= b;
        case OP_GT:
            return a > b;
        case OP_GE:
            return a >= b;
        }
        return 0;
    }
    case N_ADDR:
        for (size_t k = 0; k < n->n; k++) {
            if ((n->sides & 1) && pfx_match(&n->p[k], h->ip_version, h->src))
                return 1;
            if ((n->sides & 2) && pfx_match(&n->p[k], h->ip_version, h->dst))
                return 1;
        }
        return 0;
    case N_CC: {
        uint16_t s = (uint16_t)((unsigned char)h->src_cc[0] << 8 | (unsigned char)h->src_cc[1]);
        uint16_t d = (uint16_t)((unsigned char)h->dst_cc[0] << 8 | (unsigned char)h->dst_cc[1]);

        for (size_t k = 0; k < n->n; k++)
            if (((n->sides & 1) && n->cc[k] == s) || ((n->sides & 2) && n->cc[k] == d))
                return 1;
        return 0;
    }
    case N_STR:
        if (n->bits == NULL)
            return 0;
        if ((n->strsel & S_HOST) && bit(n, h->host_id))
            return 1;
        if ((n->strsel & S_DNS) && bit(n, h->dns_id))
            return 1;
        if ((n->strsel & S_PROTO) && bit(n, h->proto_id))
            return 1;
        if ((n->strsel & S_CAT) && bit(n, h->cat_id))
            return 1;
        return (n->strsel & S_RISKS) && bit(n, h->risks_id);
    }
    return 0;
}

/*
 * Batch evaluation: node i over the rows h[sel[0..n)], keeping in sel (in
 * order) those that match; returns how many.  And-chains and leaves run as
 * tight loops over the batch, with the selection compacted without
 * branches, instead of a recursive call and an unpredictable branch per
 * row and node; the rest (or, not, addresses, two-field comparisons) falls
 * back to eval() row by row.  The same rows as ca_filter_match, in the
 * same order.
 */
static size_t sel_rows(const struct ca_filter *f, int i, const struct ca_filter_row *ctx,
                       const struct ca_hot *h, uint32_t *sel, size_t n)
{
    struct ca_filter_row r = *ctx;
    size_t m = 0;

    for (size_t k = 0; k < n; k++) {
        r.h = &h[sel[k]];
        sel[m] = sel[k];
        m += (size_t)(eval(f, i, &r) != 0);
    }
    return m;
}

/* Whether node i reads only the first cache line of a hot record (cheap). */
static int first_line(const struct node *nd)
{
    if (nd->kind != N_NUM)
        return 0;
    switch (nd->getter) {
    case G_BYTES:
    case G_SENT:
    case G_RECV:
    case G_DURATION:
    case G_START:
    case G_END:
    case G_START_REL:
    case G_END_REL:
    case G_HOUR:
    case G_DAY:
    case G_WEEKDAY:
    case G_CAPTURE:
        return 1;
    }
    return 0;
}

/*
 * Asks for the memory a few records past p: scans cross a 4 KiB page every
 * 32 records, where the hardware prefetcher stops.  Integer arithmetic: the
 * address may be past the array, which a prefetch never faults on.
 */
#define PREFETCH_BYTES 2048 /* 16 records: best of 1, 2, 4 and 8 KiB on 1 M flows */
#define PREFETCH_ROWS(p) __builtin_prefetch((const void *)((uintptr_t)(p) + PREFETCH_BYTES))

static size_t sel_eval(const struct ca_filter *f, int i, const struct ca_filter_row *ctx,
                       const struct ca_hot *h, uint32_t *sel, size_t n)
{
    const struct node *nd = &f->nodes[i];
    size_t m = 0;

    if (n == 0)
        return 0;
    switch (nd->kind) {
    case N_TRUE:
        return n;
    case N_AND: {
        int a = nd->a, b = nd->b;

        /* The side that reads only the first cache line first: fewer rows
         * then need the second one. */
        if (first_line(&f->nodes[b]) && !first_line(&f->nodes[a])) {
            a = nd->b;
            b = nd->a;
        }
        n = sel_eval(f, a, ctx, h, sel, n);
        return sel_eval(f, b, ctx, h, sel, n);
    }
    case N_NUM:
        if (nd->n == 1 && nd->sides != 0 &&
            (nd->sides != 3 || (nd->getter != G_PORT && nd->getter != G_ASN))) {
            /* one range, one side (the getters of one-sided fields ignore it) */
            struct ca_filter_row r = *ctx;
            int64_t lo = nd->r[0].lo, hi = nd->r[0].hi;
            int side = nd->sides & 1 ? 1 : 2;

            for (size_t k = 0; k < n; k++) {
                int64_t v;

                r.h = &h[sel[k]];
                PREFETCH_ROWS(r.h);
                v = get(nd->getter, side, &r);
                sel[m] = sel[k];
                m += (size_t)((v >= lo) & (v <= hi));
            }
            return m;
        }
        if (nd->n == 1 && nd->sides == 3 && nd->getter == G_PORT) {
            int64_t lo = nd->r[0].lo, hi = nd->r[0].hi;

            for (size_t k = 0; k < n; k++) {
                const struct ca_hot *x = &h[sel[k]];
                int64_t s = x->src_port, d = x->dst_port;

                sel[m] = sel[k];
                m += (size_t)(((s >= lo) & (s <= hi)) | ((d >= lo) & (d <= hi)));
            }
            return m;
        }
        return sel_rows(f, i, ctx, h, sel, n);
    case N_STR:
        if (nd->bits == NULL)
            return 0;
        if (nd->strsel == S_PROTO || nd->strsel == S_CAT || nd->strsel == S_HOST) {
            size_t off = nd->strsel == S_PROTO ? offsetof(struct ca_hot, proto_id)
                         : nd->strsel == S_CAT ? offsetof(struct ca_hot, cat_id)
                                               : offsetof(struct ca_hot, host_id);

            for (size_t k = 0; k < n; k++) {
                uint32_t id;

                PREFETCH_ROWS(&h[sel[k]]);
                memcpy(&id, (const char *)&h[sel[k]] + off, sizeof(id));
                sel[m] = sel[k];
                m += (size_t)bit(nd, id);
            }
            return m;
        }
        return sel_rows(f, i, ctx, h, sel, n);
    case N_CC: {
        int s1 = nd->sides & 1, s2 = (nd->sides & 2) != 0;

        for (size_t k = 0; k < n; k++) {
            const struct ca_hot *x = &h[sel[k]];
            uint16_t s = (uint16_t)((unsigned char)x->src_cc[0] << 8 | (unsigned char)x->src_cc[1]);
            uint16_t d = (uint16_t)((unsigned char)x->dst_cc[0] << 8 | (unsigned char)x->dst_cc[1]);
            int ok = 0;

            for (size_t j = 0; j < nd->n; j++)
                ok |= (s1 & (nd->cc[j] == s)) | (s2 & (nd->cc[j] == d));
            sel[m] = sel[k];
            m += (size_t)ok;
        }
        return m;
    }
    default:
        return sel_rows(f, i, ctx, h, sel, n);
    }
}

size_t ca_filter_select(const struct ca_filter *f, const struct ca_hot *h, size_t n,
                        uint32_t capture, int64_t cap_start, uint32_t *sel)
{
    struct ca_filter_row ctx = {NULL, capture, cap_start};

    for (size_t k = 0; k < n; k++)
        sel[k] = (uint32_t)k;
    if (f == NULL || f->root < 0)
        return n;
    return sel_eval(f, f->root, &ctx, h, sel, n);
}

/* Exact-address tests (no prefix) in the and-chain below node i. */
static int req_addrs(const struct ca_filter *f, int i, uint8_t (*addr)[16], int *ver, int max)
{
    const struct node *n = &f->nodes[i];
    int k;

    if (n->kind == N_AND) {
        k = req_addrs(f, n->a, addr, ver, max);
        return k > 0 ? k : req_addrs(f, n->b, addr, ver, max);
    }
    if (n->kind != N_ADDR || n->n == 0 || n->n > (size_t)max)
        return 0;
    for (size_t j = 0; j < n->n; j++)
        if (n->p[j].bits != (n->p[j].ver == 4 ? 32 : 128))
            return 0;
    for (size_t j = 0; j < n->n; j++) {
        memcpy(addr[j], n->p[j].addr, 16);
        ver[j] = n->p[j].ver;
    }
    return (int)n->n;
}

int ca_filter_required_addrs(const struct ca_filter *f, uint8_t (*addr)[16], int *ver, int max)
{
    if (f == NULL || f->root < 0)
        return 0;
    return req_addrs(f, f->root, addr, ver, max);
}

int ca_filter_match(const struct ca_filter *f, const struct ca_filter_row *row)
{
    if (f == NULL || f->root < 0)
        return 1;
    return eval(f, f->root, row);
}
