// Helpers, a map type and an attach type from different kernel releases, for the
// feature checks of tests/test_compat_versions.py: bpf_ringbuf_output and the RINGBUF
// map (5.8), bpf_loop (5.17), a kprobe.multi program (attach type TRACE_KPROBE_MULTI,
// 5.18); BPF_CORE_READ adds bpf_probe_read_kernel (5.5). The CO-RE read also keeps a
// minimized BTF (bpftool gen min_core_btf) non-empty.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

static long count(__u32 index, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

SEC("kprobe/do_nanosleep")
int uses_loop(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	int pid = BPF_CORE_READ(task, pid);

	bpf_loop(4, count, &pid, 0);
	bpf_ringbuf_output(&events, &pid, sizeof(pid), 0);
	return 0;
}

SEC("kprobe.multi/do_nanosleep")
int multi(void *ctx)
{
	return 0;
}
