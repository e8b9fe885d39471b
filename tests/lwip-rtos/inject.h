/* inject.h -- forced (-include) into the sockets builds of the RTOS host
 * test: port/sockets.c's send, writev, socket and accept go through
 * tests/lwip-rtos/main.c, which can make them fail as a stack out of
 * buffers (ENOBUFS, SIGUSR1) or out of sockets (ENFILE, SIGUSR2) does. */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
ssize_t test_send(int s, const void *b, size_t n, int flags);
ssize_t test_writev(int s, const struct iovec *v, int n);
int test_socket(int domain, int type, int protocol);
int test_accept(int s, struct sockaddr *a, socklen_t *len);
