/*
 * Settings of capatlasd (see config.h): one table, one parser for the
 * file, the environment and the flags, one error convention.  Every value
 * is checked here, so workers never see a bad one, and `capatlasd check`
 * reports every problem at once, each naming the setting.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static int check_nonempty(const struct config *c, const struct config_setting *s, char *err,
                          size_t errlen);
static int check_readable(const struct config *c, const struct config_setting *s, char *err,
                          size_t errlen);
static int check_listen(const struct config *c, const struct config_setting *s, char *err,
                        size_t errlen);
static int check_rate(const struct config *c, const struct config_setting *s, char *err,
                      size_t errlen);
static int check_name(const struct config *c, const struct config_setting *s, char *err,
                      size_t errlen);

/* clang-format off */
static const struct config_setting settings[] = {
    {"data", CONFIG_PATH, FIELD(data), "./var", 0, 0, check_nonempty,
     "data folder: LMDB environments, capture files, certificate, logs"},
    {"socket", CONFIG_PATH, FIELD(socket), NULL, 0, 0, NULL,
     "FastCGI unix socket (default DATA/run/fcgi.sock)"},
    {"api_workers", CONFIG_INT, FIELD(api_workers), "2", 1, 64, NULL,
     "FastCGI workers answering the API"},
    {"import_workers", CONFIG_INT, FIELD(import_workers), "1", 0, 64, NULL,
     "workers importing captures"},
    {"table_part_flows", CONFIG_INT, FIELD(table_part_flows), "131072", 1000, 1 << 30, NULL,
     "flows per part of a capture's tables: bounds an import's memory (fewer = less memory, more parts to merge in queries)"},
    {"geo_db", CONFIG_PATH, FIELD(geo_db), NULL, 0, 0, check_readable,
     "country/ASN database (.mmdb); empty = no geo"},
    {"socket_group", CONFIG_STR, FIELD(socket_group), NULL, 0, 0, check_name,
     "group owning the socket (so a separate nginx can connect)"},
    {"port", CONFIG_INT, FIELD(port), "9877", 1, 65535, NULL,
     "HTTPS port nginx listens on"},
    {"listen", CONFIG_STR, FIELD(listen), "0.0.0.0", 0, 0, check_listen,
     "address nginx listens on (IPv4, [IPv6] or *)"},
    {"cert", CONFIG_PATH, FIELD(cert), NULL, 0, 0, NULL,
     "PEM certificate (chain); empty = self-signed, made once in DATA/tls"},
    {"key", CONFIG_PATH, FIELD(key), NULL, 0, 0, NULL,
     "PEM private key of cert"},
    {"max_upload", CONFIG_SIZE, FIELD(max_upload), "20g", 1, (long long)1 << 50, NULL,
     "largest capture upload (bytes, or with k/m/g/t)"},
    {"run_user", CONFIG_STR, FIELD(run_user), "capatlas", 0, 0, check_name,
     "unprivileged user for capatlasd and nginx workers when started as root"},
    {"admin_password_file", CONFIG_PATH, FIELD(admin_password_file), NULL, 0, 0, NULL,
     "file holding the first admin's password (e.g. a Docker secret)"},
    {"login_rate", CONFIG_STR, FIELD(login_rate), "30r/m", 0, 0, check_rate,
     "login attempts per client address nginx lets through (Nr/s or Nr/m)"},
    {"login_burst", CONFIG_INT, FIELD(login_burst), "10", 0, 100000, NULL,
     "login attempts over login_rate allowed in a burst"},
    {"session_idle", CONFIG_SECONDS, FIELD(session_idle), "12h", 1, 90 * 86400, NULL,
     "a session ends after this long without a request (e.g. 30m, 12h)"},
    {"session_max_age", CONFIG_SECONDS, FIELD(session_max_age), "7d", 1, 365 * 86400, NULL,
     "a session ends this long after login"},
    {"login_max_fails", CONFIG_INT, FIELD(login_max_fails), "5", 1, 1000, NULL,
     "failed logins of an account before it is locked for a while"},
    {"login_lock_seconds", CONFIG_SECONDS, FIELD(login_lock_seconds), "30s", 1, 86400, NULL,
     "first lock of an account after login_max_fails (doubles each time)"},
    {"housekeeping_seconds", CONFIG_SECONDS, FIELD(housekeeping_seconds), "60s", 1, 86400, NULL,
     "how often expired sessions and workspaces past their end of life are removed"},
    {"access_log", CONFIG_PATH, FIELD(access_log), NULL, 0, 0, NULL,
     "nginx access log (no query strings); /dev/stdout in a container; default DATA/log/access.log"},
    {"fetch_allow_hosts", CONFIG_LIST, FIELD(fetch_allow_hosts), NULL, 0, 0, NULL,
     "URL imports: hosts that may resolve to internal addresses (loopback, private...)"},
    {"fetch_deny_hosts", CONFIG_LIST, FIELD(fetch_deny_hosts), NULL, 0, 0, NULL,
     "URL imports: hosts (and their subdomains) never fetched"},
    {"fetch_allow_http", CONFIG_BOOL, FIELD(fetch_allow_http), "no", 0, 1, NULL,
     "URL imports: also allow plain http:// (default https only)"},
    {"fetch_connect_timeout", CONFIG_SECONDS, FIELD(fetch_connect_timeout), "15", 1, 600, NULL,
     "URL imports: connect timeout per connection"},
    {"fetch_timeout", CONFIG_SECONDS, FIELD(fetch_timeout), "6h", 0, 7 * 86400, NULL,
     "URL imports: longest whole download incl. retries (0 = none)"},
    {"fetch_max_size", CONFIG_SIZE, FIELD(fetch_max_size), "20g", 1, (long long)1 << 50, NULL,
     "URL imports and streams: largest capture (bytes, or with k/m/g/t)"},
    {"fetch_retries", CONFIG_INT, FIELD(fetch_retries), "5", 0, 20, NULL,
     "URL imports: retries after a cut, a timeout or a 5xx (exponential back-off)"},
    {"fetch_ca_file", CONFIG_PATH, FIELD(fetch_ca_file), NULL, 0, 0, check_readable,
     "URL imports: extra CA bundle (PEM); empty = the system's"},
    {"azure_list_max", CONFIG_INT, FIELD(azure_list_max), "5000", 1, 5000, NULL,
     "Azure container listing: blobs per List Blobs page"},
    {"inbox", CONFIG_LIST, FIELD(inbox), NULL, 0, 0, NULL,
     "watched folders, each WORKSPACE_ID:/path; files dropped there are imported once"},
    {"inbox_settle_ms", CONFIG_INT, FIELD(inbox_settle_ms), "1000", 0, 600000, NULL,
     "inbox: quiet time (ms) after a file's last write before it is taken"},
};
/* clang-format on */

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))
_Static_assert(NSETTINGS <= CONFIG_SETTINGS_MAX, "raise CONFIG_SETTINGS_MAX");

