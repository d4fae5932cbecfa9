/*
 * capatlasd: one binary, subcommands dispatched on argv[1] (see
 * commands.h).  serve runs the portal; the others are admin tools.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

#define CAPATLAS_VERSION "0.1.0"

static void usage(FILE *f)
{
    fputs("usage: capatlasd <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve [--config FILE] [--data DIR] [--socket PATH] [--api-workers N] "
          "[--import-workers N]\n"
          "        [--geo-db FILE] [--socket-group GROUP]\n"
          "        run the FastCGI API and import workers (environment: CAPATLAS_DATA,\n"
          "        CAPATLAS_SOCKET, CAPATLAS_API_WORKERS, CAPATLAS_IMPORT_WORKERS,\n"
          "        CAPATLAS_GEO_DB, CAPATLAS_SOCKET_GROUP)\n"
          "  check [--config FILE] [--print-env] [--SETTING VALUE...]\n"
          "        validate the configuration (file, environment, flags); name what is wrong\n"
          "  backup --data DIR --out BACKUP_DIR\n"
          "        consistent hot copy of every LMDB environment and the capture files\n"
          "  restore --from BACKUP_DIR --data NEW_DIR\n"
          "        a backup into a new data folder; interrupted imports are re-queued\n"
          "  flows [--report] [--geo-db FILE] FILE\n"
          "        print the flows of a capture file, one JSON object per line\n"
          "  user init-admin [--data DIR] [--name NAME]\n"
          "  user add NAME [--admin] [--data DIR]     (password on stdin)\n"
          "  user passwd NAME [--data DIR]            (password on stdin)\n"
          "  routes                                   the API route table and its actions (JSON)\n"
          "  version\n"
          "  help\n",
          f);
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (cmd == NULL) {
        usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "flows") == 0)
        return cmd_flows(argc - 1, argv + 1);
    if (strcmp(cmd, "user") == 0)
        return cmd_user(argc - 1, argv + 1);
    if (strcmp(cmd, "routes") == 0)
        return cmd_routes(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "backup") == 0)
        return cmd_backup(argc - 1, argv + 1);
    if (strcmp(cmd, "restore") == 0)
        return cmd_restore(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("capatlasd %s\n", CAPATLAS_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "capatlasd: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
