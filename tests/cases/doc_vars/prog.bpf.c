// Doc comments on global variables of every data section and on LICENSE;
// warnings for a value that is not JSON, a key given twice, and an
// annotation on something that is not a program, map or variable.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <stdbool.h>

typedef int pid_t;

/// @cmdarg {"default": 0, "short": "p", "long": "pid", "help": "trace only this pid"}
/// @description target pid to trace
const volatile pid_t target_pid = 0;

/// Process ID to trace
/// (a second plain line)
const volatile int targ_tgid = 0;

/// @cmdarg {"short": "v"}
/// @value true
const volatile bool verbose = false;

/// @unit milliseconds, not JSON
/// @unit ms
volatile int interval = 10;

/// @description zeroed counter in .bss
__u64 counter;

/// a custom data section
int scale SEC(".data.cfg") = 3;

#if 0
/// @never "inside #if 0"
const volatile int disabled_option = 1;
#endif

/// @helper "documented helper: not an entity of the object"
static __always_inline int helper(int x)
{
	return x + 1;
}

static const char fake[] = "/// @not_a_comment inside a string";

SEC("tp/syscalls/sys_enter_getpid")
int use_vars(void *ctx)
{
	int pid = bpf_get_current_pid_tgid() >> 32;

	if (target_pid && pid != target_pid)
		return 0;
	if (targ_tgid && pid != targ_tgid)
		return 0;
	counter += helper(scale) + interval + fake[0];
	if (verbose)
		counter++;
	return 0;
}

/**
 * @brief Doc comment grammar on variables.
 * @details Options with cmdarg, descriptions from plain lines,
 * values that are not JSON.
 * @version 0.1
 */
char LICENSE[] SEC("license") = "GPL";