const struct config_setting *config_settings(size_t *n)
{
    *n = NSETTINGS;
    return settings;
}

const struct config_setting *config_find(const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

int config_env_known(const char *name)
{
    static const char *const extra[] = {
        "CAPATLAS_CONFIG",        "CAPATLAS_ADMIN_PASSWORD",
        "CAPATLAS_BIN",           "CAPATLAS_WEBROOT",
        "CAPATLAS_STORE_MAPSIZE", "CAPATLAS_PCAPS",
        "CAPATLAS_KEEP_OUTPUT",   NULL,
    };

    for (size_t i = 0; extra[i] != NULL; i++)
        if (strcmp(extra[i], name) == 0)
            return 1;
    if (strncmp(name, "CAPATLAS_", 9) != 0)
        return 0;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *k = settings[i].key, *e = name + 9;

        while (*k != '\0' && *e != '\0' && toupper((unsigned char)*k) == *e)
            k++, e++;
        if (*k == '\0' && *e == '\0')
            return 1;
    }
    return 0;
}

/* ---- errors ------------------------------------------------------------ */

struct errs {
    char *buf;
    size_t len, used;
    int n;
};

static void errs_add(struct errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void errs_add(struct errs *e, const char *fmt, ...)
{
    va_list ap;
    int w;

    e->n++;
    if (e->buf == NULL || e->len == 0 || e->used + 1 >= e->len)
        return;
    if (e->used > 0)
        e->buf[e->used++] = '\n';
    va_start(ap, fmt);
    w = vsnprintf(e->buf + e->used, e->len - e->used, fmt, ap);
    va_end(ap);
    if (w > 0)
        e->used += (size_t)w < e->len - e->used ? (size_t)w : e->len - e->used - 1;
}

/* "api_workers (CAPATLAS_API_WORKERS)" */
static void setting_names(const struct config_setting *s, char *buf, size_t len)
{
    char env[96];
    size_t i;

    for (i = 0; s->key[i] != '\0' && i + 10 < sizeof(env); i++)
        env[i] = (char)toupper((unsigned char)s->key[i]);
    env[i] = '\0';
    snprintf(buf, len, "%s (CAPATLAS_%s)", s->key, env);
}

/* ---- values ------------------------------------------------------------ */

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int parse_number(const char *val, long long *out, const char *units, const long long *mult)
{
    char *end;
    long long v;

    if (!isdigit((unsigned char)*val))
        return -1;
    errno = 0;
    v = strtoll(val, &end, 10);
    if (errno != 0)
        return -1;
    if (*end != '\0') {
        const char *u = strchr(units, tolower((unsigned char)*end));

        if (u == NULL || end[1] != '\0')
            return -1;
        if (v > LLONG_MAX / mult[u - units])
            return -1;
        v *= mult[u - units];
    }
    *out = v;
    return 0;
}

/* Sets s's field from text; 0, or -1 with a message (without the name) in msg. */
static int set_value(struct config *c, const struct config_setting *s, const char *val, char *msg,
                     size_t msglen)
{
    char *field = (char *)c + s->offset;
    long long v;

    switch (s->type) {
    case CONFIG_STR:
    case CONFIG_PATH:
        if (strlen(val) >= s->size) {
            snprintf(msg, msglen, "value too long (at most %zu bytes)", s->size - 1);
            return -1;
        }
        memcpy(field, val, strlen(val) + 1);
        return 0;
    case CONFIG_INT:
        if (parse_number(val, &v, "", NULL) < 0 || v < s->min || v > s->max) {
            snprintf(msg, msglen, "expected a whole number from %lld to %lld, got \"%.60s\"",
                     s->min, s->max, val);
            return -1;
        }
        *(int *)(void *)field = (int)v;
        return 0;
    case CONFIG_BOOL: {
        static const char *const yes[] = {"1", "true", "yes", "on"};
        static const char *const no[] = {"0", "false", "no", "off"};

        for (size_t i = 0; i < 4; i++) {
            if (strcasecmp(val, yes[i]) == 0 || strcasecmp(val, no[i]) == 0) {
                *(int *)(void *)field = strcasecmp(val, yes[i]) == 0;
                return 0;
            }
        }
        snprintf(msg, msglen, "expected true or false, got \"%.60s\"", val);
        return -1;
    }
    case CONFIG_SIZE: {
        static const long long mult[] = {1LL << 10, 1LL << 20, 1LL << 30, 1LL << 40};

        if (parse_number(val, &v, "kmgt", mult) < 0 || v < s->min || v > s->max) {
            snprintf(msg, msglen,
                     "expected a size in bytes, optionally with k, m, g or t (e.g. 20g), "
                     "from %lld to %lld bytes, got \"%.60s\"",
                     s->min, s->max, val);
            return -1;
        }
        *(uint64_t *)(void *)field = (uint64_t)v;
        return 0;
    }
    case CONFIG_SECONDS: {
        static const long long mult[] = {1, 60, 3600, 86400};

        if (parse_number(val, &v, "smhd", mult) < 0 || v < s->min || v > s->max) {
            snprintf(msg, msglen,
                     "expected a duration in seconds, optionally with s, m, h or d (e.g. 90s, "
                     "5m), from %lld to %lld seconds, got \"%.60s\"",
                     s->min, s->max, val);
            return -1;
        }
        *(int *)(void *)field = (int)v;
        return 0;
    }
    case CONFIG_LIST: {
        struct config_list *l = (struct config_list *)(void *)field;
        const char *p = val;

        memset(l, 0, sizeof(*l));
        while (*p != '\0') {
            const char *comma = strchr(p, ',');
            size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
            char item[CONFIG_ITEM_MAX + 1], *t;

            if (n > CONFIG_ITEM_MAX) {
                snprintf(msg, msglen, "an entry is longer than %d bytes", CONFIG_ITEM_MAX - 1);
                return -1;
            }
            memcpy(item, p, n);
            item[n] = '\0';
            t = trim(item);
            if (*t != '\0') {
                if (l->n == CONFIG_LIST_MAX) {
                    snprintf(msg, msglen, "more than %d entries", CONFIG_LIST_MAX);
                    return -1;
                }
                if (strlen(t) >= CONFIG_ITEM_MAX) {
                    snprintf(msg, msglen, "an entry is longer than %d bytes", CONFIG_ITEM_MAX - 1);
                    return -1;
                }
                memcpy(l->item[l->n++], t, strlen(t) + 1);
            }
            p += n;
            if (*p == ',')
                p++;
        }
        return 0;
    }
    }
    return -1;
}

void config_format(const struct config *c, const struct config_setting *s, char *buf, size_t len)
{
    const char *field = (const char *)c + s->offset;

    switch (s->type) {
    case CONFIG_STR:
    case CONFIG_PATH:
        snprintf(buf, len, "%s", field);
        break;
    case CONFIG_INT:
    case CONFIG_SECONDS:
        snprintf(buf, len, "%d", *(const int *)(const void *)field);
        break;
    case CONFIG_BOOL:
        snprintf(buf, len, "%s", *(const int *)(const void *)field ? "true" : "false");
        break;
    case CONFIG_SIZE:
        snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)(const void *)field);
        break;
    case CONFIG_LIST: {
        const struct config_list *l = (const struct config_list *)(const void *)field;
        size_t used = 0;

        if (len > 0)
            buf[0] = '\0';
        for (size_t i = 0; i < l->n && used + 1 < len; i++) {
            int w = snprintf(buf + used, len - used, "%s%s", i > 0 ? "," : "", l->item[i]);

            if (w < 0)
                break;
            used += (size_t)w;
        }
        break;
    }
    }
}

