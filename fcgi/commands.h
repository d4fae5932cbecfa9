/*
 * Entry points of capatlasd's subcommands; main.c dispatches on argv[1].
 * Each returns the process exit status.
 */
#ifndef CA_COMMANDS_H
#define CA_COMMANDS_H

/* capatlasd serve [--data DIR] [--socket PATH] [--api-workers N] [--import-workers N] [--geo-db F]
 */
int cmd_serve(int argc, char **argv);
/* capatlasd flows [--report] [--geo-db F] FILE: one JSON flow per line (fcgi/cmd_flows.c) */
int cmd_flows(int argc, char **argv);
/* capatlasd user add|init-admin|passwd ... (fcgi/cmd_user.c) */
int cmd_user(int argc, char **argv);
/* capatlasd routes: the API route table with each route's action, as JSON (fcgi/router.c) */
int cmd_routes(int argc, char **argv);
/* capatlasd check [--config F] [--print-env]: validate the configuration (fcgi/cmd_check.c) */
int cmd_check(int argc, char **argv);
/* capatlasd backup --data D --out DIR; restore --from DIR --data D2 (fcgi/cmd_backup.c) */
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);

#endif
