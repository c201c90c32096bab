/* wake_pipe.h -- the self-pipe that wakes a poll(2) or kqueue wait
 * (poll.c, kqueue_darwin.c; poller.h's "Wake-up").  Both ends are
 * non-blocking and close-on-exec. */
#ifndef MP_WAKE_PIPE_H
#define MP_WAKE_PIPE_H

typedef struct {
    int rd, wr;                 /* -1 when not open */
} mp_wake_pipe_t;

/* 0, or -1 with errno set (nothing left open). */
int mp__wake_pipe_open(mp_wake_pipe_t *p);
/* Writes one byte; a full pipe is already signalled (0).  -1 with errno. */
int mp__wake_pipe_signal(const mp_wake_pipe_t *p);
/* Reads until the pipe is empty. */
void mp__wake_pipe_drain(const mp_wake_pipe_t *p);
/* Closes both ends (this process's copies only: a child's close after fork
 * leaves the parent's pipe working). */
void mp__wake_pipe_close(mp_wake_pipe_t *p);

#endif /* MP_WAKE_PIPE_H */
