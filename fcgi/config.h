/*
 * capatlasd settings.  Every setting is one entry of the table in
 * config.c, with one name used three ways:
 *
 *   file key     api_workers = 4          (the file named by --config or CAPATLAS_CONFIG)
 *   environment  CAPATLAS_API_WORKERS=4   ("CAPATLAS_" + the key in capitals)
 *   flag         --api-workers 4          ("--" + the key with '-' for '_')
 *
 * A flag wins over the environment, which wins over the file, which wins
 * over the default.  An empty environment variable counts as unset.
 * Parsed once in the supervisor (or an admin command) before any fork;
 * workers read the struct they inherit.
 *
 * Adding a setting: a field here and one line in the table in config.c
 * (type, default, bounds, help, optional check function).
 */
#ifndef CA_CONFIG_H
#define CA_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_LIST_MAX 32  /* entries of a list setting */
#define CONFIG_ITEM_MAX 512 /* bytes of one list entry */
#define CONFIG_SETTINGS_MAX 64

/* A comma-separated list setting, e.g. "a, b,c" -> {"a","b","c"}. */
struct config_list {
    size_t n;
    char item[CONFIG_LIST_MAX][CONFIG_ITEM_MAX];
};

enum config_origin { CONFIG_DEFAULT, CONFIG_FILE, CONFIG_ENV, CONFIG_FLAG };

struct config {
    /* capatlasd */
    char data[PATH_MAX];   /* data folder, default ./var */
    char socket[PATH_MAX]; /* FastCGI socket, default DATA/run/fcgi.sock */
    int api_workers;       /* 1..64, default 2 */
    int import_workers;    /* 0..64, default 1 */
    int table_part_flows;  /* ca_ws_set_part_flows, default CA_WS_PART_FLOWS */
    char geo_db[PATH_MAX]; /* .mmdb, default "" (no geo) */
    char socket_group[64]; /* group of the socket, default "" */
    /* docker/start.sh and nginx (validated here so `check` covers them) */
    int port;                           /* HTTPS port, default 9877 */
    char listen[64];                    /* listen address, default 0.0.0.0 */
    char cert[PATH_MAX];                /* PEM certificate, default generated */
    char key[PATH_MAX];                 /* PEM private key, default generated */
    uint64_t max_upload;                /* bytes, default 20g */
    char run_user[64];                  /* unprivileged user when started as root */
    char admin_password_file[PATH_MAX]; /* first admin's password */
    char login_rate[32];                /* nginx login limit per address, default 30r/m */
    int login_burst;                    /* logins over the rate let through, default 10 */
    /* read with getenv by the store and authz; here so file and check cover them */
    int session_idle;          /* seconds, default 12h */
    int session_max_age;       /* seconds, default 7d */
    int login_max_fails;       /* failed logins before a lock, default 5 */
    int login_lock_seconds;    /* first lock, doubling, default 30 */
    int housekeeping_seconds;  /* EOL purge and the like, default 60 */
    char access_log[PATH_MAX]; /* nginx access log, default DATA/log/access.log */
    /* URL imports (core/fetch.c) and the inbox watcher (issue 6) */
    struct config_list fetch_allow_hosts; /* hosts exempt from the internal-address check */
    struct config_list fetch_deny_hosts;  /* hosts (and subdomains) never fetched */
    int fetch_allow_http;                 /* also http:// URLs, default no */
    int fetch_connect_timeout;            /* seconds, default 15 */
    int fetch_timeout;                    /* seconds for a whole download, default 6h */
    uint64_t fetch_max_size;              /* bytes, default 20g */
    int fetch_retries;                    /* retries after the first attempt, default 5 */
    char fetch_ca_file[PATH_MAX];         /* extra CA bundle for downloads */
    int azure_list_max;                   /* List Blobs page size, default 5000 */
    struct config_list inbox;             /* "WORKSPACE_ID:/folder" watched folders */
    int inbox_settle_ms;                  /* quiet time before a dropped file is taken */

    /* Where each setting came from (index = table position), and the file. */
    enum config_origin origin[CONFIG_SETTINGS_MAX];
    char config_file[PATH_MAX];
};

enum config_type {
    CONFIG_STR,     /* text */
    CONFIG_PATH,    /* file system path (text) */
    CONFIG_INT,     /* int within [min, max] */
    CONFIG_BOOL,    /* int 0/1 from true/false, yes/no, on/off, 1/0 */
    CONFIG_SIZE,    /* uint64_t bytes from N, Nk, Nm, Ng, Nt (1024-based) */
    CONFIG_SECONDS, /* int seconds from N, Ns, Nm, Nh, Nd */
    CONFIG_LIST,    /* struct config_list from "a, b, c" */
};

struct config_setting {
    const char *key;
    enum config_type type;
    size_t offset;   /* of the field in struct config */
    size_t size;     /* of the field */
    const char *def; /* default, as text; NULL = empty */
    long long min, max;
    /* Extra validation of the parsed value (may be NULL): 0, or -1 with a
     * message (without the setting's name) in err. */
    int (*check)(const struct config *c, const struct config_setting *s, char *err, size_t errlen);
    const char *help;
};

/* The table, in the order of struct config's origin[]. */
const struct config_setting *config_settings(size_t *n);
/* The table entry of key, or NULL. */
const struct config_setting *config_find(const char *key);

/*
 * Fills c from argv[0..argc) (flags only, plus --config FILE; argv[0] is
 * not skipped), the environment, the configuration file and defaults.
 * Returns 0, or -1 with every problem found in err, one per line, each
 * naming the setting (file key and environment variable) and where the
 * bad value came from.
 */
int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen);

/*
 * The checks that look at the file system beyond what serve needs: the
 * certificate and key are readable PEM, the admin password file is
 * readable and not empty, the data folder is (or can be) a writable
 * folder.  Run by `capatlasd check`, not by serve (which runs as an
 * unprivileged user that may not read the key).  Same error convention.
 */
int config_check_files(const struct config *c, char *err, size_t errlen);

/* The value of setting s as text (lists joined with ","), into buf. */
void config_format(const struct config *c, const struct config_setting *s, char *buf, size_t len);

/* CAPATLAS_* names that are not settings but are known (scripts, tests). */
int config_env_known(const char *name);

#endif