/* ---- checks ------------------------------------------------------------ */

static const char *field_str(const struct config *c, const struct config_setting *s)
{
    return (const char *)c + s->offset;
}

static int check_nonempty(const struct config *c, const struct config_setting *s, char *err,
                          size_t errlen)
{
    if (*field_str(c, s) == '\0') {
        snprintf(err, errlen, "must not be empty");
        return -1;
    }
    return 0;
}

static int check_readable(const struct config *c, const struct config_setting *s, char *err,
                          size_t errlen)
{
    const char *path = field_str(c, s);

    if (*path != '\0' && access(path, R_OK) != 0) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int check_listen(const struct config *c, const struct config_setting *s, char *err,
                        size_t errlen)
{
    const char *v = field_str(c, s);
    unsigned char buf[16];
    char six[64];
    size_t n = strlen(v);

    if (strcmp(v, "*") == 0 || inet_pton(AF_INET, v, buf) == 1)
        return 0;
    if (n > 2 && v[0] == '[' && v[n - 1] == ']' && n - 2 < sizeof(six)) {
        memcpy(six, v + 1, n - 2);
        six[n - 2] = '\0';
        if (inet_pton(AF_INET6, six, buf) == 1)
            return 0;
    }
    snprintf(err, errlen,
             "expected an IPv4 address, an IPv6 address in brackets or *, got \"%.60s\"", v);
    return -1;
}

static int check_name(const struct config *c, const struct config_setting *s, char *err,
                      size_t errlen)
{
    for (const char *p = field_str(c, s); *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') {
            snprintf(err, errlen, "\"%.60s\" is not a user or group name", field_str(c, s));
            return -1;
        }
    }
    return 0;
}

