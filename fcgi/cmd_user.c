/*
 * capatlasd user: account administration from the command line.
 *   init-admin  creates the first admin when the portal has no user
 *               (password from CAPATLAS_ADMIN_PASSWORD, the file named by
 *               CAPATLAS_ADMIN_PASSWORD_FILE, or generated and printed once)
 *   add NAME    creates a user, password read from stdin (one line)
 *   passwd NAME sets a user's password, read from stdin (a reset: sessions revoked)
 *   list        one line per user: id, name, role, usage and quota
 *   disable NAME, enable NAME, delete NAME (delete also removes their workspaces)
 * --data DIR (or CAPATLAS_DATA, default ./var) selects the portal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ca_error.h"
#include "commands.h"
#include "cred.h"
#include "store.h"

#define PW_MAX 1024

static void strip_eol(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* One line from f into buf; 0, or -1 when empty/unreadable/too long. */
static int read_line(FILE *f, char *buf, size_t len)
{
    if (fgets(buf, (int)len, f) == NULL)
        return -1;
    if (strchr(buf, '\n') == NULL && !feof(f))
        return -1; /* longer than the buffer */
    strip_eol(buf);
    return buf[0] != '\0' ? 0 : -1;
}

static int open_portal(const char *data, struct ca_portal **p)
{
    char err[256] = "";
    int rc;

    if (mkdir(data, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "capatlasd user: cannot create %s: %s\n", data, strerror(errno));
        return -1;
    }
    rc = ca_portal_open(data, p, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "capatlasd user: cannot open the portal in %s: %s\n", data,
                err[0] ? err : ca_strerror(rc));
        return -1;
    }
    return 0;
}

static int find_user(struct ca_portal *p, const char *name, uint64_t *id)
{
    return ca_user_find(p, name, id) == 0 ? 0 : -1;
}

/* list: one line per user; disable/enable/delete NAME. */
static int admin_cmd(struct ca_portal *p, const char *cmd, const char *name)
{
    json_t *list = NULL, *u, *f;
    uint64_t id;
    size_t i;
    int rc;

    if (strcmp(cmd, "list") == 0) {
        rc = ca_user_list(p, &list);
        if (rc < 0) {
            fprintf(stderr, "capatlasd user list: %s\n", ca_strerror(rc));
            return 1;
        }
        json_array_foreach(list, i, u)
        {
            json_t *q = json_object_get(u, "quota");

            printf("%lld\t%s\t%s%s\tused=%lld\tquota=%s%lld\n",
                   (long long)json_integer_value(json_object_get(u, "id")),
                   json_string_value(json_object_get(u, "name")),
                   json_is_true(json_object_get(u, "admin")) ? "admin" : "user",
                   json_is_true(json_object_get(u, "disabled")) ? ",disabled" : "",
                   (long long)json_integer_value(json_object_get(u, "used")),
                   json_is_integer(q) ? "" : "none",
                   json_is_integer(q) ? (long long)json_integer_value(q) : 0LL);
        }
        json_decref(list);
        return 0;
    }
    if (find_user(p, name, &id) < 0) {
        fprintf(stderr, "capatlasd user %s: no user named \"%s\"\n", cmd, name);
        return 1;
    }
    if (strcmp(cmd, "delete") == 0) {
        rc = ca_user_delete(p, id);
    } else {
        f = json_pack("{s:b}", "disabled", strcmp(cmd, "disable") == 0);
        rc = ca_user_update(p, id, f, NULL, 0);
        json_decref(f);
    }
    if (rc < 0) {
        fprintf(stderr, "capatlasd user %s: %s\n", cmd, ca_strerror(rc));
        return 1;
    }
    (void)ca_audit_add(p, 0, NULL, "cli",
                       strcmp(cmd, "delete") == 0 ? "user_delete" : "user_update", name, NULL);
    printf("capatlas: user %s: %s done\n", name, cmd);
    return 0;
}

