/* inject.h -- forced (-include) into the sockets builds of the RTOS host
 * test: port/sockets.c's send and writev go through tests/lwip-rtos/main.c,
 * which can make them fail with ENOBUFS (SIGUSR1). */
#include <sys/types.h>
#include <sys/uio.h>
ssize_t test_send(int s, const void *b, size_t n, int flags);
ssize_t test_writev(int s, const struct iovec *v, int n);