static int check_rate(const struct config *c, const struct config_setting *s, char *err,
                      size_t errlen)
{
    const char *v = field_str(c, s);
    char *end;
    long n = strtol(v, &end, 10);

    if (!isdigit((unsigned char)*v) || n <= 0 ||
        (strcmp(end, "r/s") != 0 && strcmp(end, "r/m") != 0)) {
        snprintf(err, errlen, "expected a rate such as 30r/m or 5r/s, got \"%.60s\"", v);
        return -1;
    }
    return 0;
}

/* Checks that need several settings. */
static void check_together(struct config *c, struct errs *e)
{
    struct sockaddr_un sun;

    if (c->socket[0] == '\0' && snprintf(c->socket, sizeof(c->socket), "%s/run/fcgi.sock",
                                         c->data) >= (int)sizeof(c->socket))
        errs_add(e, "socket (CAPATLAS_SOCKET): path too long");
    if (strlen(c->socket) >= sizeof(sun.sun_path))
        errs_add(e,
                 "socket (CAPATLAS_SOCKET): \"%s\" is longer than a unix socket path may be "
                 "(%zu); choose a shorter socket or data path",
                 c->socket, sizeof(sun.sun_path) - 1);
    /* libfcgi reads "host:port" when the path has a colon. */
    if (strchr(c->socket, ':') != NULL)
        errs_add(e, "socket (CAPATLAS_SOCKET): path must not contain ':'");
    if ((c->cert[0] == '\0') != (c->key[0] == '\0'))
        errs_add(e,
                 "%s: cert (CAPATLAS_CERT) and key (CAPATLAS_KEY) go together; set both or "
                 "neither",
                 c->cert[0] == '\0' ? "cert (CAPATLAS_CERT)" : "key (CAPATLAS_KEY)");
    /* nginx's templates are filled in with sed; keep paths plain. */
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct config_setting *s = &settings[i];
        char names[128];

        if (s->type != CONFIG_PATH)
            continue;
        if (strpbrk(field_str(c, s), "|;'\"\n\\{}") != NULL) {
            setting_names(s, names, sizeof(names));
            errs_add(e, "%s: path must not contain | ; ' \" \\ { } or a newline", names);
        }
    }
}

