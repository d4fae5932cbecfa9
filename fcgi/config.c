/*
 * Settings of capatlasd serve (see config.h).  A flag wins over its
 * environment variable, which wins over the default.  Every value is
 * checked here, so workers never see a bad one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"

static int set_str(char *dst, size_t len, const char *val, const char *name, char *err,
                   size_t errlen)
{
    if (strlen(val) >= len) {
        snprintf(err, errlen, "%s: value too long", name);
        return -1;
    }
    memcpy(dst, val, strlen(val) + 1);
    return 0;
}

static int set_int(int *dst, const char *val, int min, int max, const char *name, char *err,
                   size_t errlen)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(val, &end, 10);
    if (*val == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
        snprintf(err, errlen, "%s: expected a whole number from %d to %d, got \"%.40s\"", name, min,
                 max, val);
        return -1;
    }
    *dst = (int)v;
    return 0;
}

struct opt {
    const char *flag;
    const char *env;
    const char *val;
};

int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
    struct opt o[] = {
        {"--data", "CAPATLAS_DATA", NULL},
        {"--socket", "CAPATLAS_SOCKET", NULL},
        {"--api-workers", "CAPATLAS_API_WORKERS", NULL},
        {"--import-workers", "CAPATLAS_IMPORT_WORKERS", NULL},
        {"--geo-db", "CAPATLAS_GEO_DB", NULL},
        {"--socket-group", "CAPATLAS_SOCKET_GROUP", NULL},
    };
    const size_t n = sizeof(o) / sizeof(o[0]);

    memset(c, 0, sizeof(*c));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        size_t alen = eq != NULL ? (size_t)(eq - a) : strlen(a);
        size_t k;

        for (k = 0; k < n; k++)
            if (strlen(o[k].flag) == alen && strncmp(a, o[k].flag, alen) == 0)
                break;
        if (k == n) {
            snprintf(err, errlen, "unknown option \"%.60s\"", a);
            return -1;
        }
        if (eq != NULL) {
            o[k].val = eq + 1;
        } else if (i + 1 < argc) {
            o[k].val = argv[++i];
        } else {
            snprintf(err, errlen, "%s: missing value", o[k].flag);
            return -1;
        }
    }
    for (size_t k = 0; k < n; k++)
        if (o[k].val == NULL)
            o[k].val = getenv(o[k].env);

    /* --data */
    if (o[0].val != NULL && *o[0].val == '\0') {
        snprintf(err, errlen, "--data (CAPATLAS_DATA): empty path");
        return -1;
    }
    if (set_str(c->data, sizeof(c->data), o[0].val != NULL ? o[0].val : "./var",
                "--data (CAPATLAS_DATA)", err, errlen) < 0)
        return -1;
    /* --socket */
    if (o[1].val != NULL && *o[1].val != '\0') {
        if (set_str(c->socket, sizeof(c->socket), o[1].val, "--socket (CAPATLAS_SOCKET)", err,
                    errlen) < 0)
            return -1;
    } else if (snprintf(c->socket, sizeof(c->socket), "%s/run/fcgi.sock", c->data) >=
               (int)sizeof(c->socket)) {
        snprintf(err, errlen, "--socket (CAPATLAS_SOCKET): path too long");
        return -1;
    }
    {
        struct sockaddr_un sun;

        if (strlen(c->socket) >= sizeof(sun.sun_path)) {
            snprintf(err, errlen,
                     "--socket (CAPATLAS_SOCKET): \"%s\" is longer than a unix socket path "
                     "may be (%zu)",
                     c->socket, sizeof(sun.sun_path) - 1);
            return -1;
        }
        /* libfcgi reads "host:port" when the path has a colon. */
        if (strchr(c->socket, ':') != NULL) {
            snprintf(err, errlen, "--socket (CAPATLAS_SOCKET): path must not contain ':'");
            return -1;
        }
    }
    /* worker counts */
    c->api_workers = 2;
    c->import_workers = 1;
    if (o[2].val != NULL && set_int(&c->api_workers, o[2].val, 1, 64,
                                    "--api-workers (CAPATLAS_API_WORKERS)", err, errlen) < 0)
        return -1;
    if (o[3].val != NULL && set_int(&c->import_workers, o[3].val, 0, 64,
                                    "--import-workers (CAPATLAS_IMPORT_WORKERS)", err, errlen) < 0)
        return -1;
    /* --geo-db */
    if (o[4].val != NULL && *o[4].val != '\0') {
        if (set_str(c->geo_db, sizeof(c->geo_db), o[4].val, "--geo-db (CAPATLAS_GEO_DB)", err,
                    errlen) < 0)
            return -1;
        if (access(c->geo_db, R_OK) != 0) {
            snprintf(err, errlen, "--geo-db (CAPATLAS_GEO_DB): cannot read \"%s\": %s", c->geo_db,
                     strerror(errno));
            return -1;
        }
    }
    /* --socket-group */
    if (o[5].val != NULL && set_str(c->socket_group, sizeof(c->socket_group), o[5].val,
                                    "--socket-group (CAPATLAS_SOCKET_GROUP)", err, errlen) < 0)
        return -1;
    return 0;
}
