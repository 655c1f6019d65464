/*
 * libfaults.so: a fault-injection shim for golapis (make test-faults), in
 * the spirit of OpenResty's mockeagain.  Preloaded into golapis only, it
 * makes the socket calls golapis makes return what the kernel may always
 * return on a non-blocking socket: EAGAIN (a spurious wake-up) for reads,
 * writes and accepts, and a short count (one byte) for writes.  Correct
 * event-driven code retries; code that assumes a whole write, or treats
 * EAGAIN after readiness as an error, breaks.
 *
 * Reads are not shortened: what a read returns is what arrived, and
 * receiveany's answers depend on it, as they would on a slow network
 * (the FastCGI parser's every split of its input is tested by
 * tests/unit/test_fcgi.c and the fuzzer).  Only non-blocking stream
 * sockets are touched (not datagrams, files, pipes, eventfds, signalfds).
 * GL_FAULTS_RATE (default 3) faults one call in N; GL_FAULTS_SEED seeds
 * each thread's generator.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);

static int             rate = 3;
static unsigned        seed = 1;
static _Thread_local uint64_t  state;


__attribute__((constructor))
static void
faults_init(void)
{
    const char  *s;

    real_read = dlsym(RTLD_NEXT, "read");
    real_write = dlsym(RTLD_NEXT, "write");
    real_readv = dlsym(RTLD_NEXT, "readv");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_recv = dlsym(RTLD_NEXT, "recv");
    real_send = dlsym(RTLD_NEXT, "send");
    real_accept4 = dlsym(RTLD_NEXT, "accept4");

    s = getenv("GL_FAULTS_RATE");
    if (s != NULL && atoi(s) > 0) {
        rate = atoi(s);
    }

    s = getenv("GL_FAULTS_SEED");
    if (s != NULL) {
        seed = (unsigned) strtoul(s, NULL, 10);
    }
}


/* 0: no fault; 1: EAGAIN; 2: a short count */
static int
fault(int fd)
{
    int          flags, type;
    socklen_t    len;
    struct stat  st;

    if (state == 0) {
        state = ((uint64_t) seed << 32) ^ (uint64_t) (uintptr_t) &state ^ 1;
    }

    /* xorshift64 */
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;

    if (state % (uint64_t) rate != 0) {
        return 0;
    }

    if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode)) {
        return 0;
    }

    flags = fcntl(fd, F_GETFL);
    if (flags == -1 || !(flags & O_NONBLOCK)) {
        return 0;
    }

    len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1
        || type != SOCK_STREAM)
    {
        return 0;
    }

    return (state >> 20) % 2 ? 1 : 2;
}


/* reads: EAGAIN only */
static int
fault_read(int fd)
{
    return fault(fd) ? 1 : 0;
}


ssize_t
read(int fd, void *buf, size_t n)
{
    switch (n > 1 ? fault_read(fd) : 0) {
    case 1:
        errno = EAGAIN;
        return -1;
    case 2:
        n = 1;
        break;
    }

    return real_read(fd, buf, n);
}


ssize_t
write(int fd, const void *buf, size_t n)
{
    switch (n > 1 ? fault(fd) : 0) {
    case 1:
        errno = EAGAIN;
        return -1;
    case 2:
        n = 1;
        break;
    }

    return real_write(fd, buf, n);
}


ssize_t
recv(int fd, void *buf, size_t n, int flags)
{
    switch (n > 1 && !(flags & MSG_PEEK) ? fault_read(fd) : 0) {
    case 1:
        errno = EAGAIN;
        return -1;
    case 2:
        n = 1;
        break;
    }

    return real_recv(fd, buf, n, flags);
}


ssize_t
send(int fd, const void *buf, size_t n, int flags)
{
    switch (n > 1 ? fault(fd) : 0) {
    case 1:
        errno = EAGAIN;
        return -1;
    case 2:
        n = 1;
        break;
    }

    return real_send(fd, buf, n, flags);
}


/* a vector call: EAGAIN, or only the first byte of the first buffer */
static ssize_t
vec(int fd, const struct iovec *iov, int cnt, int w)
{
    struct iovec  one;

    if (cnt > 0 && iov[0].iov_len > 0) {
        switch (w ? fault(fd) : fault_read(fd)) {
        case 1:
            errno = EAGAIN;
            return -1;
        case 2:
            one.iov_base = iov[0].iov_base;
            one.iov_len = 1;
            return w ? real_writev(fd, &one, 1) : real_readv(fd, &one, 1);
        }
    }

    return w ? real_writev(fd, iov, cnt) : real_readv(fd, iov, cnt);
}


ssize_t
readv(int fd, const struct iovec *iov, int cnt)
{
    return vec(fd, iov, cnt, 0);
}


ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
    return vec(fd, iov, cnt, 1);
}


int
accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
    if (fault(fd) == 1) {
        errno = EAGAIN;
        return -1;
    }

    return real_accept4(fd, sa, len, flags);
}