/* ---- sources ----------------------------------------------------------- */

struct pending {
    const char *val; /* NULL: not given by this source */
    char where[PATH_MAX + 32];
};

static int read_file(const char *path, struct pending *pend, struct errs *e)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int lineno = 0;

    if (f == NULL) {
        errs_add(e, "config (CAPATLAS_CONFIG): cannot read \"%s\": %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *l, *eq, *k, *v;
        const struct config_setting *s;
        size_t vl;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            errs_add(e, "%s:%d: line too long", path, lineno);
            break;
        }
        l = trim(line);
        if (*l == '\0' || *l == '#' || *l == ';')
            continue;
        eq = strchr(l, '=');
        if (eq == NULL) {
            errs_add(e, "%s:%d: expected \"setting = value\", got \"%.60s\"", path, lineno, l);
            continue;
        }
        *eq = '\0';
        k = trim(l);
        v = trim(eq + 1);
        vl = strlen(v);
        if (vl >= 2 && ((v[0] == '"' && v[vl - 1] == '"') || (v[0] == '\'' && v[vl - 1] == '\''))) {
            v[vl - 1] = '\0';
            v++;
        }
        s = config_find(k);
        if (s == NULL) {
            errs_add(e, "%s:%d: unknown setting \"%.60s\"", path, lineno, k);
            continue;
        }
        if (pend[s - settings].val != NULL) {
            errs_add(e, "%s:%d: %s is set twice (also %s)", path, lineno, k,
                     pend[s - settings].where);
            continue;
        }
        pend[s - settings].val = strdup(v);
        if (pend[s - settings].val == NULL) {
            errs_add(e, "out of memory");
            break;
        }
        snprintf(pend[s - settings].where, sizeof(pend[0].where), "%s:%d", path, lineno);
    }
    fclose(f);
    return 0;
}

