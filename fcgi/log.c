/*
 * stderr logging for capatlasd (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

void log_line(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n, m;

    n = snprintf(buf, sizeof(buf), "capatlasd[%d]: ", (int)getpid());
    if (n < 0 || (size_t)n >= sizeof(buf))
        return;
    va_start(ap, fmt);
    m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if ((size_t)n > sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    /* Control characters could forge log lines; show them as '?'. */
    for (int i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = '?';
    buf[n++] = '\n';
    (void)!write(STDERR_FILENO, buf, (size_t)n);
}
