// trace-rips [-1] OUT PROG [ARGS...]: runs PROG under ptrace, single-stepping it and every process
// it forks until that process execs something else (with -1, PROG's own process only: for
// commands like `create` that leave a child waiting after they exit), and writes each distinct instruction address
// that falls in PROG's own executable mapping to OUT, in the order first executed, one per line:
// "<offset from PROG's load address, hex> <0 for PROG's own process, 1 for a child>".
// hack/order-runtime turns that into berth-runtime's link order. Slow (a ptrace stop per
// instruction: about a minute for one `run`), exact (no sampling).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS (1u << 22) /* open-addressing set of seen offsets (+1, so 0 is empty) */

int main(int argc, char **argv) {
  int follow = 1;
  if (argc > 1 && strcmp(argv[1], "-1") == 0) {
    follow = 0;
    argv++;
    argc--;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: trace-rips [-1] OUT PROG [ARGS...]\n");
    return 2;
  }
  pid_t main_pid = fork();
  if (main_pid < 0) { perror("fork"); return 1; }
  if (main_pid == 0) {
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    execv(argv[2], argv + 2);
    perror("execv");
    _exit(127);
  }
  int st;
  if (waitpid(main_pid, &st, 0) < 0 || !WIFSTOPPED(st)) { fprintf(stderr, "trace-rips: %s did not start\n", argv[2]); return 1; }

  // PROG's load address and its executable mapping, from the stopped process's maps.
  char path[64], line[4096], real[4096];
  if (!realpath(argv[2], real)) { perror(argv[2]); return 1; }
  snprintf(path, sizeof path, "/proc/%d/maps", main_pid);
  uint64_t base = 0, lo = 0, hi = 0;
  FILE *maps = fopen(path, "r");
  if (!maps) { perror(path); return 1; }
  while (fgets(line, sizeof line, maps)) {
    uint64_t a, b, off;
    char perm[8];
    char *name = strchr(line, '/');
    if (!name || sscanf(line, "%lx-%lx %7s %lx", &a, &b, perm, &off) != 4) continue;
    name[strcspn(name, "\n")] = 0;
    if (strcmp(name, real) != 0) continue;
    if (!base) base = a - off;
    if (perm[2] == 'x') { lo = a; hi = b; }
  }
  fclose(maps);
  if (!hi) { fprintf(stderr, "trace-rips: no executable mapping of %s\n", real); return 1; }

  uint64_t *seen = calloc(SLOTS, sizeof *seen);
  FILE *out = fopen(argv[1], "w");
  if (!seen || !out) { perror(argv[1]); return 1; }
  long opts = PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC;
  if (follow) opts |= PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK;
  ptrace(PTRACE_SETOPTIONS, main_pid, 0, opts);

  size_t distinct = 0;
  int exit_code = 1;
  pid_t cur = main_pid;
  int sig = 0;
  for (;;) {
    if (cur > 0) {
      struct user_regs_struct r;
      if (ptrace(PTRACE_GETREGS, cur, 0, &r) == 0 && r.rip >= lo && r.rip < hi) {
        uint64_t k = r.rip - base;
        size_t h = (size_t)((k * 0x9E3779B97F4A7C15ull) >> 42) & (SLOTS - 1);
        while (seen[h] && seen[h] != k + 1) h = (h + 1) & (SLOTS - 1);
        if (!seen[h]) {
          seen[h] = k + 1;
          fprintf(out, "%lx %d\n", k, cur != main_pid);
          distinct++;
        }
      }
      ptrace(PTRACE_SINGLESTEP, cur, 0, sig);
    }
    cur = waitpid(-1, &st, __WALL);
    sig = 0;
    if (cur < 0) {
      if (errno == EINTR) continue;
      break; // ECHILD: every traced process is gone
    }
    if (!follow && cur != main_pid) { cur = 0; continue; } // an untraced child's exit
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      if (cur == main_pid) exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      cur = 0;
      continue;
    }
    if (!WIFSTOPPED(st)) { cur = 0; continue; }
    int event = st >> 16;
    if (event == PTRACE_EVENT_EXEC) { // now another program: no longer ours to trace
      ptrace(PTRACE_DETACH, cur, 0, 0);
      cur = 0;
      continue;
    }
    if (event) continue; // fork/clone reported in the parent: the child stops on its own
    int s = WSTOPSIG(st);
    if (s != SIGTRAP && s != SIGSTOP) sig = s; // deliver real signals; swallow our own stops
  }
  fclose(out);
  fprintf(stderr, "trace-rips: %zu distinct instructions; %s exited %d\n", distinct, argv[2], exit_code);
  return exit_code;
}