int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
    struct pending *file = NULL, *env = NULL, *flag = NULL;
    struct errs e = {.buf = err, .len = errlen};
    const char *config_path = NULL;

    if (errlen > 0)
        err[0] = '\0';
    memset(c, 0, sizeof(*c));
    file = calloc(NSETTINGS, sizeof(*file));
    env = calloc(NSETTINGS, sizeof(*env));
    flag = calloc(NSETTINGS, sizeof(*flag));
    if (file == NULL || env == NULL || flag == NULL) {
        errs_add(&e, "out of memory");
        goto out;
    }

    /* Flags. */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '='), *val;
        size_t alen = eq != NULL ? (size_t)(eq - a) : strlen(a);
        char key[64];
        const struct config_setting *s = NULL;

        if (alen > 2 && alen - 2 < sizeof(key) && strncmp(a, "--", 2) == 0) {
            for (size_t j = 0; j < alen - 2; j++)
                key[j] = a[2 + j] == '-' ? '_' : a[2 + j];
            key[alen - 2] = '\0';
            s = config_find(key);
            if (s == NULL && strcmp(key, "config") != 0) {
                errs_add(&e, "unknown option \"%.60s\"", a);
                continue;
            }
        } else {
            errs_add(&e, "unknown option \"%.60s\"", a);
            continue;
        }
        if (eq != NULL) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            errs_add(&e, "%.*s: missing value", (int)alen, a);
            continue;
        }
        if (s == NULL) {
            config_path = val;
        } else {
            flag[s - settings].val = val;
            snprintf(flag[s - settings].where, sizeof(flag[0].where), "--%s", s->key);
        }
    }

    /* Environment. */
    for (size_t i = 0; i < NSETTINGS; i++) {
        char name[96], *v;
        size_t j;

        memcpy(name, "CAPATLAS_", 9);
        for (j = 0; settings[i].key[j] != '\0' && j + 10 < sizeof(name); j++)
            name[9 + j] = (char)toupper((unsigned char)settings[i].key[j]);
        name[9 + j] = '\0';
        v = getenv(name);
        if (v != NULL && *v != '\0') {
            env[i].val = v;
            snprintf(env[i].where, sizeof(env[0].where), "environment %s", name);
        }
    }

    /* The file. */
    if (config_path == NULL) {
        const char *v = getenv("CAPATLAS_CONFIG");

        if (v != NULL && *v != '\0')
            config_path = v;
    }
    if (config_path != NULL) {
        if (strlen(config_path) >= sizeof(c->config_file))
            errs_add(&e, "config (CAPATLAS_CONFIG): path too long");
        else
            snprintf(c->config_file, sizeof(c->config_file), "%s", config_path);
        read_file(config_path, file, &e);
    }

    /* Resolve each setting: flag, environment, file, default. */
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct config_setting *s = &settings[i];
        const struct pending *p = flag[i].val != NULL   ? &flag[i]
                                  : env[i].val != NULL  ? &env[i]
                                  : file[i].val != NULL ? &file[i]
                                                        : NULL;
        char msg[512], names[128];

        c->origin[i] = p == &flag[i]   ? CONFIG_FLAG
                       : p == &env[i]  ? CONFIG_ENV
                       : p == &file[i] ? CONFIG_FILE
                                       : CONFIG_DEFAULT;
        setting_names(s, names, sizeof(names));
        if (set_value(c, s,
                      p != NULL        ? p->val
                      : s->def != NULL ? s->def
                                       : "",
                      msg, sizeof(msg)) < 0) {
            errs_add(&e, "%s: %s (from %s)", names, msg, p != NULL ? p->where : "the default");
            continue;
        }
        if (s->check != NULL && s->check(c, s, msg, sizeof(msg)) < 0)
            errs_add(&e, "%s: %s (from %s)", names, msg, p != NULL ? p->where : "the default");
    }
    if (e.n == 0)
        check_together(c, &e);
out:
    if (file != NULL)
        for (size_t i = 0; i < NSETTINGS; i++)
            free((char *)file[i].val);
    free(file);
    free(env);
    free(flag);
    return e.n == 0 ? 0 : -1;
}

/* ---- file system checks (capatlasd check) --------------------------------- */

static void check_pem(struct errs *e, const char *names, const char *path, const char *marker)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int found = 0;

    if (f == NULL) {
        errs_add(e, "%s: cannot read \"%s\": %s", names, path, strerror(errno));
        return;
    }
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strncmp(line, "-----BEGIN ", 11) == 0 && strstr(line, marker) != NULL;
    fclose(f);
    if (!found)
        errs_add(e, "%s: \"%s\" holds no PEM %s", names, path, marker);
}

int config_check_files(const struct config *c, char *err, size_t errlen)
{
    struct errs e = {.buf = err, .len = errlen};
    struct stat st;

    if (errlen > 0)
        err[0] = '\0';
    if (c->cert[0] != '\0')
        check_pem(&e, "cert (CAPATLAS_CERT)", c->cert, "CERTIFICATE");
    if (c->key[0] != '\0')
        check_pem(&e, "key (CAPATLAS_KEY)", c->key, "PRIVATE KEY");
    if (c->admin_password_file[0] != '\0') {
        FILE *f = fopen(c->admin_password_file, "r");
        int ch = f != NULL ? fgetc(f) : EOF;

        if (f == NULL)
            errs_add(&e,
                     "admin_password_file (CAPATLAS_ADMIN_PASSWORD_FILE): cannot read "
                     "\"%s\": %s",
                     c->admin_password_file, strerror(errno));
        else if (ch == EOF || ch == '\n')
            errs_add(&e, "admin_password_file (CAPATLAS_ADMIN_PASSWORD_FILE): \"%s\" is empty",
                     c->admin_password_file);
        if (f != NULL)
            fclose(f);
    }
    if (stat(c->data, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            errs_add(&e, "data (CAPATLAS_DATA): \"%s\" is not a folder", c->data);
        else if (access(c->data, W_OK | X_OK) != 0)
            errs_add(&e, "data (CAPATLAS_DATA): cannot write in \"%s\": %s", c->data,
                     strerror(errno));
    } else if (errno != ENOENT) {
        errs_add(&e, "data (CAPATLAS_DATA): \"%s\": %s", c->data, strerror(errno));
    }
    return e.n == 0 ? 0 : -1;
}
