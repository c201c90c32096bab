/* wake_pipe.c -- the self-pipe of poll.c and kqueue_darwin.c (wake_pipe.h).
 *
 * pipe(2) then fcntl, not pipe2: macOS has no pipe2, and one code path
 * serves both.  The descriptors are close-on-exec from the fcntl on; an
 * exec in another thread between the two calls could inherit them (the
 * same window CPython's os.pipe has where pipe2 is missing). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "wake_pipe.h"

static int setup(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int mp__wake_pipe_open(mp_wake_pipe_t *p)
{
    int fds[2];

    p->rd = p->wr = -1;
    if (pipe(fds) < 0)
        return -1;
    if (setup(fds[0]) < 0 || setup(fds[1]) < 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    p->rd = fds[0];
    p->wr = fds[1];
    return 0;
}

int mp__wake_pipe_signal(const mp_wake_pipe_t *p)
{
    char one = 1;

    for (;;) {
        if (write(p->wr, &one, 1) == 1)
            return 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;           /* full: the reader has a wake-up waiting already */
        if (errno != EINTR)
            return -1;
    }
}

void mp__wake_pipe_drain(const mp_wake_pipe_t *p)
{
    char buf[64];

    for (;;) {
        ssize_t n = read(p->rd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < (ssize_t)sizeof(buf))
            return;             /* emptied (EAGAIN), or the pipe is gone */
    }
}

void mp__wake_pipe_close(mp_wake_pipe_t *p)
{
    if (p->rd >= 0)
        close(p->rd);
    if (p->wr >= 0)
        close(p->wr);
    p->rd = p->wr = -1;
}
