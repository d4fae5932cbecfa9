/*
 * The processes capatlasd serve forks: API workers (FastCGI accept loop,
 * api_worker.c) and import workers (job loop, import_worker.c).  Each
 * opens its own store handles and engine after the fork and returns its
 * exit status when told to stop with SIGTERM.
 */
#ifndef CA_WORKERS_H
#define CA_WORKERS_H

#include <stddef.h>

struct config;

/* FCGX_Init and the listening socket at c->socket (mode 0660).  fd or -1. */
int api_worker_listen(const struct config *c, char *err, size_t errlen);

int api_worker_run(const struct config *c, int listen_fd, int index);
int import_worker_run(const struct config *c, int index);
/* The inbox watcher (inbox.c): one process when c->inbox lists folders. */
int inbox_run(const struct config *c);

#endif
