/* The pod sandbox's pause process for hack/critest's local images: it holds the pod's
 * namespaces, reaps the orphans it inherits as PID 1 of a shared PID namespace, and exits
 * at once on SIGTERM or SIGINT (as PID 1, signals without a handler are ignored, so a stop
 * would otherwise wait for the kill timeout). */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { _exit(sig == SIGTERM || sig == SIGINT ? 0 : 2); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = quit;
  if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
    return 1;
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGCHLD, &sa, NULL) < 0)
    return 1;
  for (;;)
    pause();
}
