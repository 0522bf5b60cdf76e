/* A UDP echo server for the test image (busybox's nc has no UDP): replies "echo:" + each datagram. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 7;
  int s = socket(AF_INET6, SOCK_DGRAM, 0);
  int off = 0;
  setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  struct sockaddr_in6 addr = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any};
  if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) < 0) return 1;
  for (;;) {
    char buf[1500];
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    ssize_t n = recvfrom(s, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&peer, &len);
    if (n < 0) continue;
    memcpy(buf, "echo:", 5);
    sendto(s, buf, n + 5, 0, (struct sockaddr *)&peer, len);
  }
}
