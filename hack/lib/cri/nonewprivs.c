/* The nonewprivs test image's program (hack/critest): installed set-user-ID root, it prints
 * its effective uid, so a container run as a non-root user shows 0 unless no_new_privs kept
 * the set-uid bit from taking effect. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  printf("Effective uid: %d\n", (int)geteuid());
  return 0;
}
