/* A stand-in for the nginx test images critest uses (hack/critest builds them locally): it
 * answers every HTTP request on PORT (argv[1], default 80) with 200, writes its pid to
 * /var/run/nginx.pid, and looks like nginx's master to `pidof nginx` (its executable is
 * /usr/sbin/nginx) and to /proc/PID/cmdline ("nginx: master process ..."), which is what
 * critest's PID-namespace tests look for. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n"
                            "Content-Length: 13\r\nConnection: close\r\n\r\n<p>berth</p>\n";

static void quit(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
  const char *port = argc > 1 ? argv[1] : "80";
  /* Re-exec once under nginx's master title; exec of /usr/sbin/nginx keeps comm "nginx". */
  if (strncmp(argv[0], "nginx: ", 7) != 0) {
    char *args[] = {"nginx: master process nginx -g daemon off;", (char *)port, NULL};
    execv("/usr/sbin/nginx", args);
    perror("exec /usr/sbin/nginx");
    return 1;
  }
  struct sigaction sa = {0};
  sa.sa_handler = quit;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGQUIT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
  if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) {
    perror("nginx: listen");
    return 1;
  }
  FILE *f = fopen("/var/run/nginx.pid", "w");
  if (f) {
    fprintf(f, "%d\n", getpid());
    fclose(f);
  }
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0)
      continue;
    char buf[4096];
    (void)!read(c, buf, sizeof buf);
    (void)!write(c, reply, sizeof reply - 1);
    close(c);
  }
}