static int init_admin(struct ca_portal *p, const char *name)
{
    char pw[PW_MAX + 2], err[256] = "";
    const char *env = getenv("CAPATLAS_ADMIN_PASSWORD");
    const char *file = getenv("CAPATLAS_ADMIN_PASSWORD_FILE");
    const char *from = NULL;
    uint64_t count = 0, id;
    int rc;

    rc = ca_user_count(p, &count);
    if (rc < 0) {
        fprintf(stderr, "capatlasd user init-admin: cannot count users: %s\n", ca_strerror(rc));
        return 1;
    }
    if (count > 0)
        return 0;
    if (env != NULL && *env != '\0') {
        if (strlen(env) > PW_MAX) {
            fprintf(stderr, "capatlasd user init-admin: CAPATLAS_ADMIN_PASSWORD is too long\n");
            return 1;
        }
        snprintf(pw, sizeof(pw), "%s", env);
        from = "CAPATLAS_ADMIN_PASSWORD";
    } else if (file != NULL && *file != '\0') {
        FILE *f = fopen(file, "r");
        int ok = f != NULL && read_line(f, pw, sizeof(pw)) == 0;

        if (f != NULL)
            fclose(f);
        if (!ok) {
            fprintf(stderr,
                    "capatlasd user init-admin: CAPATLAS_ADMIN_PASSWORD_FILE: cannot read a "
                    "password from %s\n",
                    file);
            return 1;
        }
        from = "CAPATLAS_ADMIN_PASSWORD_FILE";
    } else if (ca_cred_random_password(pw, sizeof(pw)) < 0) {
        fprintf(stderr, "capatlasd user init-admin: cannot generate a password\n");
        return 1;
    }
    rc = ca_user_create(p, name, pw, 1, &id, err, sizeof(err));
    if (rc < 0) {
        memset(pw, 0, sizeof(pw));
        fprintf(stderr, "capatlasd user init-admin: %s\n", err[0] ? err : ca_strerror(rc));
        return 1;
    }
    printf("capatlas: first admin account created\n  user:     %s\n", name);
    if (from != NULL)
        printf("  password: (from %s)\n", from);
    else
        printf("  password: %s\n", pw);
    fflush(stdout);
    memset(pw, 0, sizeof(pw));
    return 0;
}

static int add_or_passwd(struct ca_portal *p, const char *cmd, const char *name, int admin)
{
    char pw[PW_MAX + 2], err[256] = "";
    uint64_t id;
    int rc;

    if (read_line(stdin, pw, sizeof(pw)) < 0) {
        fprintf(stderr, "capatlasd user %s: expected the password on stdin (one line)\n", cmd);
        return 1;
    }
    if (strcmp(cmd, "add") == 0) {
        rc = ca_user_create(p, name, pw, admin, &id, err, sizeof(err));
    } else if (find_user(p, name, &id) < 0) {
        memset(pw, 0, sizeof(pw));
        fprintf(stderr, "capatlasd user passwd: no user named \"%s\"\n", name);
        return 1;
    } else {
        rc = ca_user_set_password(p, id, pw, err, sizeof(err));
        if (rc == 0)
            (void)ca_session_revoke_user(p, id, NULL);
    }
    memset(pw, 0, sizeof(pw));
    if (rc < 0) {
        fprintf(stderr, "capatlasd user %s: %s\n", cmd, err[0] ? err : ca_strerror(rc));
        return 1;
    }
    if (strcmp(cmd, "add") == 0)
        printf("capatlas: user %s created%s\n", name, admin ? " (admin)" : "");
    else
        printf("capatlas: password of %s changed\n", name);
    return 0;
}

int cmd_user(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;
    const char *data = getenv("CAPATLAS_DATA"), *name = NULL;
    struct ca_portal *p = NULL;
    int admin = 0, status;

    if (data == NULL || *data == '\0')
        data = "./var";
    if (sub == NULL ||
        (strcmp(sub, "init-admin") != 0 && strcmp(sub, "add") != 0 && strcmp(sub, "passwd") != 0 &&
         strcmp(sub, "list") != 0 && strcmp(sub, "disable") != 0 && strcmp(sub, "enable") != 0 &&
         strcmp(sub, "delete") != 0)) {
        fprintf(stderr, "usage: capatlasd user init-admin [--data DIR] [--name NAME]\n"
                        "       capatlasd user add NAME [--admin] [--data DIR]\n"
                        "       capatlasd user passwd NAME [--data DIR]\n"
                        "       capatlasd user list [--data DIR]\n"
                        "       capatlasd user disable|enable|delete NAME [--data DIR]\n");
        return 2;
    }
    if (strcmp(sub, "init-admin") == 0)
        name = "admin";
    if (strcmp(sub, "list") == 0)
        name = "-";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (strncmp(a, "--data=", 7) == 0) {
            data = a + 7;
        } else if (strcmp(a, "--name") == 0 && i + 1 < argc && strcmp(sub, "init-admin") == 0) {
            name = argv[++i];
        } else if (strcmp(a, "--admin") == 0 && strcmp(sub, "add") == 0) {
            admin = 1;
        } else if (a[0] != '-' && strcmp(sub, "init-admin") != 0 && strcmp(sub, "list") != 0 &&
                   i == 2) {
            name = a;
        } else {
            fprintf(stderr, "capatlasd user %s: unexpected argument \"%s\"\n", sub, a);
            return 2;
        }
    }
    if (name == NULL || *name == '\0') {
        fprintf(stderr, "capatlasd user %s: missing user NAME\n", sub);
        return 2;
    }
    if (*data == '\0') {
        fprintf(stderr, "capatlasd user: --data (CAPATLAS_DATA): empty path\n");
        return 2;
    }
    if (open_portal(data, &p) < 0)
        return 1;
    if (strcmp(sub, "init-admin") == 0)
        status = init_admin(p, name);
    else if (strcmp(sub, "add") == 0 || strcmp(sub, "passwd") == 0)
        status = add_or_passwd(p, sub, name, admin);
    else
        status = admin_cmd(p, sub, name);
    ca_portal_close(p);
    return status;
}
