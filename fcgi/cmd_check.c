/*
 * capatlasd check [--config FILE] [--print-env] [--SETTING VALUE...]:
 * validates a configuration (file, environment and flags, as serve would
 * read them, plus the file system checks serve cannot do as an
 * unprivileged user) and prints every problem, each naming the setting.
 * Exit 0 when the configuration is usable, 1 when not, 2 on bad usage.
 *
 * Without --print-env it prints the effective settings and where each came
 * from.  With --print-env it prints, for the settings not left at their
 * default, shell assignments (CAPATLAS_PORT='9877') that docker/start.sh
 * evaluates, so the start script and capatlasd read one configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"

extern char **environ;

static void print_quoted(const char *s)
{
    putchar('\'');
    for (; *s != '\0'; s++) {
        if (*s == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*s);
    }
    putchar('\'');
}

static void env_name(const char *key, char *buf, size_t len)
{
    size_t j = 0;

    j = (size_t)snprintf(buf, len, "CAPATLAS_");
    for (size_t i = 0; key[i] != '\0' && j + 1 < len; i++)
        buf[j++] = (char)(key[i] >= 'a' && key[i] <= 'z' ? key[i] - 'a' + 'A' : key[i]);
    buf[j] = '\0';
}

int cmd_check(int argc, char **argv)
{
    static const char *const origin_name[] = {"default", "file", "environment", "flag"};
    struct config *c = calloc(1, sizeof(*c));
    char *args[128], err[8192], val[CONFIG_LIST_MAX * CONFIG_ITEM_MAX];
    const struct config_setting *s;
    int nargs = 0, print_env = 0, quiet = 0, bad = 0;
    size_t n;

    if (c == NULL)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--print-env") == 0) {
            print_env = 1;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            puts("usage: capatlasd check [--config FILE] [--print-env] [--quiet] "
                 "[--SETTING VALUE...]\n\nsettings (file key, environment variable, default):");
            s = config_settings(&n);
            for (size_t k = 0; k < n; k++) {
                char env[96];

                env_name(s[k].key, env, sizeof(env));
                printf("  %-20s %-30s %s\n      %s\n", s[k].key, env,
                       s[k].def != NULL ? s[k].def : "\"\"", s[k].help);
            }
            free(c);
            return 0;
        } else if (nargs < (int)(sizeof(args) / sizeof(args[0]))) {
            args[nargs++] = argv[i];
        } else {
            fprintf(stderr, "capatlasd check: too many arguments\n");
            free(c);
            return 2;
        }
    }

    /* Unknown CAPATLAS_* variables are most likely typos: warn, do not fail. */
    for (char **e = environ; *e != NULL; e++) {
        char name[128];
        const char *eq = strchr(*e, '=');
        size_t len = eq != NULL ? (size_t)(eq - *e) : strlen(*e);

        if (strncmp(*e, "CAPATLAS_", 9) != 0 || len >= sizeof(name))
            continue;
        memcpy(name, *e, len);
        name[len] = '\0';
        if (!config_env_known(name))
            fprintf(stderr, "capatlasd check: warning: %s is not a setting (ignored)\n", name);
    }

    if (config_parse(c, nargs, args, err, sizeof(err)) < 0) {
        fprintf(stderr, "capatlasd check: the configuration is not valid:\n");
        for (char *line = strtok(err, "\n"); line != NULL; line = strtok(NULL, "\n"))
            fprintf(stderr, "  %s\n", line);
        free(c);
        return 1;
    }
    if (config_check_files(c, err, sizeof(err)) < 0) {
        fprintf(stderr, "capatlasd check: the configuration is not valid:\n");
        for (char *line = strtok(err, "\n"); line != NULL; line = strtok(NULL, "\n"))
            fprintf(stderr, "  %s\n", line);
        bad = 1;
    }
    if (bad) {
        free(c);
        return 1;
    }

    s = config_settings(&n);
    for (size_t k = 0; k < n; k++) {
        char env[96];

        env_name(s[k].key, env, sizeof(env));
        config_format(c, &s[k], val, sizeof(val));
        if (print_env) {
            if (c->origin[k] == CONFIG_DEFAULT)
                continue;
            printf("%s=", env);
            print_quoted(val);
            putchar('\n');
        } else if (!quiet) {
            printf("%-20s = %-40s (%s)\n", s[k].key, val, origin_name[c->origin[k]]);
        }
    }
    if (!print_env && !quiet)
        printf("configuration OK%s%s\n", c->config_file[0] ? "; file " : "", c->config_file);
    free(c);
    return 0;
}
