/*
 * One-line log messages to stderr, prefixed "capatlasd[pid]: ".  Each line
 * is written with a single write(2) so lines from several worker processes
 * sharing stderr do not interleave.  Callers must never pass a password,
 * token, cookie or query string.
 */
#ifndef CA_LOG_H
#define CA_LOG_H

void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
