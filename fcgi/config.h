/*
 * capatlasd settings: command-line flags with environment fallbacks, then
 * defaults.  Parsed once in the supervisor (or an admin command) before
 * any fork; workers read the struct they inherit.
 */
#ifndef CA_CONFIG_H
#define CA_CONFIG_H

#include <limits.h>
#include <stddef.h>

struct config {
    char data[PATH_MAX];   /* --data / CAPATLAS_DATA, default ./var */
    char socket[PATH_MAX]; /* --socket / CAPATLAS_SOCKET, default DATA/run/fcgi.sock */
    int api_workers;       /* --api-workers / CAPATLAS_API_WORKERS, default 2 */
    int import_workers;    /* --import-workers / CAPATLAS_IMPORT_WORKERS, default 1 */
    char geo_db[PATH_MAX]; /* --geo-db / CAPATLAS_GEO_DB, default "" (no geo) */
    char socket_group[64]; /* --socket-group / CAPATLAS_SOCKET_GROUP, default "" */
};

/*
 * Fills c from argv[0..argc) (flags only; argv[0] is not skipped), the
 * environment and defaults.  Returns 0, or -1 with a message naming the
 * bad setting in err.
 */
int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen);

#endif
