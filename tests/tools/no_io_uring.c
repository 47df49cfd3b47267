/* no_io_uring: runs a command in which io_uring is blocked the way Docker's and
 * containerd's default seccomp profiles block it: io_uring_setup, io_uring_enter and
 * io_uring_register fail with EPERM (or --errno=N); every other system call is untouched.
 *
 *   no_io_uring [--errno=N] COMMAND [ARG]...
 *
 * The filter survives exec and fork, so COMMAND and all its children run without
 * io_uring. The environment gets SKY_ASYNC_TEST_IO_URING_BLOCKED=<the errno number>, so a
 * test can tell that it is meant to see io_uring refused (and fail rather than skip).
 *
 * Exit status: COMMAND's; 77 (liburing's and Automake's SKIP) when the kernel cannot
 * install the filter; 2 on a usage error; 127 when COMMAND cannot be run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { exit_skip = 77, exit_usage = 2, exit_exec_failed = 127 };

/* The architecture the filter expects; a call made through another ABI (x32, or
 * 32-bit x86 on x86_64) would see other system call numbers, so it is refused too. */
#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_RISCV64
#else
#error "no_io_uring: add this architecture's AUDIT_ARCH_* constant"
#endif

/* Since Linux 5.1 (io_uring's first release) every architecture shares these numbers;
 * older headers may lack the names. */
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif

static int install_filter(unsigned int error) {
  const unsigned int refuse = SECCOMP_RET_ERRNO | (error & SECCOMP_RET_DATA);
  struct sock_filter program[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, refuse),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, refuse),
  };
  struct sock_fprog fprog = {.len = sizeof(program) / sizeof(program[0]), .filter = program};
  /* Lets an unprivileged process install a filter, and is inherited like the filter. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
}

/* The filter is in force: a ring cannot be created (the parameters are never read). */
static int io_uring_is_refused(unsigned int error) {
  long rc = syscall(__NR_io_uring_setup, 1, NULL);
  return rc < 0 && (unsigned int)errno == error;
}

int main(int argc, char** argv) {
  unsigned int error = EPERM;
  int first = 1;
  if (argc > 1 && strncmp(argv[1], "--errno=", 8) == 0) {
    char* end = NULL;
    long value = strtol(argv[1] + 8, &end, 10);
    if (*end != '\0' || value <= 0 || value > 4095) {
      fprintf(stderr, "no_io_uring: --errno wants a number from 1 to 4095, not '%s'\n", argv[1] + 8);
      return exit_usage;
    }
    error = (unsigned int)value;
    first = 2;
  }
  if (first >= argc) {
    fprintf(stderr, "usage: no_io_uring [--errno=N] COMMAND [ARG]...\n");
    return exit_usage;
  }
  if (install_filter(error) != 0) {
    fprintf(stderr, "no_io_uring: SKIP: cannot install a seccomp filter: %s\n", strerror(errno));
    return exit_skip;
  }
  if (!io_uring_is_refused(error)) {
    fprintf(stderr, "no_io_uring: the seccomp filter does not refuse io_uring_setup\n");
    return 1;
  }
  char name[16];
  snprintf(name, sizeof(name), "%u", error);
  setenv("SKY_ASYNC_TEST_IO_URING_BLOCKED", name, 1);
  execvp(argv[first], argv + first);
  fprintf(stderr, "no_io_uring: cannot run %s: %s\n", argv[first], strerror(errno));
  return exit_exec_failed;
}
