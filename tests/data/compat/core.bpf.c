// CO-RE relocations of every outcome, one program each, for tests/test_check_kernel.py.
// Each program is loaded alone (the others' autoload off) with a made-up target BTF,
// and libbpf's verdict is compared with `ecc check --kernel`'s.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

__u64 out = 0;

// The pre-5.14 name of task_struct.__state, for the flavor fallback below.
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

SEC("kprobe/do_nanosleep")
int read_state(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	out = BPF_CORE_READ(task, __state);
	return 0;
}

SEC("kprobe/do_nanosleep")
int guarded_state(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	if (bpf_core_field_exists(task->__state))
		out = BPF_CORE_READ(task, __state);
	else
		out = 1;
	return 0;
}

SEC("kprobe/do_nanosleep")
int state_either_name(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	if (bpf_core_field_exists(task->__state)) {
		out = BPF_CORE_READ(task, __state);
	} else {
		struct task_struct___old *old = (void *)task;

		out = BPF_CORE_READ(old, state);
	}
	return 0;
}

SEC("kprobe/do_nanosleep")
int read_bitfield(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	out = BPF_CORE_READ_BITFIELD_PROBED(task, sched_reset_on_fork);
	return 0;
}

SEC("kprobe/do_nanosleep")
int read_mm(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	out = BPF_CORE_READ(task, mm, total_vm);
	return 0;
}

SEC("kprobe/do_nanosleep")
int guarded_mm(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	if (bpf_core_type_exists(struct mm_struct))
		out = BPF_CORE_READ(task, mm, total_vm);
	return 0;
}

SEC("kprobe/do_nanosleep")
int mm_size(void *ctx)
{
	out = bpf_core_type_size(struct mm_struct);
	return 0;
}

SEC("kprobe/do_nanosleep")
int enum_value(void *ctx)
{
	out = bpf_core_enum_value(enum pid_type, PIDTYPE_TGID);
	return 0;
}

SEC("kprobe/do_nanosleep")
int guarded_enum(void *ctx)
{
	if (bpf_core_enum_value_exists(enum pid_type, PIDTYPE_TGID))
		out = bpf_core_enum_value(enum pid_type, PIDTYPE_TGID);
	return 0;
}
